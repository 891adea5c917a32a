"""`cfgctl bulk` — one action over many automations (docs/bulk.md): status, tag, untag,
patch, promote, delete over `--where` filters or `--ids`, with `--dry-run` and `--atomic`;
the operation runs in batches (a progress bar while this command drives it; the sync
service finishes it if this command is stopped) and ends with a result per automation.
`show`, `list`, `cancel`, `continue`, and `approve`/`reject` for a bulk promotion's requests."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sync_service.db import acting_as

from .common import (
    AsOpt,
    JsonOpt,
    ServiceOpt,
    err_console,
    open_connection,
    render,
    render_one,
    resolve_identity,
    resolve_org,
    session,
    to_json,
)
from .template_cmd import parse_values

bulk_app = typer.Typer(help="One action over many automations, with a result per automation.", no_args_is_help=True)

Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
Operation = Annotated[str, typer.Argument(help="The bulk operation's id")]
WhereOpt = Annotated[list[str] | None, typer.Option(
    "--where", help="A filter, repeatable: type=T, status=S, tag=T (any of them; match=all for all), "
                    "env=E (a version is deployed there), text=T (name, slug, description)")]
IdsOpt = Annotated[list[str] | None, typer.Option("--ids", help="Automation ids, repeatable or comma-separated")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every automation of the organisation")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Preview per automation; change nothing")]
AtomicOpt = Annotated[bool, typer.Option("--atomic", help="All or nothing: any failure undoes every change")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Automations per transaction (default 500)")]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="The versions' or promotions' message")]

WHERE_KEYS = {"type": "type", "status": "status", "env": "deployed_in", "text": "text", "match": "tags_match"}
ITEM_COLUMNS = ["position", "automation", "result", "code", "message"]


def selection(where: list[str] | None, ids: list[str] | None, everything: bool) -> dict:
    """--where / --ids / --all as cfg.select_automations reads a selection."""
    if sum((bool(where), bool(ids), everything)) != 1:
        raise typer.BadParameter("choose the automations with one of --where …, --ids … or --all")
    if ids:
        return {"ids": [i.strip() for chunk in ids for i in chunk.split(",") if i.strip()]}
    filters: dict = {}
    for pair in where or []:
        key, sep, value = pair.partition("=")
        if not sep or not value:
            raise typer.BadParameter(f"--where takes KEY=VALUE, not {pair!r}")
        if key in ("tag", "tags"):
            filters.setdefault("tags", []).extend(v for v in value.split(",") if v)
        elif key in WHERE_KEYS:
            filters[WHERE_KEYS[key]] = value
        else:
            raise typer.BadParameter(f"--where {key}=…: use type, status, tag, match, env or text")
    return {"where": filters}


def run(org: str, action: str, options: dict, where, ids, everything: bool, dry_run: bool, atomic: bool,
        batch_size: int | None, as_user, service, as_json: bool) -> None:
    """bulk_apply, then bulk_continue batch after batch with a progress bar; the result table."""
    chosen = selection(where, ids, everything)
    options |= {"dry_run": dry_run, "atomic": atomic}
    if batch_size is not None:
        options["batch_size"] = batch_size
    with open_connection() as conn:
        identity = resolve_identity(conn, as_user, service)
        with acting_as(conn, identity) as cur:
            org_id = resolve_org(cur, org)["id"]
            op = cur.execute("select cfg.bulk_apply(%s, %s::jsonb, %s, %s::jsonb) as r",
                             (org_id, json.dumps(chosen), action, json.dumps(options))).fetchone()["r"]
        items = op.pop("items")
        if op.get("status") == "running":
            items += drive(conn, identity, op, as_json)
    show(op | {"items": items}, as_json)


def drive(conn, identity, op: dict, quiet: bool) -> list[dict]:
    """Runs the remaining batches, each its own transaction; Ctrl-C leaves the rest to the
    sync service (the operation stays running)."""
    items: list[dict] = []
    columns = (TextColumn(f"{op['action']}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=quiet) as progress:
        task = progress.add_task(op["action"], total=op["total"], completed=op["done"])
        try:
            while op["status"] == "running":
                with acting_as(conn, identity) as cur:
                    answer = cur.execute("select cfg.bulk_continue(%s) as r", (op["id"],)).fetchone()["r"]
                items += answer.pop("items")
                if answer.pop("busy"):
                    time.sleep(0.5)  # another continuation holds this batch
                op.update(answer)
                progress.update(task, completed=op["done"])
        except KeyboardInterrupt:
            err_console.print(f"stopped: the sync service continues operation {op['id']} "
                              f"(cfgctl bulk show {op['id']}; cfgctl bulk cancel {op['id']})")
            raise typer.Exit(1) from None
    return items


def show(op: dict, as_json: bool) -> None:
    """The result per automation, then the counts; exit 1 when any automation failed."""
    if as_json:
        print(to_json(op))
    else:
        rows = [i | {"automation": i.get("slug") or i["automation_id"]} for i in op["items"]]
        columns = ITEM_COLUMNS + (["preview"] if op.get("dry_run") else ["version_id", "request_id"])
        render(rows, columns, False, title=f"bulk {op['action']}" + (" (dry run)" if op.get("dry_run") else ""))
        counts = ", ".join(f"{op[k]} {k.replace('_', ' ')}" for k in
                           ("succeeded", "unchanged", "failed", "not_found", "rolled_back") if op.get(k))
        err_console.print(f"{op.get('status', 'dry run')}: {counts or 'nothing selected'}"
                          + (f" (operation {op['id']})" if op.get("id") else ""), highlight=False)
    if op.get("failed") or op.get("not_found") or op.get("status") == "failed":
        raise typer.Exit(1)


@bulk_app.command("status")
def bulk_status(org: Org, status: Annotated[str, typer.Argument(help="active, paused or archived")],
                where: WhereOpt = None, ids: IdsOpt = None, everything: AllOpt = False, dry_run: DryRunOpt = False,
                atomic: AtomicOpt = False, batch_size: BatchOpt = None,
                as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Set the status of the selected automations (editors)."""
    run(org, "status", {"status": status}, where, ids, everything, dry_run, atomic, batch_size,
        as_user, service, as_json)


