"""The base every sync-service worker runs on (DESIGN.md §2, §6).

A worker states only what is its own: its `name`, the LISTEN `channels` whose
notifications mean work may be due, how a lane `claim`s a batch and how it `handle`s
one. The base provides the rest:

- service connections: each lane has its own, acting with the service_role key the
  way PostgREST does (role + claims), named `cfgctl-<name> <instance>` in
  pg_stat_activity;
- reconnect with backoff: a database error drops that connection and retries, so a
  Postgres restart is ridden out. Claims must be leases (the claim SQL's business):
  whatever a dead connection or a killed process held is claimed again when its
  lease ends (at-least-once);
- LISTEN wake-ups: a notification wakes one idle lane (waking all would run empty
  claims); a lane that claimed a full batch wakes another; every `poll_interval`
  each idle lane claims anyway (work coming due, a notification lost while away);
- a graceful stop: stop() lets every lane finish the batch in hand, then `drain()`;
- health: `self.health`, its state and counters, served by `cfgctl serve` on
  127.0.0.1 (sync_service.workers.status).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import sql
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("cfgctl.workers")

T = TypeVar("T")


class WorkerSettings(BaseSettings):
    """What the base reads; a worker's settings subclass this with its own env_prefix."""

    model_config = SettingsConfigDict(env_prefix="CFGCTL_WORKER_", extra="ignore")

    lanes: int = 1  # claim loops, a connection each
    batch_size: int = 100  # most items one claim takes
    poll_interval: float = 1.0  # an idle lane claims at least this often


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


@dataclass
class Health:
    """A worker's state and counters since it started (this process only)."""

    worker: str
    instance: str
    # starting | running | reconnecting (some connection is down) | stopping | stopped | crashed
    state: str = "starting"
    started_at: float = field(default_factory=time.time)
    last_claim_at: float | None = None  # last claim the database answered, empty or not
    last_work_at: float | None = None  # last claim that returned work
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0  # handled without success (the worker's SQL decides about retrying)
    reconnects: int = 0  # connections dropped on a database error
    last_error: str | None = None
    extra: dict[str, int] = field(default_factory=dict)  # the worker's own counters

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "last_claim_at", "last_work_at"):
            data[key] = _iso(data[key])
        return data


