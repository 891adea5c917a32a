"""`cfgctl schedule` — config changes at a future time or on a cron schedule, optionally
reverted after a window (editors schedule, admins approve where the environment requires
it): add, edit, list, timeline, pause, resume, cancel, approve."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, render, render_one, resolve_automation, resolve_org, session

schedule_app = typer.Typer(help="Scheduled and recurring config changes, with a timeline.", no_args_is_help=True)

Automation = Annotated[str, typer.Argument(help="The automation, ORG/SLUG or id")]
Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
ScheduleId = Annotated[str, typer.Argument(help="The schedule's id (cfgctl schedule list)")]
LIST_COLUMNS = ["id", "automation", "action", "run_at", "cron", "timezone", "revert_after", "state", "armed",
                "next_due_at", "author_email"]


def _key(text: str, option: str) -> tuple[str, str]:
    section, sep, key = text.partition(".")
    if not sep or not section or not key:
        raise typer.BadParameter(f"{option} takes SECTION.KEY, not {text!r}")
    return section, key


def build_change(set_: list[str] | None, unset: list[str] | None, content: Path | None, promote: str | None,
                 rollback: int | None, status: str | None, rotate: str | None, fmt: str) -> dict:
    """The change argument of cfg.add_schedule from exactly one kind of option."""
    given = [bool(set_ or unset), content is not None, promote is not None, rollback is not None,
             status is not None, rotate is not None]
    if sum(given) != 1:
        raise typer.BadParameter("give one change: --set/--unset, --content, --promote, --rollback, --status "
                                 "or --rotate")
    if set_ or unset:
        patch: dict = {"action": "patch", "set": {}, "unset": {}}
        for pair in set_ or []:
            name, sep, text = pair.partition("=")
            if not sep:
                raise typer.BadParameter(f"--set takes SECTION.KEY=VALUE, not {pair!r}")
            section, key = _key(name, "--set")
            try:
                value = json.loads(text)
            except ValueError:
                value = text
            patch["set"].setdefault(section, {})[key] = {"value": value}
        for name in unset or []:
            section, key = _key(name, "--unset")
            patch["unset"].setdefault(section, []).append(key)
        return patch
    if content is not None:
        try:
            return {"action": "content", "content": json.loads(content.read_text())}
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot read {content}: {exc}") from None
    if promote is not None:
        source, sep, target = promote.partition(":")
        if not sep or not source or not target:
            raise typer.BadParameter(f"--promote takes FROM:TO, not {promote!r}")
        return {"action": "promote", "from": source, "to": target}
    if rollback is not None:
        return {"action": "rollback", "version": rollback}
    if status is not None:
        return {"action": "status", "status": status}
    section, key = _key(rotate or "", "--rotate")
    return {"action": "rotate", "section": section, "key": key, "format": fmt}


def wall_time(text: str | None, tz: str, option: str) -> str | None:
    """A time as the wall time in tz the RPCs take: given with an offset, it is converted."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise typer.BadParameter(f"{option}: {exc}") from None
    return moment.isoformat()


