"""The webhook dispatcher: claims due deliveries with FOR UPDATE SKIP LOCKED, POSTs
them signed the Standard Webhooks way, and records every attempt.

One process runs `lanes` loops, each with its own connection: claim up to `batch_size`
due deliveries (one transaction), send them concurrently over one shared aiohttp
session (keep-alive), record the batch (one transaction). A LISTEN connection wakes
the lanes on `cfgctl_events` / `cfgctl_webhooks`; polling every `poll_interval`
catches retries that came due and anything a lost notification missed.

Guarantees (README, "Webhooks"): at-least-once. A claim is a lease: it bumps the
attempt number and moves `next_attempt_at` to the lease's end, so a worker killed
mid-delivery leaves the row due again when the lease ends, and an attempt number is
handed to one worker only. Every database error drops the connection and retries
with backoff, so a Postgres restart is ridden out; results not yet recorded are
kept and recorded after reconnecting.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
import psycopg
from aiohttp.abc import AbstractResolver
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("cfgctl.webhooks")

RESPONSE_EXCERPT_BYTES = 4096
USER_AGENT = "cfgctl-webhooks/0.1"


class WebhookSettings(BaseSettings):
    """CFGCTL_WEBHOOK_* environment variables; tests shorten the times."""

    model_config = SettingsConfigDict(env_prefix="CFGCTL_WEBHOOK_", extra="ignore")

    # Chosen by bench/bench_webhooks.py (README, Webhooks): 100 drains fastest on 2 cores.
    batch_size: int = 100
    lanes: int = 4
    http_concurrency: int = 256
    timeout: float = 15.0
    lease: float = 60.0
    poll_interval: float = 1.0
    # Delay before each attempt of a run: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    retry_schedule: str = "0,5,300,1800,7200,18000,36000,36000"
    jitter: float = 0.1
    max_retry_after: float = 86400.0
    disable_after: float = 5 * 86400.0
    # Hosts, IPs or CIDRs every org may reach although private (the operator's allowlist).
    allow_hosts: str = ""
    dns_ttl: float = 30.0

    @property
    def schedule(self) -> list[float]:
        return [float(x) for x in self.retry_schedule.split(",") if x.strip()]


@dataclass
class Claimed:
    delivery_id: int
    attempt: int
    run_attempt: int
    org_id: object
    endpoint_id: object
    url: str
    secrets: list[str]
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


# =============================================================================
# Signatures (Standard Webhooks: v1,<base64 HMAC-SHA256 of id.timestamp.body>)
# =============================================================================

_keys: dict[str, bytes] = {}


def secret_key(secret: str) -> bytes:
    key = _keys.get(secret)
    if key is None:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        _keys[secret] = key
    return key


def sign(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: one `v1,<sig>` per valid secret, space separated."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), to_sign, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def next_delay(settings: WebhookSettings, run_attempt: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after run attempt `run_attempt` failed; None when exhausted."""
    schedule = settings.schedule
    if run_attempt >= len(schedule):
        return None
    delay = schedule[run_attempt] * random.uniform(1 - settings.jitter, 1 + settings.jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.max_retry_after))
    return delay


# =============================================================================
# SSRF guard: the same blocked networks as the database (one list, read at
# start), resolved addresses pinned for the connection (no DNS rebinding).
# =============================================================================


class HostGuard(AbstractResolver):
    def __init__(self, blocked: list[str], global_allow: list[str], ttl: float):
        self.blocked = [ipaddress.ip_network(n) for n in blocked]
        self.global_allow = [h.strip().lower() for h in global_allow if h.strip()]
        self.ttl = ttl
        self._cache: dict[tuple[str, int], tuple[float, list]] = {}
        self._verdicts: dict[tuple[str, tuple[str, ...]], tuple[float, str | None]] = {}

    @staticmethod
    def _networks(entries: list[str]) -> list:
        nets = []
        for entry in entries:
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                pass
        return nets

    def _allowed(self, host: str, address: str | None, allow: list[str]) -> bool:
        entries = self.global_allow + list(allow)
        if host in entries:
            return True
        if address is None:
            return False
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self._networks(entries) if net.version == ip.version)

    def _blocked(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in net for net in self.blocked if net.version == ip.version)

    async def _getaddrinfo(self, host: str, port: int) -> list:
        key = (host, port)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        self._cache[key] = (now + self.ttl, infos)
        return infos

    async def check(self, url: str, allow: list[str]) -> str | None:
        """Why url may not be called now, or None when it may (cached as long as DNS answers)."""
        key = (url, tuple(allow))
        hit = self._verdicts.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        verdict = await self._check(url, allow)
        if len(self._verdicts) > 10000:
            self._verdicts.clear()
        self._verdicts[key] = (now + self.ttl, verdict)
        return verdict

    async def _check(self, url: str, allow: list[str]) -> str | None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal = str(ipaddress.ip_address(host))
        except ValueError:
            literal = None
        if parts.scheme != "https" and not self._allowed(host, literal, allow):
            return f"refused: plain http to {host} (https required unless allowlisted)"
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [info[4][0] for info in await self._getaddrinfo(host, port)]
            except OSError as exc:
                return f"DNS lookup of {host} failed: {exc}"
        for address in addresses:
            if self._blocked(address) and not self._allowed(host, address, allow):
                return f"refused: {host} resolves to {address}, a loopback, private, link-local or metadata address"
        return None

    # aiohttp resolver: hand out exactly what check() looked at.
    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list:
        infos = await self._getaddrinfo(host, port)
        return [
            {"hostname": host, "host": info[4][0], "port": port, "family": info[0],
             "proto": info[2], "flags": socket.AI_NUMERICHOST}
            for info in infos
        ]

    async def close(self) -> None:
        self._cache.clear()


