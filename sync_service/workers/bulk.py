"""The continuation of bulk operations (docs/bulk.md): a best-effort operation runs in
batches, each its own transaction, driven by its author's client (`cfgctl bulk` loops on
cfg.bulk_continue). When the client goes away (a closed laptop, a dashboard tab), the
operation stays `running` with no progress; this worker takes up those idle for
`stale_after` seconds (cfg_private.stalled_bulk_operations leases them) and runs their
remaining batches **as the author**: role `authenticated` and the author's claims, exactly
as PostgREST would for them, so every item is checked against the author's rights. An
author who can no longer act (not a member, account deleted) fails the operation, with
the reason recorded."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import psycopg
from psycopg.rows import dict_row
from pydantic_settings import SettingsConfigDict

from sync_service.db import SERVICE, Identity

from .base import Worker, WorkerSettings

log = logging.getLogger("cfgctl.bulk")


class BulkSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="CFGCTL_BULK_", extra="ignore")

    batch_size: int = 5  # operations taken up per claim
    poll_interval: float = 5.0
    stale_after: float = 30.0  # seconds without progress before the worker continues one


class BulkContinuation(Worker):
    name = "bulk"
    settings_class = BulkSettings
    settings: BulkSettings

    async def claim(self, conn: psycopg.AsyncConnection, lane: str) -> Sequence[dict]:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("select * from cfg_private.stalled_bulk_operations(make_interval(secs => %s), %s)",
                              (self.settings.stale_after, self.settings.batch_size))
            return await cur.fetchall()

    async def handle(self, conn: psycopg.AsyncConnection, batch: Sequence[dict]) -> int:
        failed = 0
        for op in batch:
            if not await self._continue(conn, op):
                failed += 1
        return failed

    async def _continue(self, conn: psycopg.AsyncConnection, op: dict) -> bool:
        """Runs the operation's batches as its author until it is no longer running."""
        # An operation the service key started has no author id: it continues as the service.
        author = (Identity(role="authenticated", user_id=op["author_id"], email=op["author_email"])
                  if op["author_id"] else SERVICE)
        status = "running"
        while status == "running" and not self.stopping:
            try:
                async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                    # Local to the transaction: the lane's session stays service_role.
                    await cur.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                                      (author.role, json.dumps(author.claims())))
                    await cur.execute("select cfg.bulk_continue(%s) as r", (op["operation_id"],))
                    answer = (await cur.fetchone())["r"]
            except psycopg.errors.DatabaseError as exc:
                if exc.sqlstate not in ("PT403", "PT404"):
                    raise  # the database's trouble: the lane reconnects, the lease runs out, it comes back
                await self._give_up(conn, op, exc)
                return False
            if answer["busy"]:
                return True  # its author's client is at it again
            status = answer["status"]
            self.count("batches")
        return True

    async def _give_up(self, conn: psycopg.AsyncConnection, op: dict, exc: psycopg.Error) -> None:
        error = {"code": exc.sqlstate, "message": exc.diag.message_primary or str(exc),
                 "reason": "the author can no longer continue this operation"}
        log.warning("bulk operation %s: %s", op["operation_id"], error["message"])
        await conn.execute("select cfg_private.fail_bulk_operation(%s, %s::jsonb)",
                           (op["operation_id"], json.dumps(error)))
        self.count("given_up")
