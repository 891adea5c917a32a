"""`cfgctl env` — environments, promotion along the pipeline, approvals and status badges."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    AsOpt,
    JsonOpt,
    ServiceOpt,
    console,
    render,
    render_one,
    resolve_automation,
    resolve_org,
    session,
    to_json,
)
from .config_cmd import render_diff

env_app = typer.Typer(help="Environments: list, promote, requests, approve, reject, apply, status, "
                           "and pipeline changes that need a second admin (request-change, changes, "
                           "approve-change, reject-change).",
                      no_args_is_help=True)

RequestId = Annotated[str, typer.Argument(help="The promotion request's id (see `cfgctl env requests`).")]
REQUEST_COLUMNS = ["id", "automation", "from_env", "to_env", "version", "status", "requested_by_email",
                   "created_at", "decided_by_email", "decision_comment"]


@env_app.command("list")
def env_list(org: str, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False) -> None:
    """The pipeline of ORG, in order."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.list_environments(%s)", (org_row["id"],))
        rows = cur.fetchall()
    render(rows, ["position", "slug", "name", "requires_approval", "id"], as_json)


@env_app.command("promote")
def env_promote(
    ref: Annotated[str, typer.Argument(help="ORG/SLUG or the automation's id")],
    from_env: Annotated[str, typer.Option("--from", help="Source environment, e.g. dev")],
    to_env: Annotated[str, typer.Option("--to", help="Target environment, e.g. staging")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (needed when an admin skips a step).")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the diff.")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Show what the target would take, ask, then promote (or request approval)."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute("select cfg.promote(%s, %s, %s, true, %s, %s) as r",
                    (automation["id"], from_env, to_env, reason, message))
        preview = cur.fetchone()["r"]
    slug = automation["slug"]
    if not as_json:
        target = preview["to"]["version"]
        render_diff(preview["diff"], f"{slug} in {to_env} (v{target if target is not None else '-'})",
                    f"{slug} in {from_env} (v{preview['from']['version']})", False)
        if preview["requires_approval"]:
            console.print(f"[yellow]{to_env} requires approval: confirming creates a promotion request[/yellow]")
    if dry_run:
        if as_json:
            print(to_json(preview))
        return
    if not yes:
        typer.confirm(f"Promote {slug} version {preview['from']['version']} from {from_env} to {to_env}?",
                      abort=True)
    with session(as_user, service) as (cur, _):
        cur.execute(
            "select cfg.promote(%s, %s, %s, false, %s, %s, %s) as r",
            (automation["id"], from_env, to_env, reason, message, preview["from"]["version"]),
        )
        result = cur.fetchone()["r"]
    if as_json:
        print(to_json(result))
    elif result["action"] == "requested":
        console.print(f"promotion request {result['request_id']} is pending an admin's approval")
    else:
        console.print(f"{to_env} now runs version {result['from']['version']}")


