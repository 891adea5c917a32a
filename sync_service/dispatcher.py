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
import re
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
# SSRF guard. The policy is the database's: the blocked networks and names are read
# from cfg_private.webhook_blocked_networks() / webhook_blocked_names() at start, and
# SsrfPolicy.refusal mirrors cfg_private.webhook_refusal() line for line
# (tests/test_webhooks_ssrf.py asserts one table of host forms against both).
# Every connection is checked in the resolver aiohttp connects with (HostGuard):
# every address of every answer, no verdict kept beyond the connection.
# =============================================================================

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")
_IPV6 = re.compile(rf"[0-9a-f:]*:[0-9a-f:]*|[0-9a-f:]*:{_OCTET}(\.{_OCTET}){{3}}")
_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*|[0-9a-f:.]*:[0-9a-f:.]*")
_NUMERIC_END = re.compile(r"(^|\.)(0x[0-9a-f]*|[0-9]+)$")
_PREFIX = re.compile(r"[^/]*/[0-9]{1,3}")

REASONS = {
    "non_ascii": "is not an ASCII host name",
    "invalid_host": "is not a valid host name or IP address",
    "blocked_address": "is a loopback, private, link-local or metadata address",
    "numeric_host": "is a numeric address form",
    "local_name": "is a local name",
}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def host_literal(name: str) -> Address | None:
    """cfg_private.webhook_host_literal: the address a normalised host names, in canonical form only."""
    if _IPV4.fullmatch(name) or _IPV6.fullmatch(name):
        try:
            return ipaddress.ip_address(name)
        except ValueError:
            return None
    return None


def normalise(host: str) -> str:
    return host.lower().rstrip(".")


class SsrfPolicy:
    def __init__(self, networks: tuple, names: tuple[str, ...]):
        self.networks = networks
        self.names = names
        self._urls: dict[tuple[str, tuple[str, ...]], str | None] = {}

    @classmethod
    def from_lists(cls, networks: list[str], names: list[str]) -> SsrfPolicy:
        return cls(tuple(ipaddress.ip_network(n) for n in networks), tuple(names))

    @staticmethod
    def admits(allowed: tuple[str, ...], name: str, address: Address | None) -> bool:
        """cfg_private.webhook_allowlist_admits: a name, an address or a CIDR network in allowed."""
        for entry in allowed:
            if normalise(entry) == name:
                return True
            if address is None or host_literal(entry.split("/", 1)[0]) is None:
                continue
            if "/" in entry and not _PREFIX.fullmatch(entry):
                continue
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if network.version == address.version and address in network:
                return True
        return False

    def refusal(self, host: str, address: Address | None, allowed: tuple[str, ...]) -> str | None:
        """cfg_private.webhook_refusal: why host (at address) may not be called, or None."""
        name = normalise(host)
        if not host.isascii():
            return "non_ascii"
        if not _HOST.fullmatch(name):
            return "invalid_host"
        literal = host_literal(name)
        if literal is None and ":" in name:
            return "invalid_host"
        address = address if address is not None else literal
        if self.admits(allowed, name, address):
            return None
        if address is not None and any(
            address.version == n.version and address in n for n in self.networks
        ):
            return "blocked_address"
        if literal is None and _NUMERIC_END.search(name):
            return "numeric_host"
        if name in self.names or any(n.startswith(".") and name.endswith(n) for n in self.names):
            return "local_name"
        return None

    def url_refusal(self, url: str, allowed: tuple[str, ...]) -> str | None:
        """What cfg_private.check_webhook_url refuses, as a message (None: may be sent).
        Names are not resolved here: HostGuard checks their addresses at connection time.
        Memoised: a pure function of its arguments (no DNS), unlike a resolver's verdict."""
        key = (url, allowed)
        if key not in self._urls:
            if len(self._urls) >= 10000:
                self._urls.clear()
            self._urls[key] = self._url_refusal(url, allowed)
        return self._urls[key]

    def _url_refusal(self, url: str, allowed: tuple[str, ...]) -> str | None:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return "refused: not a valid URL"
        reason = self.refusal(host, None, allowed)
        if reason is not None:
            return f"refused: {host} {REASONS[reason]}"
        name = normalise(host)
        if parts.scheme != "https" and not self.admits(allowed, name, host_literal(name)):
            return f"refused: plain http to {host} (https required unless allowlisted)"
        return None


