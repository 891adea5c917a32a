"""Health and counters of a running `cfgctl serve`, over HTTP on 127.0.0.1 only
(nothing here is secret, but nothing here is for other hosts either):

- `/` and `/status`: JSON, every worker's `Health.snapshot()`;
- `/metrics`: the same in Prometheus' text format;
- `/healthz`: 200 when every worker is running, else 503 (for a supervisor).

`cfgctl serve --status` reads `/status` with fetch().
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from ..db import CfgError
from .base import Health, Worker

log = logging.getLogger("cfgctl.serve")

HOST = "127.0.0.1"

# (name, type, help, value of a Health); times are Unix seconds, as Prometheus expects.
METRICS = [
    ("up", "gauge", "1 when the worker is running (every connection up), else 0",
     lambda h: int(h.state == "running")),
    ("started_at_seconds", "gauge", "when the worker started", lambda h: h.started_at),
    ("last_claim_at_seconds", "gauge", "last claim the database answered", lambda h: h.last_claim_at),
    ("last_work_at_seconds", "gauge", "last claim that returned work", lambda h: h.last_work_at),
    ("claimed_total", "counter", "items claimed", lambda h: h.claimed),
    ("succeeded_total", "counter", "items handled successfully", lambda h: h.succeeded),
    ("failed_total", "counter", "items handled without success", lambda h: h.failed),
    ("reconnects_total", "counter", "connections dropped on a database error", lambda h: h.reconnects),
]


def snapshot(workers: Sequence[Worker]) -> dict:
    return {"pid": os.getpid(), "at": time.time(), "workers": [w.health.snapshot() for w in workers]}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(healths: Sequence[Health]) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    lines: list[str] = []

    def family(name: str, kind: str, text: str, samples: list[tuple[str, float | None]]) -> None:
        lines.append(f"# HELP cfgctl_worker_{name} {text}")
        lines.append(f"# TYPE cfgctl_worker_{name} {kind}")
        lines.extend(f"cfgctl_worker_{name}{{{labels}}} {value}" for labels, value in samples if value is not None)

    for name, kind, text, value in METRICS:
        family(name, kind, text, [(f'worker="{_label(h.worker)}"', value(h)) for h in healths])
    family("state", "gauge", "1 for the worker's current state",
           [(f'worker="{_label(h.worker)}",state="{_label(h.state)}"', 1) for h in healths])
    for key in sorted({k for h in healths for k in h.extra}):
        family(f"{key}_total", "counter", f"the worker's own counter '{key}'",
               [(f'worker="{_label(h.worker)}"', h.extra.get(key)) for h in healths])
    return "\n".join(lines) + "\n"


async def start(workers: Sequence[Worker], port: int):
    """Serve the workers' health on 127.0.0.1:port; returns the runner (cleanup() stops
    it), or None when the port is taken: the workers run on without it."""
    from aiohttp import web

    async def status(_: web.Request) -> web.Response:
        return web.json_response(snapshot(workers))

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=prometheus([w.health for w in workers]),
                            content_type="text/plain", headers={"x-prometheus-format": "0.0.4"})

    async def healthz(_: web.Request) -> web.Response:
        ok = all(w.health.state == "running" for w in workers)
        return web.Response(text="ok\n" if ok else "not running\n", status=200 if ok else 503)

    app = web.Application()
    app.add_routes([web.get("/", status), web.get("/status", status), web.get("/metrics", metrics),
                    web.get("/healthz", healthz)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
    except OSError as exc:
        log.warning("no status endpoint on %s:%s (%s); set CFGCTL_SERVE_STATUS_PORT to a free port", HOST, port,
                    exc.strerror or exc)
        await runner.cleanup()
        return None
    log.info("health and counters on http://%s:%s/ (/metrics for Prometheus)", HOST, port)
    return runner


def fetch(port: int, timeout: float = 5.0) -> dict:
    """The status of the `cfgctl serve` listening on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/status", timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CfgError(
            f"no cfgctl serve answers on {HOST}:{port} ({reason}); is it running, and with this status port "
            "(--status-port / CFGCTL_SERVE_STATUS_PORT)?"
        ) from exc
