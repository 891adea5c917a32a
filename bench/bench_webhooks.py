"""Webhook dispatcher benchmark (issue 4), with a pgqueuer baseline in the same run.

Starts a throwaway PostgreSQL cluster (default durability: fsync on) and a local
aiohttp receiver in its own process, then measures:

1. backlog drain: deliveries/s with 1 and 2 `cfgctl serve` worker processes, and a
   claim batch-size sweep with 1 process;
2. p50/p99 latency from commit to receipt at a steady 1,000 events/s;
3. the baseline: the same jobs (same ~1 KB body, same signed aiohttp POST) through
   pgqueuer, for both the drain and the steady-rate latency. pgqueuer is set up as its
   performance-tuning guide recommends for short I/O-bound jobs (PGQUEUER_SETTINGS), and
   its no-op rate is printed beside it as a sanity check of the baseline itself.

Receipt times are taken by the receiver; commit times by the producer right after
COMMIT returns (same host clock). Run: `make bench` or `.venv/bin/python bench/bench_webhooks.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAYLOAD = {"automation": {"slug": "billing-api", "notes": "x" * 600, "tags": ["a", "b", "c"]}}
PRODUCERS = 4
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "AAAAAAAAAAA="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# =============================================================================
# Receiver process: records (webhook-id, receipt time)
# =============================================================================


def run_receiver(port: int) -> None:
    from aiohttp import web

    seen: list[tuple[str, float]] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        seen.append((request.headers.get("webhook-id", ""), time.time()))
        return web.Response(text="ok")

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"count": len(seen)})

    async def dump(_: web.Request) -> web.Response:
        return web.json_response(seen)

    async def reset(_: web.Request) -> web.Response:
        seen.clear()
        return web.json_response({"count": 0})

    app = web.Application()
    app.add_routes([web.post("/hook", hook), web.get("/stats", stats), web.get("/dump", dump),
                    web.post("/reset", reset)])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=1024)


class ReceiverClient:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def _call(self, path: str, method: str = "GET"):
        req = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def count(self) -> int:
        return self._call("/stats")["count"]

    def dump(self) -> list[tuple[str, float]]:
        return [tuple(x) for x in self._call("/dump")]

    def reset(self) -> None:
        self._call("/reset", "POST")

    def wait_for(self, n: int, timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while self.count() < n:
            if time.time() > deadline:
                raise SystemExit(f"receiver got {self.count()} of {n}")
            time.sleep(0.05)


# =============================================================================
# pgqueuer worker process: the same signed POST per job
# =============================================================================
# Configured as pgqueuer's performance-tuning guide recommends for short I/O-bound
# jobs: the asyncpg driver on a dedicated connection, an async entrypoint with no
# per-entrypoint limit, a batch per dequeue round-trip and `max_concurrent_tasks`
# (at least 2 x batch) as the per-process ceiling, and `pgq autovac` applied.
PGQUEUER_SETTINGS = {"driver": "asyncpg", "max_concurrent_tasks": "4 x batch", "autovac": True,
                     "durability": "durable (as the cfgctl outbox)"}


def run_pgqueuer_worker(db_url: str, receiver_url: str, batch_size: int, noop: bool = False) -> None:
    """noop: the entrypoint returns at once, to show pgqueuer's own ceiling here."""
    import aiohttp
    import asyncpg
    from pgqueuer import QueueManager
    from pgqueuer.models import Job
    from pgqueuer.queries import Queries

    from sync_service.workers.webhooks import sign

    async def main() -> None:
        conn = await asyncpg.connect(db_url)
        qm = QueueManager(Queries.from_asyncpg_connection(conn))
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                        timeout=aiohttp.ClientTimeout(total=15))

        @qm.entrypoint("webhook")
        async def deliver(job: Job) -> None:
            if noop:
                return
            msg_id, body = job.payload.split(b"\n", 1)
            ts = int(time.time())
            headers = {"content-type": "application/json", "webhook-id": msg_id.decode(),
                       "webhook-timestamp": str(ts), "webhook-signature": sign([SECRET], msg_id.decode(), ts, body)}
            async with session.post(receiver_url, data=body, headers=headers) as resp:
                await resp.read()
                if not 200 <= resp.status < 300:
                    raise RuntimeError(f"HTTP {resp.status}")

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, qm.shutdown.set)
        await qm.run(batch_size=batch_size, max_concurrent_tasks=4 * batch_size)
        await session.close()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# =============================================================================