@schedule_app.command("add")
def schedule_add(
    automation: Automation,
    at: Annotated[str | None, typer.Option("--at", help="One-off: a time, YYYY-MM-DDTHH:MM in --tz")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Recurring: a cron expression read in --tz")] = None,
    tz: Annotated[str, typer.Option("--tz", help="An IANA time zone")] = "UTC",
    until: Annotated[str | None, typer.Option("--until", help="Recurring: no run after this time")] = None,
    count: Annotated[int | None, typer.Option("--count", help="Recurring: at most this many runs")] = None,
    revert_at: Annotated[str | None, typer.Option("--revert-at", help="One-off window: revert at this time")] = None,
    window: Annotated[str | None, typer.Option("--window", help="Revert this long after each run ('2 hours')")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="SECTION.KEY=VALUE (JSON or text)")] = None,
    unset: Annotated[list[str] | None, typer.Option("--unset", help="SECTION.KEY to remove, repeatable")] = None,
    content: Annotated[Path | None, typer.Option("--content", help="A JSON file: the whole content")] = None,
    promote: Annotated[str | None, typer.Option("--promote", help="FROM:TO environments")] = None,
    rollback: Annotated[int | None, typer.Option("--rollback", help="Roll back to version N")] = None,
    status: Annotated[str | None, typer.Option("--status", help="active, paused or archived")] = None,
    rotate: Annotated[str | None, typer.Option("--rotate", help="SECTION.KEY: a new random secret value")] = None,
    fmt: Annotated[str, typer.Option("--format", help="--rotate: hex, base64url, alphanumeric or uuid")] = "hex",
    missed: Annotated[str, typer.Option("--missed", help="run_late or skip: what a run missed while down does")]
    = "run_late",
    max_lateness: Annotated[str, typer.Option("--max-lateness", help="run_late: at most this late")] = "1 hour",
    force: Annotated[bool, typer.Option("--force", help="Apply (or revert) even if what it touches changed meanwhile")]
    = False,
    message: Annotated[str, typer.Option("--message", "-m", help="The message of the versions it makes")] = "",
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Schedule a change of an automation (editors): once (--at) or recurring (--cron)."""
    change = build_change(set_, unset, content, promote, rollback, status, rotate, fmt)
    with session(as_user, service) as (cur, _):
        found = resolve_automation(cur, None, automation)
        row = cur.execute(
            "select cfg.add_schedule(%s, %s::jsonb, %s::timestamp, %s, %s, %s::timestamp, %s, %s::timestamp, "
            "%s::interval, %s, %s::interval, %s, %s) as s",
            (found["id"], json.dumps(change), wall_time(at, tz, "--at"), cron, tz, wall_time(until, tz, "--until"),
             count, wall_time(revert_at, tz, "--revert-at"), window, missed, max_lateness, force, message),
        ).fetchone()["s"]
    render_one(row, as_json)


@schedule_app.command("edit")
def schedule_edit(
    schedule: ScheduleId,
    fields: Annotated[str, typer.Option("--fields", help="JSON: add_schedule's arguments to change, "
                                                         "e.g. '{\"at\": \"2027-01-01T02:00\"}'")],
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Change a schedule (editors); its approval is reset and you become its author."""
    try:
        parsed = json.loads(fields)
    except ValueError as exc:
        raise typer.BadParameter(f"--fields is JSON: {exc}") from None
    with session(as_user, service) as (cur, _):
        row = cur.execute("select cfg.edit_schedule(%s, %s::jsonb) as s",
                          (schedule, json.dumps(parsed))).fetchone()["s"]
    render_one(row, as_json)


@schedule_app.command("list")
def schedule_list(org: Org, all_: Annotated[bool, typer.Option("--all", help="Also finished ones")] = False,
                  as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The organisation's schedules (members)."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_schedules(%s, null, %s)",
                           (resolve_org(cur, org)["id"], all_)).fetchall()
    render(rows, LIST_COLUMNS, as_json)


@schedule_app.command("timeline")
def schedule_timeline(
    org: Org,
    days: Annotated[int, typer.Option("--days", help="How far ahead")] = 14,
    past: Annotated[int, typer.Option("--past", help="How many days back")] = 1,
    automation: Annotated[str | None, typer.Option("--automation", help="Only this automation (ORG/SLUG)")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Only changes deploying to this environment")] = None,
    tz: Annotated[str, typer.Option("--tz", help="Group and show times in this zone")] = "UTC",
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Upcoming occurrences with what each would change, and past runs with their outcome,
    as a table per day."""
    try:
        zone = ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        raise CfgError(f"unknown time zone {tz!r}", "PT422") from None
    with session(as_user, service) as (cur, _):
        org_id = resolve_org(cur, org)["id"]
        automation_id = resolve_automation(cur, None, automation)["id"] if automation else None
        now = datetime.now(UTC)
        rows = cur.execute("select * from cfg.schedule_timeline(%s, %s, %s, %s, %s)",
                           (org_id, now - timedelta(days=past), now + timedelta(days=days), automation_id, env)
                           ).fetchall()
    if as_json:
        render(rows, [], True)
        return
    if not rows:
        print("nothing scheduled")
    for day, group in groupby(rows, key=lambda r: r["due_at"].astimezone(zone).date()):
        shown = [r | {"time": r["due_at"].astimezone(zone).strftime("%H:%M"),
                      "what": r["error"] or r["preview"] or r["outcome"]} for r in group]
        render(shown, ["time", "automation", "action", "phase", "status", "environment", "lateness", "version", "what"],
               False, title=day.isoformat())


def _state_command(name: str, rpc: str, doc: str):
    def command(schedule: ScheduleId, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
        with session(as_user, service) as (cur, _):
            row = cur.execute(rpc, (schedule,)).fetchone()["s"]
        render_one(row, as_json)

    command.__doc__ = doc
    schedule_app.command(name)(command)


_state_command("pause", "select cfg.pause_schedule(%s) as s", "Pause a schedule (editors); resume skips what came due.")
_state_command("resume", "select cfg.resume_schedule(%s) as s", "Resume a paused schedule (editors).")
_state_command("cancel", "select cfg.cancel_schedule(%s) as s", "Cancel a schedule (editors): nothing more runs.")
_state_command("approve", "select cfg.approve_schedule(%s) as s",
               "Approve a schedule's exact change (admins other than its author).")
