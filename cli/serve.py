"""`cfgctl serve` — run the sync service's workers (webhook dispatcher, …)."""

from __future__ import annotations

from typing import Annotated

import typer

from sync_service import workers
from sync_service.db import CfgError

from .common import DbUrlOpt, db_url


def serve(
    worker: Annotated[
        list[str] | None,
        typer.Option("--worker", help=f"Run only these workers (default: all of {', '.join(workers.WORKERS)})."),
    ] = None,
    url: DbUrlOpt = None,
) -> None:
    """Run the sync service until SIGINT/SIGTERM; it rides out database restarts."""
    names = worker or list(workers.WORKERS)
    unknown = [n for n in names if n not in workers.WORKERS]
    if unknown:
        raise CfgError(f"unknown worker(s): {', '.join(unknown)}; known: {', '.join(workers.WORKERS)}", "PT422")
    workers.run(db_url(url), names)
