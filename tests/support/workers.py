"""A sync-service worker run in-process, on its own event loop in a thread, for a `with`
block: fast to start, and stopped (stop(), then joined) when the block ends."""

from __future__ import annotations

import asyncio
import threading

from sync_service.workers.base import Worker


class WorkerThread:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.worker.run())
        except BaseException as exc:  # surfaced on exit
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self.worker

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(15)
        assert not self.thread.is_alive(), f"worker {self.worker.name} did not stop"
        self.loop.close()
        if self.error:
            raise self.error
