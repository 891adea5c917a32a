"""`cfgctl audit log` — who changed what, and when."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from .common import AsOpt, JsonOpt, ServiceOpt, render, resolve_automation, resolve_org, session

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@audit_app.command("log")
def audit_log(
    org: str,
    automation: Annotated[str | None, typer.Option("--automation", help="Slug or id")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Email, user id, or 'service_role'")] = None,
    since: Annotated[datetime | None, typer.Option("--since")] = None,
    until: Annotated[datetime | None, typer.Option("--until")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 100,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Audit rows of ORG, newest first (editors and admins)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        automation_id = resolve_automation(cur, org, automation)["id"] if automation else None
        cur.execute(
            "select * from cfg.audit_events(%s, %s, %s, %s, %s, %s)",
            (org_row["id"], automation_id, actor, since, until, limit),
        )
        rows = cur.fetchall()
    if not as_json:
        rows = [row | {"actor": row["actor_email"] or row["actor_role"], "changes": summarize(row)}
                for row in rows]
    render(rows, ["created_at", "actor", "operation", "table_name", "changes"], as_json)


def _short(value: object, width: int = 24) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def summarize(row: dict) -> str:
    """One line a person can scan: what changed, or what was created or deleted."""
    old, new = row["old_values"] or {}, row["new_values"] or {}
    if row["operation"] == "UPDATE":
        return "; ".join(f"{k}: {_short(old.get(k))} → {_short(new.get(k))}" for k in new)
    values = new or old
    label = next((values[k] for k in ("slug", "key", "name", "role") if values.get(k)), values.get("id"))
    return f"{'+' if row['operation'] == 'INSERT' else '-'} {label}"
