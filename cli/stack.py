"""`cfgctl local …` (the embedded stack) and `cfgctl db …` (migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from sync_service import local_stack
from sync_service import migrate as migrator
from sync_service.settings import get_settings

from .common import DbUrlOpt, JsonOpt, console, db_url, err_console, render, to_json

local_app = typer.Typer(help="The embedded Supabase-compatible PostgreSQL stack.", no_args_is_help=True)
db_app = typer.Typer(help="Schema migrations.", no_args_is_help=True)

PortOpt = Annotated[
    int | None,
    typer.Option("--port", help="Port to listen on (default 54322, or CFGCTL_PG_PORT)."),
]


def _cluster(port: int | None) -> local_stack.Cluster:
    settings = get_settings()
    return local_stack.cluster_from_state(settings.state_dir, port, settings.pg_port)


RESTART_HINT = "cfgctl local start"


def _status(cluster: local_stack.Cluster) -> dict:
    running = cluster.is_running()
    stale = running and cluster.stale_binaries()
    settings_current = cluster.settings_current() if cluster.initialised else None
    return {
        "running": running,
        "db_url": cluster.db_url,
        "port": cluster.port,
        "data_dir": str(cluster.data_dir),
        # Where this stack's state.json lives (<checkout>/.cfgctl, or per user once installed).
        "state_dir": str(get_settings().state_dir),
        "log_file": str(cluster.log_file),
        "server_version": cluster.server_version() if running else None,
        "installed_version": local_stack.installed_version(),
        # The running postmaster predates the installed binaries (an apt upgrade).
        "stale_binaries": stale,
        # The data directory lacks settings this release needs (written by `start`).
        "settings_current": settings_current,
        # What to run to fix either (restarts the server; the data is kept), or null.
        "fix": RESTART_HINT if stale or (running and settings_current is False) else None,
    }


@local_app.command("start")
def local_start(
    port: PortOpt = None,
    seed: Annotated[bool, typer.Option("--seed/--no-seed", help="Load seed.sql demo data.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Start the stack (creating it on first use), migrate, and load the demo seed."""
    local_stack.check_packages()
    settings = get_settings()
    cluster = _cluster(port)
    if not cluster.initialised:
        err_console.print(f"initialising a PostgreSQL {local_stack.PG_MAJOR} cluster in {cluster.data_dir}")
        cluster.init()
    restarted = cluster.start()
    if restarted:
        err_console.print(f"restarted PostgreSQL ({restarted}); the data is kept")
    local_stack.save_state(settings.state_dir, {"data_dir": str(cluster.data_dir), "port": cluster.port})
    report = local_stack.provision(cluster.db_url, seed=seed)
    status = _status(cluster) | {"restarted": restarted, "migrations": report}
    if as_json:
        print(to_json(status))
    else:
        applied = len(report["applied"])
        console.print(f"[green]running[/green] {cluster.db_url}  ({applied} schema files applied)")


@local_app.command("stop")
def local_stop() -> None:
    """Stop the stack; data is kept."""
    cluster = _cluster(None)
    cluster.stop()
    console.print("stopped")


@local_app.command("status")
def local_status(as_json: JsonOpt = False) -> None:
    """Whether the stack runs and is up to date, its URL and where its data lives."""
    status = _status(_cluster(None))
    if as_json:
        print(to_json(status))
        return
    state = "[green]running[/green]" if status["running"] else "[yellow]stopped[/yellow]"
    console.print(f"{state}\ndb_url:   {status['db_url']}\ndata_dir: {status['data_dir']}\n"
                  f"log_file: {status['log_file']}")
    if status["stale_binaries"]:
        console.print(f"[red]PostgreSQL {status['server_version'] or '(unreachable)'} is running but "
                      f"{status['installed_version']} is installed[/red]: run `{status['fix']}` "
                      "to restart it (the data is kept)")
    elif status["fix"]:
        console.print(f"[yellow]the cluster lacks settings this release needs[/yellow]: run `{status['fix']}`")
    raise typer.Exit(0 if status["running"] and not status["fix"] else 1)


@local_app.command("reset")
def local_reset(
    port: PortOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Destroy the stack's data and rebuild it from scratch."""
    cluster = _cluster(port)
    if not yes:
        typer.confirm(f"Delete all data in {cluster.data_dir}?", abort=True)
    cluster.destroy()
    local_start(port=port, seed=True, as_json=False)


@db_app.command("migrate")
def db_migrate(url: DbUrlOpt = None, as_json: JsonOpt = False) -> None:
    """Apply pending migrations, then changed functions/ and policies/."""
    report = migrator.migrate(db_url(url))
    if as_json:
        print(to_json(report.as_dict()))
    elif report.applied:
        for name in report.applied:
            console.print(f"applied {name}")
    else:
        console.print("up to date")


@db_app.command("status")
def db_status(url: DbUrlOpt = None, as_json: JsonOpt = False) -> None:
    """Each schema file and whether it is applied, pending or changed."""
    rows = migrator.status(db_url(url))
    render(rows, ["kind", "name", "state", "applied_at"], as_json)