# The benchmark driver
# =============================================================================


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, fast: bool):
        import psycopg

        from sync_service import local_stack as local
        from sync_service.db import SERVICE, acting_as

        self.psycopg = psycopg
        base = Path(tempfile.mkdtemp(prefix="cfgctl-bench-", dir="/var/tmp"))
        os.chmod(base, 0o755)
        self.base = base
        self.cluster = local.Cluster(data_dir=base / "pg" / "data", port=free_port(), fast=fast)
        self.cluster.init()
        self.cluster.start()
        with psycopg.connect(self.cluster.db_url, autocommit=True) as c:
            c.execute("create database bench")
        self.db_url = self.cluster.url_for("bench")
        local.provision(self.db_url, seed=False)
        self.port = free_port()
        self.receiver_proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(self.port)])
        self.receiver = ReceiverClient(self.port)
        for _ in range(100):
            try:
                self.receiver.count()
                break
            except OSError:
                time.sleep(0.1)
        self.conn = psycopg.connect(self.db_url, autocommit=True)
        self.conn.execute("insert into auth.users (id, email) values "
                          "('00000000-0000-4000-a000-0000000000aa', 'bench@example.test')")
        self.org = self.conn.execute("insert into cfg.orgs (name, slug) values ('Bench', 'bench') "
                                     "returning id").fetchone()[0]
        self.conn.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, '127.0.0.1')",
                          (self.org,))
        with psycopg.connect(self.db_url) as c, acting_as(c, SERVICE) as cur:
            cur.execute("select cfg.create_webhook_endpoint(%s, %s)",
                        (self.org, f"http://127.0.0.1:{self.port}/hook"))
        self.body = json.dumps({"id": "evt_0", "type": "automation.updated", "timestamp": "2026-11-25T00:00:00Z",
                                "data": {"payload": PAYLOAD}}).encode()
        self.procs: list[subprocess.Popen] = []

    def close(self) -> None:
        self.stop_workers()
        self.receiver_proc.terminate()
        self.receiver_proc.wait()
        self.conn.close()
        self.cluster.destroy()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- workers -----------------------------------------------------------------

    def start_dispatchers(self, n: int, batch_size: int = 100) -> None:
        env = os.environ | {"CFGCTL_WEBHOOK_BATCH_SIZE": str(batch_size)}
        cfgctl = str(Path(sys.executable).parent / "cfgctl")
        for _ in range(n):
            self.procs.append(subprocess.Popen([cfgctl, "serve", "--db-url", self.db_url], env=env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait_connected("cfgctl-webhooks%", n)

    def start_pgqueuer(self, batch_size: int = 50, noop: bool = False) -> None:
        self.procs.append(subprocess.Popen(
            [sys.executable, __file__, "--pgqueuer-worker", self.db_url, f"http://127.0.0.1:{self.port}/hook",
             str(batch_size), *(["--noop"] if noop else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.5)

    def _wait_connected(self, pattern: str, n: int) -> None:
        for _ in range(200):
            got = self.conn.execute("select count(distinct application_name) from pg_stat_activity "
                                    "where application_name like %s", (pattern,)).fetchone()[0]
            if got >= n:
                time.sleep(0.3)
                return
            time.sleep(0.05)
        raise SystemExit("workers did not connect")

    def stop_workers(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []

    # -- producers ---------------------------------------------------------------

    def backlog_events(self, n: int) -> None:
        self.conn.execute(
            "select cfg_private.emit_event(%s, 'automation.updated', 'automation', null, null, "
            "%s::jsonb || jsonb_build_object('i', i)) from generate_series(1, %s) as i",
            (self.org, json.dumps(PAYLOAD), n),
        )

    def backlog_jobs(self, n: int) -> None:
        from pgqueuer.queries import Queries

        async def enqueue() -> None:
            conn = await self.psycopg.AsyncConnection.connect(self.db_url, autocommit=True)
            queries = Queries.from_psycopg_connection(conn)
            for start in range(0, n, 1000):
                count = min(1000, n - start)
                await queries.enqueue(["webhook"] * count,
                                      [f"job_{start + i}".encode() + b"\n" + self.body for i in range(count)],
                                      [0] * count)
            await conn.close()

        asyncio.run(enqueue())

    def steady(self, kind: str, rate: int, seconds: float, durable: bool) -> dict[str, float]:
        """Emit events (or enqueue pgqueuer jobs) at `rate`/s; returns id -> commit time.
        durable=False: producers commit with synchronous_commit=off (no wait for the WAL flush)."""
        options = "" if durable else "-c synchronous_commit=off"
        if kind != "events":
            return asyncio.run(self._steady_jobs(rate, seconds, options))
        # Several producer connections, like many users: with fsync on one connection
        # cannot commit 1,000 times a second, a few together can (group commit).
        committed: dict[str, float] = {}
        payload = json.dumps(PAYLOAD)
        total = int(rate * seconds)
        start = time.time() + 0.2

        def produce(k: int) -> None:
            with self.psycopg.connect(self.db_url, autocommit=True, options=options) as conn:
                for i in range(k, total, PRODUCERS):
                    delay = start + i / rate - time.time()
                    if delay > 0:
                        time.sleep(delay)
                    event_id = conn.execute(
                        "select cfg_private.emit_event(%s, 'automation.updated', 'automation', null, null, %s)",
                        (self.org, payload)).fetchone()[0]
                    committed[f"evt_{event_id}"] = time.time()

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(PRODUCERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return committed

    async def _steady_jobs(self, rate: int, seconds: float, options: str) -> dict[str, float]:
        from pgqueuer.queries import Queries

        committed: dict[str, float] = {}
        conn = await self.psycopg.AsyncConnection.connect(self.db_url, autocommit=True, options=options)
        queries = Queries.from_psycopg_connection(conn)
        start = time.time() + 0.1
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await queries.enqueue("webhook", f"lat_{i}".encode() + b"\n" + self.body)
            committed[f"lat_{i}"] = time.time()
        await conn.close()
        return committed

    # -- measurements --------------------------------------------------------------

    def drain_rate(self, n: int) -> float:
        self.receiver.wait_for(n)
        times = sorted(t for _, t in self.receiver.dump())
        return (len(times) - 1) / (times[-1] - times[0])

    def measure_drain(self, workers: int, n: int, batch_size: int = 100) -> float:
        self.receiver.reset()
        self.backlog_events(n)
        self.start_dispatchers(workers, batch_size)
        rate = self.drain_rate(n)
        self.stop_workers()
        return rate

    def measure_pgqueuer_drain(self, n: int, batch_size: int = 50) -> float:
        self.receiver.reset()
        self.backlog_jobs(n)
        self.start_pgqueuer(batch_size)
        rate = self.drain_rate(n)
        self.stop_workers()
        return rate

    def measure_pgqueuer_noop(self, n: int, batch_size: int) -> float:
        """Jobs/s of an entrypoint that does nothing: pgqueuer's own ceiling on this machine."""
        self.backlog_jobs(n)
        self.start_pgqueuer(batch_size, noop=True)
        first = None
        while True:
            left = self.conn.execute("select count(*) from pgqueuer").fetchone()[0]
            if first is None and left < n:
                first = (time.perf_counter(), left)
            if left == 0:
                break
            time.sleep(0.02)
        self.stop_workers()
        return first[1] / (time.perf_counter() - first[0])

    def measure_latency(self, kind: str, rate: int, seconds: float, batch: int = 50,
                        durable: bool = False) -> tuple[float, float, float]:
        self.receiver.reset()
        if kind == "events":
            self.start_dispatchers(1)
        else:
            self.start_pgqueuer(batch)
        committed = self.steady(kind, rate, seconds, durable)
        self.receiver.wait_for(len(committed))
        received = dict(self.receiver.dump())
        self.stop_workers()
        latencies = [(received[k] - t) * 1000 for k, t in committed.items() if k in received]
        achieved = len(committed) / (max(committed.values()) - min(committed.values()))
        return percentile(latencies, 50), percentile(latencies, 99), achieved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receiver", type=int)
    parser.add_argument("--pgqueuer-worker", nargs=3, metavar=("DB_URL", "RECEIVER_URL", "BATCH"))
    parser.add_argument("--noop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=20000, help="backlog size for the drain runs")
    parser.add_argument("--seconds", type=float, default=10, help="length of the steady-rate runs")
    parser.add_argument("--fast", action="store_true", help="fsync off (as the test cluster)")
    args = parser.parse_args()
    if args.receiver:
        run_receiver(args.receiver)
        return
    if args.pgqueuer_worker:
        db_url, receiver_url, batch = args.pgqueuer_worker
        run_pgqueuer_worker(db_url, receiver_url, int(batch), args.noop)
        return

    from pgqueuer.queries import Queries

    bench = Bench(fast=args.fast)
    try:
        async def install() -> None:
            conn = await bench.psycopg.AsyncConnection.connect(bench.db_url, autocommit=True)
            queries = Queries.from_psycopg_connection(conn)
            await queries.install()
            await queries.optimize_autovacuum()
            await conn.close()

        asyncio.run(install())
        n = args.events
        print(f"cores: {os.cpu_count()}, fsync: {'off' if args.fast else 'on'}, backlog: {n} deliveries, "
              f"body ~{len(bench.body)} bytes, signed, aiohttp client, local aiohttp receiver")
        print("\nclaim batch size sweep (1 worker process, 4 lanes, backlog drain):")
        sweep = {}
        for batch in (1, 10, 50, 100, 200):
            sweep[batch] = bench.measure_drain(1, n // 2, batch)
            print(f"  batch {batch:>3}: {sweep[batch]:8.0f} deliveries/s")
        one = bench.measure_drain(1, n)
        two = bench.measure_drain(2, n)
        pgq = {batch: bench.measure_pgqueuer_drain(n // 2, batch) for batch in (10, 50, 200)}
        pgq_noop = {batch: bench.measure_pgqueuer_noop(n // 2, batch) for batch in pgq}
        base_batch = max(pgq, key=pgq.get)
        base = pgq[base_batch]
        print("\nbacklog drain:")
        print(f"  cfgctl dispatcher, 1 process : {one:8.0f} deliveries/s   (target >= 3000)")
        print(f"  cfgctl dispatcher, 2 processes: {two:8.0f} deliveries/s")
        print(f"  pgqueuer settings: {PGQUEUER_SETTINGS}")
        for batch, rate in pgq.items():
            print(f"  pgqueuer, batch {batch:>3}, 1 process: {rate:8.0f} jobs/s   "
                  f"(no-op entrypoint: {pgq_noop[batch]:.0f} jobs/s)")
        print(f"  pgqueuer baseline (best)     : {base:8.0f} jobs/s (batch {base_batch})")
        print(f"  ratio 1 process / pgqueuer   : {one / base:8.2f}x")
        print(f"  ratio 2 processes / pgqueuer : {two / base:8.2f}x")

        d50, d99, d_achieved = bench.measure_latency("events", 1000, args.seconds, durable=True)
        p50, p99, achieved = bench.measure_latency("events", 1000, args.seconds)
        q50, q99, q_achieved = bench.measure_latency("jobs", 1000, args.seconds, base_batch)
        print(f"\ncommit -> receipt latency, producers aiming at 1,000/s for {args.seconds:g} s "
              f"({PRODUCERS} producer connections):")
        print(f"  cfgctl, durable commits    : p50 {d50:6.2f} ms  p99 {d99:7.2f} ms  "
              f"(achieved {d_achieved:.0f} events/s)")
        print(f"  cfgctl, async commits      : p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  "
              f"(achieved {achieved:.0f} events/s; target p50 < 10 ms)")
        print(f"  pgqueuer (batch {base_batch}), async : p50 {q50:6.2f} ms  p99 {q99:7.2f} ms  "
              f"(achieved {q_achieved:.0f} jobs/s)")
        print(f"  ratio pgqueuer / cfgctl    : p50 {q50 / p50:.2f}x  p99 {q99 / p99:.2f}x")
        print("\n" + json.dumps({
            "batch_sweep": sweep, "drain_1": one, "drain_2": two, "pgqueuer_drain": pgq, "pgqueuer_noop": pgq_noop,
            "durable_p50_ms": d50, "durable_p99_ms": d99, "durable_rate": d_achieved,
            "p50_ms": p50, "p99_ms": p99, "rate": achieved, "pgqueuer_p50_ms": q50, "pgqueuer_p99_ms": q99,
        }))
    finally:
        bench.close()


if __name__ == "__main__":
    main()