class Worker:
    """Subclass with `name`, `channels`, `claim` and `handle`; run() until stop()."""

    name: ClassVar[str]
    channels: ClassVar[tuple[str, ...]] = ()
    settings_class: ClassVar[type[WorkerSettings]] = WorkerSettings
    # Commit the worker's own bookkeeping asynchronously: a Postgres crash can forget
    # its last fraction of a second, which with leases only means work done again.
    asynchronous_commit: ClassVar[bool] = True

    def __init__(self, db_url: str, settings: WorkerSettings | None = None, instance: str | None = None):
        self.db_url = db_url
        self.settings = settings or self.settings_class()
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self.health = Health(self.name, self.instance)
        # Work may be due (a notification came, or a lane claimed a full batch); idle
        # lanes wait on their own event, one of them is woken per signal.
        self._dirty = False
        self._idle: deque[asyncio.Event] = deque()
        self._stop = asyncio.Event()
        self._down: set[str] = set()  # components whose connection is being re-established

    # -- what a worker provides ---------------------------------------------------------

    async def claim(self, conn: psycopg.AsyncConnection, lane: str) -> Sequence[Any]:
        """Claim (lease) up to settings.batch_size due items for `lane`; [] when none."""
        raise NotImplementedError

    async def handle(self, conn: psycopg.AsyncConnection, batch: Sequence[Any]) -> int | None:
        """Do the work of one claimed batch; returns how many items failed (None: none).
        A psycopg error drops the lane's connection (the batch's leases run out and it
        is claimed again); any other exception counts the batch failed, the lane goes on."""
        raise NotImplementedError

    async def start(self) -> None:
        """Before the lanes start (load what the worker needs; see retrying())."""

    async def drain(self) -> None:
        """After the lanes stopped on stop(): finish what they handed off."""

    async def close(self) -> None:
        """Last: release what start() took, even after a failure."""

    # -- what a worker may use ----------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def connect(self) -> psycopg.AsyncConnection:
        """A new autocommit connection acting as service_role for the whole session
        (claims included, so audit rows name service_role)."""
        conn = await psycopg.AsyncConnection.connect(
            self.db_url, autocommit=True, application_name=f"cfgctl-{self.name} {self.instance}"
        )
        try:
            await conn.execute(
                "select set_config('role', 'service_role', false), "
                "set_config('request.jwt.claims', '{\"role\": \"service_role\"}', false), "
                "set_config('synchronous_commit', %s, false), set_config('jit', 'off', false)",
                ("off" if self.asynchronous_commit else "on",),
            )
        except BaseException:
            await conn.close()
            raise
        return conn

    async def backoff(self, failures: int) -> None:
        """Wait before reconnecting: 0.1 s doubling up to 5 s, jittered; stop() cuts it short."""
        delay = min(5.0, 0.1 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0)
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except TimeoutError:
            pass

    def connection_lost(self, component: str, exc: BaseException) -> None:
        """Count and log a database error that drops `component`'s connection."""
        message = str(exc).strip() or type(exc).__name__
        self.health.reconnects += 1
        self.health.last_error = f"{component}: {message}"[:500]
        log.warning("%s %s: database error (%s); reconnecting", self.name, component, message)
        self._down.add(component)
        self._update_state()

    def connection_ok(self, component: str) -> None:
        if component in self._down:
            self._down.discard(component)
            self._update_state()

    async def retrying(self, what: str, action: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T | None:
        """action(conn) on a fresh service connection, retried with backoff until it
        succeeds (its result) or stop() (None)."""
        failures = 0
        while not self._stop.is_set():
            try:
                async with await self.connect() as conn:
                    result = await action(conn)
                self.connection_ok(what)
                return result
            except psycopg.Error as exc:
                failures += 1
                self.connection_lost(what, exc)
                await self.backoff(failures)
        return None

    def count(self, key: str, n: int = 1) -> None:
        """Add to one of the worker's own counters (health.extra)."""
        self.health.extra[key] = self.health.extra.get(key, 0) + n

    # -- the machinery ------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        for waiter in self._idle:
            waiter.set()

    async def run(self) -> None:
        """Run until stop(): start(), the listener and the lanes, then drain() and close()."""
        self.health.state = "starting"
        tasks: list[asyncio.Task] = []
        try:
            await self.start()
            tasks.append(asyncio.create_task(self._listen(), name=f"{self.name}-listen"))
            lanes = [asyncio.create_task(self._lane(i), name=f"{self.name}-lane-{i}")
                     for i in range(self.settings.lanes)]
            tasks += lanes
            self.health.state = "running"
            self._update_state()
            await self._stop.wait()
            self.health.state = "stopping"
            await asyncio.gather(*lanes)
            await self.drain()
        except BaseException:
            self.health.state = "crashed"
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()
            if self.health.state != "crashed":
                self.health.state = "stopped"

    def _update_state(self) -> None:
        if self.health.state in ("running", "reconnecting"):
            self.health.state = "reconnecting" if self._down else "running"

    def _kick(self) -> None:
        self._dirty = True
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.is_set():
                waiter.set()
                return

    async def _listen(self) -> None:
        if not self.channels:
            return  # polling only
        failures = 0
        while not self._stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.db_url, autocommit=True, application_name=f"cfgctl-{self.name} {self.instance}"
                ) as conn:
                    for channel in self.channels:
                        await conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
                    failures = 0
                    self.connection_ok("listener")
                    self._kick()  # catch up on whatever came while we were away
                    async for _ in conn.notifies():
                        self._kick()
            except psycopg.Error as exc:
                failures += 1
                self.connection_lost("listener", exc)
                self._kick()
                await self.backoff(failures)

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
        """Claim, handle, claim again, on the lane's own connection."""
        lane = f"{self.instance}/{index}"
        component = f"lane {index}"
        health = self.health
        conn: psycopg.AsyncConnection | None = None
        failures = 0
        waiter = asyncio.Event()
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await self.connect()
                batch = await self.claim(conn, lane)
                health.last_claim_at = time.time()
                failures = 0
                if self._down:
                    self.connection_ok(component)
            except psycopg.Error as exc:
                failures += 1
                self.connection_lost(component, exc)
                conn = await _close(conn)
                await self.backoff(failures)
                continue
            if not batch:
                await self._wait_for_work(waiter)
                continue
            if len(batch) >= self.settings.batch_size:
                self._kick()  # probably more: let an idle lane claim too
            health.claimed += len(batch)
            health.last_work_at = health.last_claim_at
            try:
                failed = await self.handle(conn, batch) or 0
            except psycopg.Error as exc:
                health.failed += len(batch)
                failures += 1
                self.connection_lost(component, exc)
                conn = await _close(conn)
                await self.backoff(failures)
                continue
            except Exception as exc:  # a lane must never die of one batch
                log.exception("%s %s: handling a batch of %d failed", self.name, component, len(batch))
                health.failed += len(batch)
                health.last_error = f"{component}: {type(exc).__name__}: {exc}"[:500]
                continue
            health.succeeded += len(batch) - failed
            health.failed += failed
        await _close(conn)


async def _close(conn: psycopg.AsyncConnection | None) -> None:
    if conn is not None:
        await conn.close()
