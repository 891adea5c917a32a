"""What every cfgctl command shares: options, identity, output and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from sync_service.db import SERVICE, CfgError, Identity, acting_as, connect, user_identity
from sync_service.settings import get_settings

console = Console()
err_console = Console(stderr=True)

AsOpt = Annotated[
    str | None,
    typer.Option("--as", envvar="CFGCTL_AS", help="Act as this user (email), as PostgREST would."),
]
ServiceOpt = Annotated[
    bool, typer.Option("--service", help="Act with the service_role key (bypasses RLS).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DbUrlOpt = Annotated[
    str | None,
    typer.Option("--db-url", envvar="CFGCTL_DB_URL", help="Database URL (default: the local stack)."),
]

# Exit codes scripts can rely on (documented in README.md).
EXIT_ERROR, EXIT_NOT_FOUND, EXIT_FORBIDDEN, EXIT_CONFLICT, EXIT_INVALID = 1, 3, 4, 5, 6
EXIT_BY_SQLSTATE = {
    "PT404": EXIT_NOT_FOUND,
    "PT403": EXIT_FORBIDDEN,
    "42501": EXIT_FORBIDDEN,
    "PT409": EXIT_CONFLICT,
    "23505": EXIT_CONFLICT,
    "PT422": EXIT_INVALID,
    "23514": EXIT_INVALID,
    "22P02": EXIT_INVALID,
    "23502": EXIT_INVALID,
    "22001": EXIT_INVALID,
}

def db_url(explicit: str | None = None) -> str:
    return explicit or get_settings().effective_db_url


def open_connection(url: str | None = None) -> psycopg.Connection:
    target = db_url(url)
    try:
        return connect(target)
    except psycopg.OperationalError as exc:
        raise CfgError(
            f"cannot connect to {target.split('@')[-1]}: {str(exc).strip().splitlines()[-1]}\n"
            "Is the stack running? Try: cfgctl local start"
        ) from exc


def resolve_identity(conn: psycopg.Connection, as_user: str | None, service: bool) -> Identity:
    if as_user and service:
        raise CfgError("choose one identity: --as EMAIL or --service, not both")
    if service:
        return SERVICE
    if as_user:
        return user_identity(conn, as_user)
    raise CfgError(
        "this command acts on behalf of someone and no identity was given: "
        "pass --as EMAIL (or set CFGCTL_AS) to act as a user, or --service to act "
        "with the service_role key"
    )


@contextmanager
def session(
    as_user: str | None, service: bool, url: str | None = None
) -> Iterator[tuple[psycopg.Cursor, Identity]]:
    """One transaction acting as the chosen identity; committed when the block ends."""
    with open_connection(url) as conn:
        identity = resolve_identity(conn, as_user, service)
        with acting_as(conn, identity) as cur:
            yield cur, identity


def _plain(value: object) -> object:
    if isinstance(value, UUID | datetime | Decimal | timedelta):
        return str(value) if not isinstance(value, datetime) else value.isoformat()
    return value


def to_json(data: object) -> str:
    return json.dumps(data, default=_plain, indent=2, sort_keys=False)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=_plain)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def render(rows: Sequence[dict], columns: Sequence[str], as_json: bool, title: str | None = None):
    """A table for people, JSON for scripts."""
    if as_json:
        print(to_json(list(rows)))
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def render_one(row: dict, as_json: bool) -> None:
    if as_json:
        print(to_json(row))
        return
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in row.items():
        table.add_row(key, _cell(value))
    console.print(table)


def fail(error: CfgError) -> None:
    err_console.print(f"[red]error:[/red] {error}", highlight=False)
    if error.hint:
        err_console.print(f"hint: {error.hint}", highlight=False)
    if isinstance(error.detail, dict | list):
        err_console.print(f"detail: {json.dumps(error.detail, default=_plain)}", highlight=False)
    sys.exit(EXIT_BY_SQLSTATE.get(error.code or "", EXIT_ERROR))


def resolve_org(cur: psycopg.Cursor, ref: str) -> dict:
    """An org the identity can see, by slug or id (cfg.find_org)."""
    return cur.execute("select * from cfg.find_org(%s)", (ref,)).fetchone()


def resolve_automation(cur: psycopg.Cursor, org_ref: str | None, ref: str) -> dict:
    """An automation by id, or by ORG and slug (also written ORG/SLUG) (cfg.find_automation)."""
    return cur.execute("select * from cfg.find_automation(%s, %s)", (ref, org_ref)).fetchone()


# --where KEY=VALUE of the commands that act on a selection of automations (export, bulk),
# as the keys of cfg.select_automations' filter.
WHERE_KEYS = {"type": "type", "status": "status", "tag": "tags", "tags_match": "tags_match", "env": "deployed_in",
              "text": "text"}


def selection_from_options(where: list[str] | None, ids: list[str] | None) -> dict:
    """--where type=api_gateway --where tag=edge --where tag=eu --where tags_match=all
    --where status=active --where env=prod --where text=billing, or --ids ID... (also
    comma-separated), as the selection JSON of cfg.select_automations. Neither: every
    automation of the org."""
    if where and ids:
        raise typer.BadParameter("give --where or --ids, not both")
    if ids:
        return {"ids": [part.strip() for value in ids for part in value.split(",") if part.strip()]}
    selected: dict = {}
    for condition in where or []:
        key, sep, value = condition.partition("=")
        if not sep or key not in WHERE_KEYS or not value:
            raise typer.BadParameter(f"--where takes {'|'.join(WHERE_KEYS)}=VALUE, not {condition!r}")
        if key == "tag":
            selected.setdefault("tags", []).append(value)
        elif WHERE_KEYS[key] in selected:
            raise typer.BadParameter(f"--where {key}= is given twice")
        else:
            selected[WHERE_KEYS[key]] = value
    return {"where": selected}
