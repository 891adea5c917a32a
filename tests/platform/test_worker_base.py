"""The worker base (sync_service/workers/base.py) is reusable: a second worker, written
here in a few lines over a table of its own, gets LISTEN wake-ups, reconnecting,
a graceful stop and health without any code of its own for them. And a running
`cfgctl serve` reports its workers' health: `cfgctl serve --status`, JSON, /metrics."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from sync_service.workers.base import Health, Worker, WorkerSettings
from sync_service.workers.status import prometheus
from tests.support.cli import Run, run_cfgctl
from tests.support.webhooks import (
    Receiver,
    allow_host,
    create_endpoint,
    emit,
    start_serve,
    stop_serve,
    wait_until,
)

# =============================================================================
# A second worker: counts items off a table, nothing else
# =============================================================================

ITEMS = """
create table public.worker_test_items (
    id bigint generated always as identity primary key,
    leased_until timestamptz,  -- a claim is a lease, as the base expects
    done_at timestamptz
);
grant select, insert, update on public.worker_test_items to service_role;
"""


class CountingWorker(Worker):
    name = "counting"
    channels = ("worker_test_items",)

    def __init__(self, db_url: str, settings: WorkerSettings, hold: float = 0.0, poison: tuple[int, ...] = (),
                 fail: tuple[int, ...] = ()):
        super().__init__(db_url, settings, instance="test")
        self.hold, self.poison, self.fail = hold, poison, fail

    async def claim(self, conn, lane):
        cur = await conn.execute(
            "update public.worker_test_items set leased_until = now() + interval '1 minute' where id in ("
            "  select id from public.worker_test_items where done_at is null"
            "    and (leased_until is null or leased_until < now())"
            "  order by id limit %s for update skip locked) returning id", (self.settings.batch_size,))
        return [row[0] for row in await cur.fetchall()]

    async def handle(self, conn, batch):
        await asyncio.sleep(self.hold)
        if set(batch) & set(self.poison):
            raise RuntimeError("poisoned batch")
        done = [i for i in batch if i not in self.fail]
        await conn.execute("update public.worker_test_items set done_at = now() where id = any(%s)", (done,))
        return len(batch) - len(done)


class ThreadWorker:
    """A worker on its own event loop in a thread."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(worker.run()), daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def stop(self) -> float:
        """Stop the worker; how long run() took to return."""
        started = time.perf_counter()
        self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(15)
        assert not self.thread.is_alive(), "worker did not stop"
        return time.perf_counter() - started

    def __exit__(self, *exc) -> None:
        if self.thread.is_alive():
            self.stop()
        self.loop.close()


@pytest.fixture
def items(conn):
    conn.execute(ITEMS)
    conn.commit()
    return conn


def add(conn, n: int, notify: bool = True) -> list[int]:
    with conn.transaction():
        ids = [r["id"] for r in conn.execute(
            "insert into public.worker_test_items (done_at) select null from generate_series(1, %s) returning id",
            (n,))]
        if notify:
            conn.execute("notify worker_test_items")
    return ids


def done(conn) -> int:
    with conn.transaction():
        return conn.execute("select count(*) as n from public.worker_test_items where done_at is not null"
                            ).fetchone()["n"]


def connected(conn, n: int) -> bool:
    """The worker's lanes and listener are all connected."""
    with conn.transaction():  # pg_stat_activity is a per-transaction snapshot
        return conn.execute("select count(*) as n from pg_stat_activity where application_name = 'cfgctl-counting test'"
                            ).fetchone()["n"] == n


def settings(**kw) -> WorkerSettings:
    # A poll interval far longer than the tests: only a notification can wake a lane in time.
    return WorkerSettings(**({"lanes": 2, "batch_size": 5, "poll_interval": 60} | kw))


def test_a_notification_wakes_the_worker_and_full_batches_wake_other_lanes(items, db_url):
    with ThreadWorker(CountingWorker(db_url, settings())) as worker:
        wait_until(lambda: connected(items, 3), what="2 lanes and the listener connected")
        wait_until(lambda: worker.health.last_claim_at, what="a first claim")
        add(items, 12)
        wait_until(lambda: done(items) == 12, timeout=5, what="12 items done")
        wait_until(lambda: worker.health.succeeded == 12, what="counted")
        health = worker.health
        assert (health.state, health.claimed, health.succeeded, health.failed, health.reconnects) == (
            "running", 12, 12, 0, 0)
        assert health.started_at <= health.last_work_at <= health.last_claim_at <= time.time()
    assert worker.health.state == "stopped"


def test_the_worker_rides_out_lost_connections(items, db_url):
    with ThreadWorker(CountingWorker(db_url, settings())) as worker:
        wait_until(lambda: connected(items, 3), what="connected")
        with items.transaction():
            killed = items.execute("select count(pg_terminate_backend(pid)) as n from pg_stat_activity "
                                   "where application_name = 'cfgctl-counting test'").fetchone()["n"]
        assert killed == 3
        add(items, 7)  # the listener reconnects and catches up: no poll needed
        wait_until(lambda: done(items) == 7, timeout=10, what="7 items done after reconnecting")
        wait_until(lambda: worker.health.state == "running", what="running again")
        assert worker.health.reconnects >= 2  # the listener and at least one lane
        assert worker.health.last_error and worker.health.succeeded == 7


