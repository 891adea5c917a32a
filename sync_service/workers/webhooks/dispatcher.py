"""The webhook dispatcher: claims due deliveries, POSTs them signed the Standard
Webhooks way, and records every attempt. Connections, reconnecting, LISTEN wake-ups,
lanes and stopping are the worker base's (sync_service/workers/base.py).

Each lane claims up to `batch_size` due deliveries (one transaction,
cfg_private.claim_webhook_deliveries, FOR UPDATE SKIP LOCKED) and sends them
concurrently over aiohttp (keep-alive); the results go to one recorder, which records
as many per transaction as are waiting, so recording never delays the next claim.

Guarantees (README, "Webhooks"): at-least-once. A claim is a lease: it bumps the
attempt number and moves `next_attempt_at` to the lease's end, so a worker killed
mid-delivery leaves the row due again when the lease ends, and an attempt number is
handed to one worker only. Results not yet recorded when the database goes away are
kept and recorded after reconnecting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import psycopg

from ..base import Worker
from .guard import HostGuard, Refused, SsrfPolicy, system_lookup
from .settings import WebhookSettings
from .signing import next_delay, parse_retry_after, sign

log = logging.getLogger("cfgctl.webhooks")

RESPONSE_EXCERPT_BYTES = 4096
USER_AGENT = "cfgctl-webhooks/0.1"

CLAIM_SQL = "select * from cfg_private.claim_webhook_deliveries(%s, %s, make_interval(secs => %s))"
RECORD_SQL = (
    "select cfg_private.record_webhook_attempts(%s, %s::bigint[], %s::integer[], %s::text[], "
    "%s::integer[], %s::integer[], %s::text[], %s::text[], %s::double precision[], make_interval(secs => %s))"
)
POLICY_SQL = "select cfg_private.webhook_blocked_networks()::text[], cfg_private.webhook_blocked_names()"
SECRETS_SQL = "select secret_id, secret from cfg_private.webhook_signing_secrets(%s::uuid[])"


@dataclass
class Claimed:
    delivery_id: int
    attempt: int
    run_attempt: int
    org_id: object
    endpoint_id: object
    url: str
    secret_ids: list
    allowed_hosts: list[str]
    webhook_id: str
    body: str


@dataclass
class Result:
    delivery_id: int
    attempt: int
    outcome: str  # succeeded | retry | failed | gone
    status_code: int | None
    latency_ms: int | None
    error: str | None
    excerpt: str | None
    retry_in: float


class Dispatcher(Worker):
    """The `webhooks` worker. health.failed counts attempts without a 2xx answer (the
    retry schedule decides what comes next); health.extra: sent, recorded."""

    name = "webhooks"
    # cfgctl_events: emit_event, on commit; cfgctl_webhooks: retries and tests queued by RPCs.
    channels = ("cfgctl_events", "cfgctl_webhooks")
    settings_class = WebhookSettings
    settings: WebhookSettings

    def __init__(self, db_url: str, settings: WebhookSettings | None = None, instance: str | None = None,
                 lookup=system_lookup):
        super().__init__(db_url, settings, instance)
        # How host names are resolved (tests script it; the guard checks whatever it answers).
        self.lookup = lookup
        self.policy: SsrfPolicy | None = None
        self._global_allow: tuple[str, ...] = ()
        self._results: asyncio.Queue[Result | None] = asyncio.Queue()
        self._recorder_task: asyncio.Task | None = None
        # One HTTP session per allowlist: a kept-alive connection that one org's
        # allowlist admitted is never reused for an org whose allowlist does not.
        self.sessions: dict[tuple[str, ...], aiohttp.ClientSession] = {}
        # Signing secrets by Vault id (see claim).
        self._secrets: dict = {}

    # -- the worker base's hooks --------------------------------------------------------

    async def start(self) -> None:
        self.policy = await self.retrying("loading the SSRF policy", self._load_policy) or SsrfPolicy((), ())
        self._global_allow = tuple(h.strip().lower() for h in self.settings.allow_hosts.split(",") if h.strip())
        self._results = asyncio.Queue()
        self._recorder_task = asyncio.create_task(self._recorder(), name="webhooks-recorder")

    async def claim(self, conn: psycopg.AsyncConnection, lane: str) -> list[Claimed]:
        s = self.settings
        cur = await conn.execute(CLAIM_SQL, (lane, s.batch_size, s.lease))
        batch = [Claimed(*r) for r in await cur.fetchall()]
        # Signing secrets come from Vault by id; an id's secret never changes, so
        # each is fetched (decrypted) once per process.
        unknown = {i for r in batch for i in r.secret_ids or ()} - self._secrets.keys()
        if unknown:
            cur = await conn.execute(SECRETS_SQL, (list(unknown),))
            self._secrets.update(dict(await cur.fetchall()))
        return batch

    async def handle(self, conn: psycopg.AsyncConnection, batch: list[Claimed]) -> int:
        """Send the batch concurrently; the recorder records the results."""
        failed = 0
        for result in await asyncio.gather(*(self._deliver(r) for r in batch)):
            failed += result.outcome != "succeeded"
            self._results.put_nowait(result)
        return failed

    async def drain(self) -> None:
        if self._recorder_task is not None:
            self._results.put_nowait(None)
            await asyncio.wait_for(self._recorder_task, timeout=30)

    async def close(self) -> None:
        if self._recorder_task is not None:
            self._recorder_task.cancel()
            await asyncio.gather(self._recorder_task, return_exceptions=True)
        for session in self.sessions.values():
            await session.close()
        self.sessions.clear()

    # -- webhooks -------------------------------------------------------------------------

    @staticmethod
    async def _load_policy(conn: psycopg.AsyncConnection) -> SsrfPolicy:
        """The database's SSRF lists, the one source of both sides' verdicts."""
        cur = await conn.execute(POLICY_SQL)
        networks, names = await cur.fetchone()
        return SsrfPolicy.from_lists(networks, names)

    def _session(self, allowed: tuple[str, ...]) -> aiohttp.ClientSession:
        session = self.sessions.get(allowed)
        if session is None:
            s = self.settings
            assert self.policy is not None
            connector = aiohttp.TCPConnector(
                limit=s.http_concurrency, limit_per_host=0, use_dns_cache=False, enable_cleanup_closed=True,
                resolver=HostGuard(self.policy, allowed, self.lookup),
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=s.timeout),
                headers={"user-agent": USER_AGENT},
                skip_auto_headers=("accept-encoding",),
            )
            self.sessions[allowed] = session
        return session

    async def _recorder(self) -> None:
        """Records results of every lane, as many per transaction as are waiting.
        Kept across database errors and recorded after reconnecting; a result that
        cannot be recorded before shutdown is sent again once its lease ends."""
        conn: psycopg.AsyncConnection | None = None
        pending: list[Result] = []
        failures = 0
        closing = False
        while True:
            if not pending:
                item = await self._results.get()
                if item is None:
                    break
                pending.append(item)
            while not self._results.empty() and len(pending) < 1000:
                item = self._results.get_nowait()
                if item is None:
                    closing = True
                    break
                pending.append(item)
            try:
                if conn is None or conn.closed:
                    conn = await self.connect()
                await self._record(conn, pending)
                self.count("recorded", len(pending))
                pending = []
                failures = 0
                self.connection_ok("recorder")
            except psycopg.Error as exc:
                failures += 1
                self.connection_lost("recorder", exc)
                if conn is not None:
                    await conn.close()
                conn = None
                if closing or (self.stopping and failures > 3):
                    break
                if not isinstance(exc, psycopg.OperationalError) and failures > 3:
                    # Not the connection: this batch itself is refused. Drop it rather
                    # than block every later result; its deliveries go again after the lease.
                    log.error("recorder: dropping %d results the database refuses: %s", len(pending), exc)
                    self.count("dropped", len(pending))
                    pending = []
                    failures = 0
                    self.connection_ok("recorder")
                    continue
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))
            if closing and not pending:
                break
        if conn is not None:
            await conn.close()

    async def _record(self, conn: psycopg.AsyncConnection, results: list[Result]) -> None:
        await conn.execute(RECORD_SQL, (
            self.instance,
            [r.delivery_id for r in results],
            [r.attempt for r in results],
            [r.outcome for r in results],
            [r.status_code for r in results],
            [r.latency_ms for r in results],
            [r.error for r in results],
            [r.excerpt for r in results],
            [r.retry_in for r in results],
            self.settings.disable_after,
        ))

    def _result(self, row: Claimed, status: int | None, latency_ms: int | None, error: str | None,
                excerpt: str | None, retry_after: float | None) -> Result:
        if status is not None and 200 <= status < 300:
            return Result(row.delivery_id, row.attempt, "succeeded", status, latency_ms, None, excerpt, 0.0)
        if status == 410:
            return Result(row.delivery_id, row.attempt, "gone", status, latency_ms, error, excerpt, 0.0)
        delay = next_delay(self.settings, row.run_attempt, retry_after)
        outcome = "failed" if delay is None else "retry"
        return Result(row.delivery_id, row.attempt, outcome, status, latency_ms, error, excerpt, delay or 0.0)

    async def _deliver(self, row: Claimed) -> Result:
        try:
            return await self._send(row)
        except Exception as exc:  # one delivery must never fail its batch
            log.exception("delivery %s failed unexpectedly", row.delivery_id)
            return self._result(row, None, None, f"internal error: {type(exc).__name__}: {exc}"[:2000], None, None)

    async def _send(self, row: Claimed) -> Result:
        assert self.policy is not None
        # The org's allowlist and the operator's, as one hashable key.
        allowed = tuple(sorted({*self._global_allow, *(row.allowed_hosts or ())}))
        # IP literals and names by their form; the addresses a name resolves to are
        # checked by this session's HostGuard when it connects.
        refusal = self.policy.url_refusal(row.url, allowed)
        if refusal is not None:
            return self._result(row, None, None, refusal, None, None)
        secrets = [self._secrets[i] for i in row.secret_ids or () if i in self._secrets]
        if not secrets:
            return self._result(row, None, None, "the endpoint has no valid signing secret", None, None)
        body = row.body.encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": row.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secrets, row.webhook_id, timestamp, body),
        }
        started = time.perf_counter()
        status = retry_after = excerpt = error = None
        try:
            async with self._session(allowed).post(row.url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                raw = await resp.content.read(RESPONSE_EXCERPT_BYTES)
                excerpt = raw.decode("utf-8", "ignore").replace("\x00", "") or None
        except TimeoutError:
            error = f"timed out after {self.settings.timeout:g} s"
        except aiohttp.ClientError as exc:
            refused = exc.__cause__ if isinstance(exc.__cause__, Refused) else None
            error = str(refused) if refused else f"{type(exc).__name__}: {exc}"[:2000]
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
        latency_ms = int((time.perf_counter() - started) * 1000)
        self.count("sent")
        if status is not None and not 200 <= status < 300 and error is None:
            error = f"HTTP {status}"
        return self._result(row, status, latency_ms, error, excerpt, retry_after)