# =============================================================================
# The dispatcher
# =============================================================================

CLAIM_SQL = "select * from cfg_private.claim_webhook_deliveries(%s, %s, make_interval(secs => %s))"
RECORD_SQL = (
    "select cfg_private.record_webhook_attempts(%s, %s::bigint[], %s::integer[], %s::text[], "
    "%s::integer[], %s::integer[], %s::text[], %s::text[], %s::double precision[], make_interval(secs => %s))"
)


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    db_errors: int = 0
    extra: dict = field(default_factory=dict)


class Dispatcher:
    def __init__(self, db_url: str, settings: WebhookSettings | None = None, name: str | None = None):
        self.db_url = db_url
        self.settings = settings or WebhookSettings()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stats = Stats()
        # Work may be due (a NOTIFY came, or a lane claimed a full batch). One idle
        # lane is woken per signal: waking them all would run empty claims.
        self._dirty = False
        self._idle: deque[asyncio.Event] = deque()
        self._stop = asyncio.Event()
        self.guard: HostGuard | None = None
        self._results: asyncio.Queue[Result | None] = asyncio.Queue()
        self.session: aiohttp.ClientSession | None = None

    def stop(self) -> None:
        self._stop.set()
        for waiter in self._idle:
            waiter.set()

    def _kick(self) -> None:
        self._dirty = True
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.is_set():
                waiter.set()
                return

    async def _connect(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(
            self.db_url, autocommit=True, application_name=f"cfgctl-webhooks {self.name}"
        )
        # The dispatcher acts with the service_role key, as PostgREST would (claims
        # included, so audit rows name service_role), for the whole session.
        # Asynchronous commit for claims and results: a Postgres crash can lose the
        # last fraction of a second of them, which only means those deliveries are
        # sent again (at-least-once); events themselves are committed by their writers.
        await conn.execute(
            "select set_config('role', 'service_role', false), "
            "set_config('request.jwt.claims', '{\"role\": \"service_role\"}', false), "
            "set_config('synchronous_commit', 'off', false), set_config('jit', 'off', false)"
        )
        return conn

    async def _backoff(self, failures: int) -> None:
        delay = min(5.0, 0.1 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0)
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except TimeoutError:
            pass

    async def _load_blocked(self) -> list[str]:
        failures = 0
        while not self._stop.is_set():
            try:
                async with await self._connect() as conn:
                    cur = await conn.execute("select unnest(cfg_private.webhook_blocked_networks())::text")
                    return [r[0] for r in await cur.fetchall()]
            except psycopg.Error as exc:
                failures += 1
                log.warning("cannot reach the database (%s); retrying", str(exc).strip())
                await self._backoff(failures)
        return []

    async def run(self) -> None:
        """Run until stop(): the listener and `lanes` claim loops."""
        s = self.settings
        blocked = await self._load_blocked()
        self.guard = HostGuard(blocked, s.allow_hosts.split(","), s.dns_ttl)
        connector = aiohttp.TCPConnector(
            limit=s.http_concurrency, limit_per_host=0, resolver=self.guard, use_dns_cache=False,
            enable_cleanup_closed=True,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=s.timeout),
            headers={"user-agent": USER_AGENT},
            skip_auto_headers=("accept-encoding",),
        )
        self._results = asyncio.Queue()
        listener = asyncio.create_task(self._listen(), name="webhooks-listen")
        recorder = asyncio.create_task(self._recorder(), name="webhooks-recorder")
        lanes = [asyncio.create_task(self._lane(i), name=f"webhooks-lane-{i}") for i in range(s.lanes)]
        try:
            await self._stop.wait()
            await asyncio.gather(*lanes)
            self._results.put_nowait(None)
            await asyncio.wait_for(recorder, timeout=30)
        finally:
            listener.cancel()
            for task in (*lanes, recorder):
                task.cancel()
            await asyncio.gather(listener, recorder, *lanes, return_exceptions=True)
            await self.session.close()

    async def _listen(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
                    await conn.execute("listen cfgctl_events")
                    await conn.execute("listen cfgctl_webhooks")
                    failures = 0
                    self._kick()  # catch up on whatever came while we were away
                    async for _ in conn.notifies():
                        self._kick()
            except psycopg.Error as exc:
                failures += 1
                log.warning("listener lost the database (%s); reconnecting", str(exc).strip())
                self._kick()
                await self._backoff(failures)

    async def _wait_for_work(self, waiter: asyncio.Event) -> None:
        """Until kicked (or the poll interval passes); returns at once if a kick came
        since this lane's last claim."""
        if not self._dirty and not self._stop.is_set():
            waiter.clear()
            self._idle.append(waiter)
            try:
                await asyncio.wait_for(waiter.wait(), timeout=self.settings.poll_interval)
            except TimeoutError:
                pass
            finally:
                if waiter in self._idle:
                    self._idle.remove(waiter)
        self._dirty = False

    async def _lane(self, index: int) -> None:
        """Claim, send, hand the results to the recorder, claim again: recording
        never delays the next claim."""
        s = self.settings
        worker = f"{self.name}/{index}"
        conn: psycopg.AsyncConnection | None = None
        failures = 0
        waiter = asyncio.Event()
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await self._connect()
                cur = await conn.execute(CLAIM_SQL, (worker, s.batch_size, s.lease))
                rows = [Claimed(*r) for r in await cur.fetchall()]
                failures = 0
            except psycopg.Error as exc:
                failures += 1
                self.stats.db_errors += 1
                log.warning("lane %s: database error (%s); reconnecting", index, str(exc).strip())
                if conn is not None:
                    await conn.close()
                conn = None
                await self._backoff(failures)
                continue
            if not rows:
                await self._wait_for_work(waiter)
                continue
            if len(rows) == s.batch_size:
                self._kick()  # probably more: let an idle lane claim too
            self.stats.claimed += len(rows)
            for result in await asyncio.gather(*(self._deliver(r) for r in rows)):
                self._results.put_nowait(result)
        if conn is not None:
            await conn.close()

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
                    conn = await self._connect()
                await self._record(conn, self.name, pending)
                pending = []
                failures = 0
            except psycopg.Error as exc:
                failures += 1
                self.stats.db_errors += 1
                log.warning("recorder: database error (%s); reconnecting", str(exc).strip())
                if conn is not None:
                    await conn.close()
                conn = None
                if closing or (self._stop.is_set() and failures > 3):
                    break
                if not isinstance(exc, psycopg.OperationalError) and failures > 3:
                    # Not the connection: this batch itself is refused. Drop it rather
                    # than block every later result; its deliveries go again after the lease.
                    log.error("recorder: dropping %d results the database refuses: %s", len(pending), exc)
                    pending = []
                    failures = 0
                    continue
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))
            if closing and not pending:
                break
        if conn is not None:
            await conn.close()

    async def _record(self, conn: psycopg.AsyncConnection, worker: str, results: list[Result]) -> None:
        await conn.execute(RECORD_SQL, (
            worker,
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
            self.stats.succeeded += 1
            return Result(row.delivery_id, row.attempt, "succeeded", status, latency_ms, None, excerpt, 0.0)
        self.stats.failed_attempts += 1
        if status == 410:
            return Result(row.delivery_id, row.attempt, "gone", status, latency_ms, error, excerpt, 0.0)
        delay = next_delay(self.settings, row.run_attempt, retry_after)
        outcome = "failed" if delay is None else "retry"
        return Result(row.delivery_id, row.attempt, outcome, status, latency_ms, error, excerpt, delay or 0.0)

    async def _deliver(self, row: Claimed) -> Result:
        try:
            return await self._send(row)
        except Exception as exc:  # a lane must never die of one delivery
            log.exception("delivery %s failed unexpectedly", row.delivery_id)
            return self._result(row, None, None, f"internal error: {type(exc).__name__}: {exc}"[:2000], None, None)

    async def _send(self, row: Claimed) -> Result:
        assert self.guard is not None and self.session is not None
        refusal = await self.guard.check(row.url, row.allowed_hosts or [])
        if refusal is not None:
            return self._result(row, None, None, refusal, None, None)
        if not row.secrets:
            return self._result(row, None, None, "the endpoint has no valid signing secret", None, None)
        body = row.body.encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": row.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(row.secrets, row.webhook_id, timestamp, body),
        }
        started = time.perf_counter()
        status = retry_after = excerpt = error = None
        try:
            async with self.session.post(row.url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
                raw = await resp.content.read(RESPONSE_EXCERPT_BYTES)
                excerpt = raw.decode("utf-8", "ignore").replace("\x00", "") or None
        except TimeoutError:
            error = f"timed out after {self.settings.timeout:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
        latency_ms = int((time.perf_counter() - started) * 1000)
        self.stats.sent += 1
        if status is not None and not 200 <= status < 300 and error is None:
            error = f"HTTP {status}"
        return self._result(row, status, latency_ms, error, excerpt, retry_after)


async def run_dispatcher(db_url: str, stop: asyncio.Event, settings: WebhookSettings | None = None) -> None:
    """Worker entry point for `cfgctl serve` (sync_service.workers)."""
    dispatcher = Dispatcher(db_url, settings)
    task = asyncio.create_task(dispatcher.run())
    await stop.wait()
    dispatcher.stop()
    await task