def test_stop_lets_the_batch_in_hand_finish(items, db_url):
    runner = ThreadWorker(CountingWorker(db_url, settings(), hold=1.0))
    with runner as worker:
        wait_until(lambda: connected(items, 3), what="connected")
        add(items, 3)
        wait_until(lambda: worker.health.claimed == 3, what="claimed")
        assert done(items) == 0
        took = runner.stop()
    assert done(items) == 3 and worker.health.succeeded == 3 and worker.health.state == "stopped"
    assert took < 5  # the lanes waiting on their 60 s poll were woken to stop


def test_failed_items_are_counted_and_the_lane_goes_on(items, db_url):
    worker = CountingWorker(db_url, settings(lanes=1, batch_size=1, poll_interval=0.05), poison=(1,), fail=(2,))
    with ThreadWorker(worker):
        add(items, 3)
        wait_until(lambda: done(items) == 1, what="the third item done")
        wait_until(lambda: worker.health.claimed == 3 and worker.health.failed == 2, what="counted")
        assert (worker.health.succeeded, worker.health.state) == (1, "running")
        assert "poisoned batch" in worker.health.last_error


def test_health_as_json_and_prometheus_text():
    health = Health("counting", "host:1", state="running", claimed=3, succeeded=2, failed=1, extra={"sent": 3})
    snap = health.snapshot()
    assert json.loads(json.dumps(snap))["started_at"].endswith("+00:00") and snap["last_claim_at"] is None
    text = prometheus([health, Health('odd"name', "host:1")])
    assert 'cfgctl_worker_claimed_total{worker="counting"} 3' in text
    assert 'cfgctl_worker_up{worker="counting"} 1' in text and 'cfgctl_worker_up{worker="odd\\"name"} 0' in text
    assert 'cfgctl_worker_state{worker="counting",state="running"} 1' in text
    assert 'cfgctl_worker_sent_total{worker="counting"} 3' in text
    assert "last_claim_at_seconds{" not in text  # no sample for a time that has not happened
    for line in text.splitlines():  # every line is a comment or `name{labels} number`
        assert line.startswith("# ") or re.fullmatch(r'[a-z_]+\{[^}]*\} [0-9.e+]+', line), line


# =============================================================================
# A running `cfgctl serve` reports its workers' health
# =============================================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_cli(port: int, *args: str) -> Run:
    """`cfgctl serve --status` in-process: the client side; the server is the real process."""
    return run_cfgctl("serve", "--status", "--status-port", str(port), *args)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def listening_on(port: int) -> set[str]:
    """The local addresses of the IPv4/IPv6 sockets listening on port (from /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_serve_status_reports_health_and_counters(conn, world, db_url, tmp_path):
    port = free_port()
    with Receiver() as receiver:
        allow_host(conn, world.org_a, "127.0.0.1")
        create_endpoint(conn, world["admin"], world.org_a, receiver.url("/hook"))
        proc = start_serve(db_url, tmp_path / "serve.log", CFGCTL_SERVE_STATUS_PORT=port)
        try:
            wait_until(lambda: status_cli(port).code == 0, timeout=20, what="serve running")
            assert listening_on(port) == {"0100007F"}  # 127.0.0.1, nothing else
            emit(conn, world.org_a)
            receiver.wait_for(1)

            def recorded():
                snap = json.loads(status_cli(port, "--json").out)
                return snap if snap["workers"][0]["extra"].get("recorded") else None

            snap = wait_until(recorded, what="the attempt recorded")
            (webhooks,) = snap["workers"]
            assert snap["pid"] == proc.pid
            assert webhooks["worker"] == "webhooks" and webhooks["state"] == "running"
            assert (webhooks["claimed"], webhooks["succeeded"], webhooks["failed"], webhooks["reconnects"]) == (
                1, 1, 0, 0)
            assert webhooks["extra"] == {"sent": 1, "recorded": 1}
            assert webhooks["started_at"] <= webhooks["last_work_at"] <= webhooks["last_claim_at"]
            table = status_cli(port)
            assert table.code == 0 and "webhooks" in table.out and "running" in table.out
            status, metrics = get(port, "/metrics")
            assert status == 200
            assert 'cfgctl_worker_succeeded_total{worker="webhooks"} 1' in metrics
            assert 'cfgctl_worker_up{worker="webhooks"} 1' in metrics
            assert get(port, "/healthz") == (200, "ok\n")
        finally:
            stop_serve(proc)
    assert proc.returncode == 0
    gone = status_cli(port)
    assert gone.code == 1 and "no cfgctl serve answers" in gone.err
    assert status_cli(0).code == 6


def test_serve_runs_every_worker_as_make_up_does(db_url, tmp_path):
    """`make up` runs `cfgctl serve` with no --worker: every registered worker starts,
    reports running, and stops on SIGTERM with exit 0."""
    from sync_service.workers import WORKERS

    port = free_port()
    proc = start_serve(db_url, tmp_path / "serve.log", workers=(), CFGCTL_SERVE_STATUS_PORT=port)
    try:
        wait_until(lambda: status_cli(port).code == 0, timeout=20, what="serve running")
        snap = json.loads(status_cli(port, "--json").out)
        assert {w["worker"]: w["state"] for w in snap["workers"]} == {name: "running" for name in WORKERS}
    finally:
        stop_serve(proc)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
