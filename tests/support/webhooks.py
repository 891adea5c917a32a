"""Helpers for the webhook tests: a real local HTTP receiver, a dispatcher run in a
thread or as a `cfgctl serve` subprocess, and small SQL helpers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

from sync_service.db import SERVICE, acting_as
from sync_service.workers.webhooks import Dispatcher, WebhookSettings
from tests.support.workers import WorkerThread

PUBLIC_URL = "https://hooks.example.com/cfgctl"

# Short times so retries, leases and polling take fractions of a second.
FAST = {
    "CFGCTL_WEBHOOK_TIMEOUT": "1",
    "CFGCTL_WEBHOOK_LEASE": "2",
    "CFGCTL_WEBHOOK_POLL_INTERVAL": "0.05",
    "CFGCTL_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.2,0.2",
    "CFGCTL_WEBHOOK_JITTER": "0",
    "CFGCTL_WEBHOOK_LANES": "2",
    "CFGCTL_WEBHOOK_BATCH_SIZE": "10",
}


def fast_settings(**overrides) -> WebhookSettings:
    values = {k.removeprefix("CFGCTL_WEBHOOK_").lower(): v for k, v in FAST.items()}
    values.update({k: str(v) for k, v in overrides.items()})
    return WebhookSettings(**values)


# =============================================================================
# Receiver
# =============================================================================


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"


class Receiver:
    """A threaded HTTP/1.1 server; each path answers from its script, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                with receiver.cond:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    script = receiver.scripts[self.path]
                    reply = script.popleft() if script else Reply()
                    receiver.cond.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default 5 drops SYNs under a burst

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        with self.cond:
            self.scripts[path].extend(replies)

    def on(self, path: str) -> list[Received]:
        with self.cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int, path: str = "/hook", timeout: float = 10.0) -> list[Received]:
        deadline = time.time() + timeout
        with self.cond:
            while True:
                got = [r for r in self.requests if r.path == path]
                if len(got) >= count:
                    return got
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(got)} of {count} requests on {path}")
                self.cond.wait(left)


# =============================================================================
# Dispatchers
# =============================================================================


class ThreadDispatcher(WorkerThread):
    """A Dispatcher on its own event loop in a thread (fast to start, in-process)."""

    def __init__(self, db_url: str, settings: WebhookSettings | None = None, name: str = "test", **kwargs) -> None:
        super().__init__(Dispatcher(db_url, settings or fast_settings(), instance=name, **kwargs))


def cfgctl_bin() -> str:
    return str(Path(sys.executable).parent / "cfgctl")


def start_serve(db_url: str, log_path: Path, workers: tuple[str, ...] = ("webhooks",),
                **env_overrides) -> subprocess.Popen:
    """`cfgctl serve` with these workers (empty: all of them, as `make up` runs it)."""
    # No status endpoint unless a test asks for one (on a port of its own).
    env = os.environ | FAST | {"CFGCTL_SERVE_STATUS_PORT": "0"} | {k: str(v) for k, v in env_overrides.items()}
    log = open(log_path, "ab")
    chosen = [arg for name in workers for arg in ("--worker", name)]
    return subprocess.Popen(
        [cfgctl_bin(), "serve", *chosen, "--db-url", db_url],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop_serve(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


# =============================================================================
# SQL helpers
# =============================================================================


def allow_host(conn: psycopg.Connection, org_id, host: str = "127.0.0.1") -> None:
    with acting_as(conn, SERVICE) as cur:
        cur.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, %s) "
                    "on conflict do nothing", (org_id, host))


def create_endpoint(conn, identity, org_id, url, event_types=(), **kw) -> dict:
    with acting_as(conn, identity) as cur:
        cur.execute(
            "select cfg.create_webhook_endpoint(%s, %s, %s, %s, %s, %s) as e",
            (org_id, url, kw.get("description", ""), list(event_types), kw.get("environment_id"),
             kw.get("automation_id")),
        )
        return cur.fetchone()["e"]


# The dispatcher simulated through its SQL functions: claim every due delivery, record one outcome.
def claim_and_record(conn, outcome_name, status=500, retry_in=0.0):
    with acting_as(conn, SERVICE) as cur:
        rows = cur.execute("select * from cfg_private.claim_webhook_deliveries('t', 100, '1 minute')").fetchall()
        cur.execute(
            "select cfg_private.record_webhook_attempts('t', %s, %s, %s, %s, %s, %s, %s, %s)",
            ([r["delivery_id"] for r in rows], [r["attempt"] for r in rows], [outcome_name] * len(rows),
             [status] * len(rows), [5] * len(rows), ["HTTP 500"] * len(rows), ["x" * 10] * len(rows),
             [retry_in] * len(rows)),
        )
    return rows


def deliveries(conn, endpoint_id=None) -> list[dict]:
    with conn.transaction():
        if endpoint_id is None:
            return conn.execute("select * from cfg_private.webhook_deliveries order by id").fetchall()
        return conn.execute("select * from cfg_private.webhook_deliveries where endpoint_id = %s order by id",
                            (endpoint_id,)).fetchall()


def attempts(conn, delivery_id) -> list[dict]:
    with conn.transaction():
        return conn.execute("select * from cfg_private.webhook_attempts where delivery_id = %s order by attempt",
                            (delivery_id,)).fetchall()


def emit(conn, org_id, event_type="automation.updated", payload=None, automation_id=None, environment_id=None) -> int:
    with conn.transaction():
        return conn.execute(
            "select cfg_private.emit_event(%s, %s, 'automation', null, %s, %s, %s) as id",
            (org_id, event_type, automation_id, json.dumps(payload or {"n": 1}), environment_id),
        ).fetchone()["id"]
