"""`cfgctl audit log` — who changed what, and when."""

from __future__ import annotations

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
    render(rows, ["created_at", "actor_email", "actor_role", "operation", "table_name",
                  "row_id", "new_values"], as_json)
