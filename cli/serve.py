"""`cfgctl serve` — run the sync service's workers (webhook dispatcher, …), or show the
health and counters of the one running on this host (`--status`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sync_service import workers
from sync_service.db import CfgError
from sync_service.workers import status as worker_status

from .common import EXIT_ERROR, DbUrlOpt, JsonOpt, db_url, render_one, to_json


def serve(
    worker: Annotated[
        list[str] | None,
        typer.Option("--worker", help=f"Run only these workers (default: all of {', '.join(workers.WORKERS)})."),
    ] = None,
    url: DbUrlOpt = None,
    status: Annotated[
        bool, typer.Option("--status", help="Print the health and counters of the running `cfgctl serve`, then exit.")
    ] = False,
    status_port: Annotated[
        int | None,
        typer.Option("--status-port", help="Its status port on 127.0.0.1 (default: CFGCTL_SERVE_STATUS_PORT, "
                     f"else {workers.ServeSettings.model_fields['status_port'].default}; 0: none)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the sync service until SIGINT/SIGTERM; it rides out database restarts."""
    port = workers.ServeSettings().status_port if status_port is None else status_port
    if status:
        show_status(port, as_json)
        return
    names = worker or list(workers.WORKERS)
    unknown = [n for n in names if n not in workers.WORKERS]
    if unknown:
        raise CfgError(f"unknown worker(s): {', '.join(unknown)}; known: {', '.join(workers.WORKERS)}", "PT422")
    if not workers.run(db_url(url), names, port):
        sys.exit(EXIT_ERROR)


def show_status(port: int, as_json: bool) -> None:
    """Exit 0 when every worker is running, 1 otherwise (or when nothing answers)."""
    if port == 0:
        raise CfgError("no status port: pass --status-port or set CFGCTL_SERVE_STATUS_PORT", "PT422")
    snapshot = worker_status.fetch(port)
    if as_json:
        print(to_json(snapshot))
    else:
        # One key/value table per worker: ten columns side by side do not fit a terminal.
        print(f"cfgctl serve, pid {snapshot['pid']}")
        for w in snapshot["workers"]:
            render_one({k: v for k, v in w.items() if k != "extra"} | w.get("extra", {}), False)
    if any(w["state"] != "running" for w in snapshot["workers"]):
        sys.exit(EXIT_ERROR)
