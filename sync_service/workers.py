"""The sync service's workers, run together by `cfgctl serve`.

A worker is `async def worker(db_url: str, stop: asyncio.Event) -> None`: it runs
until `stop` is set and survives database restarts by itself. Register new ones in
WORKERS; `cfgctl serve` runs all of them unless told which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

from .dispatcher import run_dispatcher

Worker = Callable[[str, asyncio.Event], Awaitable[None]]

WORKERS: dict[str, Worker] = {
    "webhooks": run_dispatcher,
}


async def serve(db_url: str, names: list[str], stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    target = db_url.rsplit("@", 1)[-1]  # never log the password
    logging.getLogger("cfgctl.serve").info("running %s against %s; Ctrl-C stops", ", ".join(names), target)
    tasks = [asyncio.create_task(WORKERS[name](db_url, stop), name=name) for name in names]
    await asyncio.gather(*tasks)


def run(db_url: str, names: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop  # optional, faster event loop
    except ImportError:
        asyncio.run(serve(db_url, names))
    else:
        uvloop.run(serve(db_url, names))