@bulk_app.command("tag")
def bulk_tag(org: Org, tags: Annotated[list[str], typer.Argument(help="Tags to add")],
             where: WhereOpt = None, ids: IdsOpt = None, everything: AllOpt = False, dry_run: DryRunOpt = False,
             atomic: AtomicOpt = False, batch_size: BatchOpt = None,
             as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Add tags to the selected automations (editors)."""
    run(org, "tag", {"tags": tags}, where, ids, everything, dry_run, atomic, batch_size, as_user, service, as_json)


@bulk_app.command("untag")
def bulk_untag(org: Org, tags: Annotated[list[str], typer.Argument(help="Tags to remove")],
               where: WhereOpt = None, ids: IdsOpt = None, everything: AllOpt = False, dry_run: DryRunOpt = False,
               atomic: AtomicOpt = False, batch_size: BatchOpt = None,
               as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Remove tags from the selected automations (editors)."""
    run(org, "untag", {"tags": tags}, where, ids, everything, dry_run, atomic, batch_size, as_user, service, as_json)


@bulk_app.command("patch")
def bulk_patch(org: Org,
               set_: Annotated[list[str] | None, typer.Option(
                   "--set", help="SECTION.KEY=VALUE (JSON when it parses, else text), repeatable")] = None,
               unset: Annotated[list[str] | None, typer.Option("--unset", help="SECTION.KEY, repeatable")] = None,
               message: MessageOpt = None,
               where: WhereOpt = None, ids: IdsOpt = None, everything: AllOpt = False, dry_run: DryRunOpt = False,
               atomic: AtomicOpt = False, batch_size: BatchOpt = None,
               as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Set or unset config keys in the selected automations, a version each (editors)."""
    options = {"set": parse_values(set_), "unset": unset or [], "message": message or ""}
    run(org, "patch", options, where, ids, everything, dry_run, atomic, batch_size, as_user, service, as_json)


@bulk_app.command("promote")
def bulk_promote(org: Org,
                 from_env: Annotated[str, typer.Option("--from", help="The environment to promote from")],
                 to_env: Annotated[str, typer.Option("--to", help="The environment to promote to")],
                 reason: Annotated[str | None, typer.Option("--reason", help="Why steps are skipped (admins)")] = None,
                 message: MessageOpt = None,
                 where: WhereOpt = None, ids: IdsOpt = None, everything: AllOpt = False, dry_run: DryRunOpt = False,
                 atomic: AtomicOpt = False, batch_size: BatchOpt = None,
                 as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Promote the selected automations; targets that need approval get a request each,
    grouped under the operation (`cfgctl bulk approve|reject`)."""
    options = {"from_env": from_env, "to_env": to_env, "message": message or ""}
    if reason:
        options["reason"] = reason
    run(org, "promote", options, where, ids, everything, dry_run, atomic, batch_size, as_user, service, as_json)


@bulk_app.command("delete")
def bulk_delete(org: Org, yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
                where: WhereOpt = None, ids: IdsOpt = None, everything: AllOpt = False, dry_run: DryRunOpt = False,
                atomic: AtomicOpt = False, batch_size: BatchOpt = None,
                as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Delete the selected automations (admins)."""
    if not (yes or dry_run):
        typer.confirm("Delete every selected automation with its config?", abort=True)
    run(org, "delete", {}, where, ids, everything, dry_run, atomic, batch_size, as_user, service, as_json)


@bulk_app.command("show")
def bulk_show(operation: Operation, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """An operation with its result per automation (members); exit 1 if any failed."""
    with session(as_user, service) as (cur, _):
        op = cur.execute("select cfg.get_bulk_operation(%s) as r", (operation,)).fetchone()["r"]
    show(op, as_json)


@bulk_app.command("list")
def bulk_list(org: Org, limit: Annotated[int, typer.Option("--limit", help="At most this many")] = 50,
              as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The organisation's bulk operations, newest first (members)."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_bulk_operations(%s, %s)",
                           (resolve_org(cur, org)["id"], limit)).fetchall()
    render(rows, ["id", "action", "status", "total", "done", "succeeded", "unchanged", "failed", "not_found",
                  "created_by_email", "created_at"], as_json)


@bulk_app.command("continue")
def bulk_continue(operation: Operation, as_user: AsOpt = None, service: ServiceOpt = False,
                  as_json: JsonOpt = False):
    """Run the remaining batches of your running operation, with a progress bar."""
    with open_connection() as conn:
        identity = resolve_identity(conn, as_user, service)
        with acting_as(conn, identity) as cur:
            op = cur.execute("select cfg.get_bulk_operation(%s) as r", (operation,)).fetchone()["r"]
        items = op.pop("items")
        if op["status"] == "running":
            items += drive(conn, identity, op, as_json)
    show(op | {"items": sorted({i["position"]: i for i in items}.values(), key=lambda i: i["position"])}, as_json)


@bulk_app.command("cancel")
def bulk_cancel(operation: Operation, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Stop a running operation before its next batch (its author or an admin)."""
    with session(as_user, service) as (cur, _):
        op = cur.execute("select cfg.cancel_bulk_operation(%s) as r", (operation,)).fetchone()["r"]
    render_one({k: op[k] for k in ("id", "action", "status", "total", "done", "succeeded", "failed")}, as_json)


def decide(operation: str, approve: bool, comment: str | None, as_user, service, as_json: bool) -> None:
    with session(as_user, service) as (cur, _):
        answer = cur.execute("select cfg.decide_bulk_promotions(%s, %s, %s) as r",
                             (operation, approve, comment)).fetchone()["r"]
    if as_json:
        print(to_json(answer))
    else:
        render(answer["items"], ["automation_id", "request_id", "result", "code", "message"], False,
               title=f"{'approved' if approve else 'rejected'}: {answer['decided']}, failed: {answer['failed']}")
    if answer["failed"]:
        raise typer.Exit(1)


@bulk_app.command("approve")
def bulk_approve(operation: Operation,
                 comment: Annotated[str | None, typer.Option("--comment", help="Why")] = None,
                 as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Approve (and apply) every pending promotion request of a bulk promotion (admins)."""
    decide(operation, True, comment, as_user, service, as_json)


@bulk_app.command("reject")
def bulk_reject(operation: Operation,
                reason: Annotated[str, typer.Option("--reason", help="Why (required)")],
                as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Reject every pending promotion request of a bulk promotion (admins)."""
    decide(operation, False, reason, as_user, service, as_json)

