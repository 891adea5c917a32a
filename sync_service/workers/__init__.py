"""The sync service's workers, run together by `cfgctl serve`.

A worker is a subclass of `base.Worker` (its name, LISTEN channels, how it claims a
batch and handles one); the base makes it survive database restarts, wakes it on
NOTIFY, stops it gracefully and keeps its health. Register new ones in WORKERS, by
import path (imported only when run, so the registry imports no worker and no worker
imports the registry); `cfgctl serve` runs all of them unless told which.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal

from pydantic_settings import BaseSettings, SettingsConfigDict

from .base import Worker

WORKERS: dict[str, str] = {
    "webhooks": "sync_service.workers.webhooks:Dispatcher",
    "vaults": "sync_service.workers.vaults:VaultSync",
    "bulk": "sync_service.workers.bulk:BulkContinuation",
    "schedules": "sync_service.workers.schedules:ScheduleMaterialiser",
}

log = logging.getLogger("cfgctl.serve")


class ServeSettings(BaseSettings):
    """CFGCTL_SERVE_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CFGCTL_SERVE_", extra="ignore")

    # Health and counters on http://127.0.0.1:<port>/ (status JSON, /metrics); 0: none.
    status_port: int = 9465


def load(name: str) -> type[Worker]:
    module, _, attr = WORKERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


async def serve(db_url: str, names: list[str], stop: asyncio.Event | None = None,
                status_port: int | None = None) -> bool:
    """Run the named workers until `stop` (or SIGINT/SIGTERM); False if one crashed."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    port = ServeSettings().status_port if status_port is None else status_port
    workers = [load(name)(db_url) for name in names]
    target = db_url.rsplit("@", 1)[-1]  # never log the password
    log.info("running %s against %s; Ctrl-C stops", ", ".join(names), target)
    status = None
    if port:
        from . import status as status_server  # aiohttp.web only when serving

        status = await status_server.start(workers, port)
    tasks = [asyncio.create_task(w.run(), name=w.name) for w in workers]
    stopped = asyncio.create_task(stop.wait())
    # A worker's run() returns only after stop(): one that ends earlier crashed.
    await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for worker in workers:
        worker.stop()
    healthy = True
    for worker, outcome in zip(workers, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
        if isinstance(outcome, BaseException):
            healthy = False
            log.error("worker %s crashed", worker.name, exc_info=outcome)
    stopped.cancel()
    if status is not None:
        await status.cleanup()
    return healthy


def run(db_url: str, names: list[str], status_port: int | None = None) -> bool:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop  # optional, faster event loop
    except ImportError:
        return asyncio.run(serve(db_url, names, status_port=status_port))
    return uvloop.run(serve(db_url, names, status_port=status_port))