@env_app.command("requests")
def env_requests(
    org: str,
    automation: Annotated[str | None, typer.Option("--automation", help="Slug or id")] = None,
    status: Annotated[str, typer.Option("--status", help="pending | approved | applied | rejected | superseded | all")]
    = "pending",
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Promotion requests of ORG (default: pending)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        automation_id = resolve_automation(cur, org, automation)["id"] if automation else None
        cur.execute("select * from cfg.list_promotion_requests(%s, %s::cfg.promotion_status, %s)",
                    (org_row["id"], None if status == "all" else status, automation_id))
        rows = cur.fetchall()
    render(rows, REQUEST_COLUMNS, as_json)


def _decide(sql: str, params: tuple, as_user, service, as_json: bool, verb: str) -> None:
    with session(as_user, service) as (cur, _):
        cur.execute(sql, params)
        row = cur.fetchone()
    if as_json:
        render_one(row, True)
    else:
        console.print(f"request {row['id']} {verb}: now {row['status']}")


@env_app.command("approve")
def env_approve(
    request_id: RequestId,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Approve now, deploy later (`env apply`).")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Approve a pending request (admins other than the requester); deploys it unless --no-apply."""
    _decide("select * from cfg.approve_promotion(%s, %s, %s)", (request_id, comment, not no_apply),
            as_user, service, as_json, "approved")


@env_app.command("reject")
def env_reject(
    request_id: RequestId,
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Reject a pending or approved request (admins)."""
    _decide("select * from cfg.reject_promotion(%s, %s)", (request_id, reason), as_user, service, as_json,
            "rejected")


@env_app.command("apply")
def env_apply(request_id: RequestId, as_user: AsOpt = None, service: ServiceOpt = False,
              as_json: JsonOpt = False) -> None:
    """Deploy a request approved with --no-apply (editors)."""
    _decide("select * from cfg.apply_promotion(%s)", (request_id,), as_user, service, as_json, "applied")


@env_app.command("status")
def env_status(
    org: str,
    automation: Annotated[str | None, typer.Option("--automation", help="Slug or id")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Per automation: the version each environment runs, and drift."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        automation_id = resolve_automation(cur, org, automation)["id"] if automation else None
        cur.execute("select * from cfg.deployment_status(%s, %s)", (org_row["id"], automation_id))
        rows = cur.fetchall()
    if as_json:
        print(to_json(rows))
        return
    envs = [e["environment"] for e in rows[0]["environments"]] if rows else []
    table_rows = []
    for row in rows:
        cells = {"automation": row["slug"], "latest": row["latest_version"],
                 "drift": "drift" if row["drift"] else "in sync", "pending": row["pending_requests"]}
        for e in row["environments"]:
            mark = "" if e["same_as_previous"] in (None, True) else " *"
            cells[e["environment"]] = ("-" if e["version"] is None else f"v{e['version']}") + mark
        table_rows.append(cells)
    render(table_rows, ["automation", "latest", *envs, "drift", "pending"], False,
           title="* differs from the environment before it")


# =============================================================================
# Pipeline changes: the two-person rule (functions/22_tenancy_pipeline.sql)
# =============================================================================

ChangeId = Annotated[str, typer.Argument(help="The change request's id (see `cfgctl env changes`).")]
CHANGE_COLUMNS = ["id", "environment_slug", "change", "status", "requested_by_email", "created_at",
                  "decided_by_email", "decision_comment"]


def _change_summary(row: dict) -> str:
    if row["status"] == "applied" and row["decided_by"] == row["requested_by"]:
        return f"change {row['id']} applied directly: {row['decision_comment']}"
    if row["status"] == "pending":
        return f"change {row['id']} is pending another admin's approval (`cfgctl env approve-change {row['id']}`)"
    return f"change {row['id']} is now {row['status']}"


@env_app.command("request-change")
def env_request_change(
    org: str,
    env: Annotated[str, typer.Argument(help="The environment's slug, e.g. prod")],
    approval_off: Annotated[bool, typer.Option("--approval-off", help="Stop requiring approval.")] = False,
    position: Annotated[int | None, typer.Option("--position", min=0,
                                                  help="Move it there (swaps with the one there).")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Delete an environment that requires approval.")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown to the approver).")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Request a change that loosens the pipeline; another admin approves it (applied at once
    when the org has no other admin). Turning approval on or a new name needs no request."""
    chosen = [c for c in ({"requires_approval": False} if approval_off else None,
                          {"position": position} if position is not None else None,
                          {"delete": True} if delete else None) if c]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --approval-off, --position N, --delete")
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        found = cur.execute("select * from cfg.find_environment(%s, %s)", (org_row["id"], env)).fetchone()
        cur.execute("select * from cfg.request_environment_change(%s, %s::jsonb, %s)",
                    (found["id"], to_json(chosen[0]), reason))
        row = cur.fetchone()
    if as_json:
        render_one(row, True)
    else:
        console.print(_change_summary(row))


@env_app.command("changes")
def env_changes(
    org: str,
    status: Annotated[str, typer.Option("--status", help="pending | approved | applied | rejected | all")]
    = "pending",
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Pipeline change requests of ORG (default: pending)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.list_environment_changes(%s, %s)",
                    (org_row["id"], None if status == "all" else status))
        rows = cur.fetchall()
    render(rows, CHANGE_COLUMNS, as_json)


@env_app.command("approve-change")
def env_approve_change(
    change_id: ChangeId,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Approve and apply a pending pipeline change (admins other than the requester)."""
    _decide("select * from cfg.approve_environment_change(%s, %s)", (change_id, comment),
            as_user, service, as_json, "approved")


@env_app.command("reject-change")
def env_reject_change(
    change_id: ChangeId,
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Reject a pending pipeline change (admins)."""
    _decide("select * from cfg.reject_environment_change(%s, %s)", (change_id, reason),
            as_user, service, as_json, "rejected")