class Refused(OSError):
    """A connection the SSRF policy refuses (raised inside aiohttp's resolver)."""


async def system_lookup(host: str, port: int, family: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


class HostGuard(AbstractResolver):
    """aiohttp's resolver for one allowlist: checks the host and every address of every
    answer each time aiohttp opens a connection, and hands aiohttp exactly the addresses
    it checked. Nothing is cached, so a later answer (DNS rebinding) is checked afresh.
    aiohttp does not call a resolver for IP literals: Dispatcher._send checks those."""

    def __init__(self, policy: SsrfPolicy, allowed: tuple[str, ...] = (), lookup=system_lookup):
        self.policy = policy
        self.allowed = allowed
        self.lookup = lookup

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list:
        reason = self.policy.refusal(host, None, self.allowed)
        if reason is not None:
            raise Refused(f"refused: {host} {REASONS[reason]}")
        results = []
        for answer in await self.lookup(host, port, family):
            try:
                address = ipaddress.ip_address(answer.split("%", 1)[0])
            except ValueError:
                raise Refused(f"refused: {host} resolves to {answer!r}, not an IP address") from None
            if self.policy.refusal(host, address, self.allowed) is not None:
                raise Refused(f"refused: {host} resolves to {answer}, a loopback, private, link-local or "
                              "metadata address")
            results.append({
                "hostname": host, "host": answer, "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": socket.IPPROTO_TCP, "flags": socket.AI_NUMERICHOST,
            })
        if not results:
            raise OSError(f"DNS lookup of {host} returned no address")
        return results

    async def close(self) -> None:
        pass


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
    def __init__(self, db_url: str, settings: WebhookSettings | None = None, name: str | None = None,
                 lookup=system_lookup):
        self.db_url = db_url
        # How host names are resolved (tests script it; the guard checks whatever it answers).
        self.lookup = lookup
        self.settings = settings or WebhookSettings()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stats = Stats()
        # Work may be due (a NOTIFY came, or a lane claimed a full batch). One idle
        # lane is woken per signal: waking them all would run empty claims.
        self._dirty = False
        self._idle: deque[asyncio.Event] = deque()
        self._stop = asyncio.Event()
        self.policy: SsrfPolicy | None = None
        self._global_allow: tuple[str, ...] = ()
        self._results: asyncio.Queue[Result | None] = asyncio.Queue()
        # One HTTP session per allowlist: a kept-alive connection that one org's
        # allowlist admitted is never reused for an org whose allowlist does not.
        self.sessions: dict[tuple[str, ...], aiohttp.ClientSession] = {}

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

    async def _load_policy(self) -> SsrfPolicy:
        """The database's SSRF lists, the one source of both sides' verdicts."""
        failures = 0
        while not self._stop.is_set():
            try:
                async with await self._connect() as conn:
                    cur = await conn.execute("select cfg_private.webhook_blocked_networks()::text[], "
                                             "cfg_private.webhook_blocked_names()")
                    networks, names = await cur.fetchone()
                    return SsrfPolicy.from_lists(networks, names)
            except psycopg.Error as exc:
                failures += 1
                log.warning("cannot reach the database (%s); retrying", str(exc).strip())
                await self._backoff(failures)
        return SsrfPolicy((), ())

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

    async def run(self) -> None:
        """Run until stop(): the listener and `lanes` claim loops."""
        s = self.settings
        self.policy = await self._load_policy()
        self._global_allow = tuple(h.strip().lower() for h in s.allow_hosts.split(",") if h.strip())
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
            for session in self.sessions.values():
                await session.close()
            self.sessions.clear()

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
        assert self.policy is not None
        # The org's allowlist and the operator's, as one hashable key.
        allowed = tuple(sorted({*self._global_allow, *(row.allowed_hosts or ())}))
        # IP literals and names by their form; the addresses a name resolves to are
        # checked by this session's HostGuard when it connects.
        refusal = self.policy.url_refusal(row.url, allowed)
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
