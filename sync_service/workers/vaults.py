"""The external-vault sync: every call cfgctl makes to AWS Secrets Manager or HashiCorp
Vault (sync_service/vaults) happens here; the database decides what is due and
records the outcome (functions/73_secrets_sync.sql). Four kinds of work:

- bindings due (cfg_private.claim_secret_bindings, a lease): a reference binding is
  checked for a new external version, and its value imported as a token (a version of
  kind sync); a push binding writes cfgctl's value out when it changed, imports an
  external rotation when nothing is waiting to be pushed, and reports a conflict
  when both sides moved. Failures are recorded per binding and retried with backoff;
- backend tests an admin asked for (`cfgctl vault backend test`);
- reveals of reference-bound secrets: fetched for the member who asked, who collects
  the answer once;
- scheduled rotations of reference-bound secrets the schedules tick dispatched
  (cfg_private.claim_schedule_dispatches, a lease): the backend rotates the secret
  (AWS: RotateSecret where the secret has rotation configured, else PutSecretValue of
  a new random value; Vault KV v2: a new version), the new version is reported, and
  the binding's usual sync imports it. The new value never reaches the database.

Backend calls are blocking (boto3, hvac): each runs in a thread, the batch's items
concurrently. Credentials and values are read per batch through service-only
functions and never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic_settings import SettingsConfigDict

from sync_service import vaults

from .base import Worker, WorkerSettings

log = logging.getLogger("cfgctl.vaults")


class VaultSyncSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="CFGCTL_VAULTS_", extra="ignore")

    # Two lanes: one claims and records while the other waits on the network.
    lanes: int = 2
    batch_size: int = 20
    check_every: float = 300.0  # seconds between looks at a binding that is in step
    lease: float = 60.0  # a claimed binding is due again after this if no answer came


@dataclass
class Job:
    kind: str  # "binding" | "test" | "reveal" | "rotation"
    row: dict[str, Any]


class VaultSync(Worker):
    name = "vaults"
    channels = ("cfgctl_vault_sync",)
    settings_class = VaultSyncSettings
    settings: VaultSyncSettings

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Backends by their credentials' Vault id (a Vault secret never changes), shared by
        # the threads that make the calls (boto3 clients are thread-safe; the HashiCorp
        # backend logs in under a lock).
        self._backends: dict[tuple, vaults.Backend] = {}
        self._backends_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        # As many threads as a batch has items: each item waits on the network.
        self._pool = ThreadPoolExecutor(self.settings.batch_size, thread_name_prefix="cfgctl-vaults")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def claim(self, conn: psycopg.AsyncConnection, lane: str) -> Sequence[Job]:
        n = self.settings.batch_size
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("select * from cfg_private.claim_vault_backend_tests(%s)", (n,))
            jobs = [Job("test", r) for r in await cur.fetchall()]
            await cur.execute("select * from cfg_private.claim_external_reveals(%s)", (n,))
            jobs += [Job("reveal", r) for r in await cur.fetchall()]
            await cur.execute(
                "select * from cfg_private.claim_secret_bindings(%s, make_interval(secs => %s))",
                (n, self.settings.lease),
            )
            jobs += [Job("binding", r) for r in await cur.fetchall()]
            await cur.execute(
                "select * from cfg_private.claim_schedule_dispatches(%s, make_interval(secs => %s))",
                (n, self.settings.lease),
            )
            jobs += [Job("rotation", r) for r in await cur.fetchall()]
        return jobs

    async def handle(self, conn: psycopg.AsyncConnection, batch: Sequence[Job]) -> int:
        wanted = {j.row["credentials_secret_id"] for j in batch}
        wanted |= {j.row["wanted_secret_id"] for j in batch if j.row.get("push_pending")}
        async with conn.cursor() as cur:
            await cur.execute("select secret_id, member, value from cfg_private.vault_sync_secrets(%s::uuid[])",
                              (list(wanted),))
            # By Vault id and member: a save's values share one Vault secret.
            secrets = {(secret_id, member): value for secret_id, member, value in await cur.fetchall()}
        loop = asyncio.get_running_loop()
        reports = await asyncio.gather(*(loop.run_in_executor(self._pool, self._work, job, secrets) for job in batch))
        failed = 0
        async with conn.transaction():
            for sql, params, ok in reports:
                failed += not ok
                await conn.execute(sql, params)
        return failed

    # -- one item, in a thread ----------------------------------------------------------

    def _backend(self, row: dict, secrets: dict) -> vaults.Backend:
        key = (row["backend_kind"], json.dumps(row["backend_config"], sort_keys=True), row["credentials_secret_id"])
        with self._backends_lock:
            if key not in self._backends:
                credentials = secrets.get((row["credentials_secret_id"], None))
                if credentials is None:
                    raise vaults.BackendError("invalid", "the backend's credentials are gone")
                self._backends[key] = vaults.open_backend(row["backend_kind"], row["backend_config"],
                                                          json.loads(credentials))
            return self._backends[key]

    def _work(self, job: Job, secrets: dict) -> tuple[str, tuple, bool]:
        """The report statement for one job: (sql, params, succeeded)."""
        row = job.row
        try:
            backend = self._backend(row, secrets)
            if job.kind == "test":
                facts = backend.test()
                result = {"ok": True, "facts": facts}
                return TEST_SQL, (row["backend_id"], row["requested_at"], json.dumps(result)), True
            ref = vaults.parse_ref(row["ref"])
            if job.kind == "rotation":
                value = vaults.random_value(row["format"], row["length"])
                version, method = backend.rotate(ref, value, str(row["occurrence_id"]))
                self.count("rotated")
                return ROTATION_SQL, (row["occurrence_id"], version, None, None, method), True
            if job.kind == "reveal":
                return REVEAL_SQL, (row["request_id"], backend.read(ref).value, None), True
            return self._sync(backend, ref, row, secrets)
        except (vaults.BackendError, ValueError) as exc:
            kind = getattr(exc, "kind", "invalid")
            message = str(exc)[:500]
            self.count(f"error_{kind}")
            if job.kind == "test":
                result = {"ok": False, "error_kind": kind, "error": message}
                return TEST_SQL, (row["backend_id"], row["requested_at"], json.dumps(result)), False
            if job.kind == "reveal":
                return REVEAL_SQL, (row["request_id"], None, f"{kind}: {message}"), False
            if job.kind == "rotation":
                return ROTATION_SQL, (row["occurrence_id"], None, kind, message, None), False
            return REPORT_SQL, (row["binding_id"], "failed", None, None, None, kind, message, self._check_every), False

    def _sync(self, backend: vaults.Backend, ref: vaults.Ref, row: dict, secrets: dict) -> tuple[str, tuple, bool]:
        known = row["external_version"]

        def report(outcome: str, version: str | None = None, value: str | None = None, pushed=None):
            self.count(outcome)
            return REPORT_SQL, (row["binding_id"], outcome, version, value, pushed, None, None, self._check_every), True

        if row["mode"] == "reference":
            current = backend.current_version(ref)
            if current == known:
                return report("unchanged")
            fetched = backend.read(ref)
            return report("changed", fetched.version, fetched.value)

        try:
            current = backend.current_version(ref)
        except vaults.BackendError as exc:
            if exc.kind != "not_found":
                raise
            current = None  # pushed for the first time: the write creates it
        moved = known is not None and current != known
        if row["import_next"]:
            fetched = backend.read(ref)
            return report("changed", fetched.version, fetched.value)
        if row["push_pending"]:
            if moved:
                return report("conflict", current)
            # Secret entry values are JSON; the external secret holds the string itself.
            value = json.loads(secrets[row["wanted_secret_id"], row["wanted_member"]])
            text = value if isinstance(value, str) else json.dumps(value)
            try:
                written = backend.write(ref, text)
            except vaults.BackendError as exc:
                if exc.kind != "conflict":
                    raise
                # Vault's check-and-set lost to an external write between our look and our write.
                return report("conflict", backend.current_version(ref))
            return report("pushed", written, pushed=row["wanted_secret_id"])
        if moved:
            if row["environment"] is None:
                fetched = backend.read(ref)  # rotated outside: cfgctl takes it (nothing waits to be pushed)
                return report("changed", fetched.version, fetched.value)
            return report("conflict", current)
        return report("unchanged", current)

    @property
    def _check_every(self):
        return f"{self.settings.check_every} seconds"


REPORT_SQL = "select cfg_private.report_secret_sync(%s, %s, %s, %s, %s, %s, %s, %s::interval)"
TEST_SQL = "select cfg_private.report_vault_backend_test(%s, %s, %s::jsonb)"
REVEAL_SQL = "select cfg_private.answer_external_reveal(%s, %s, %s)"
ROTATION_SQL = "select cfg_private.report_schedule_dispatch(%s, %s, %s, %s, %s)"
