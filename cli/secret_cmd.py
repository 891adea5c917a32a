"""`cfgctl secret` — secret values, revealed on purpose (audited), and who may reveal them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, render, render_one, resolve_automation, resolve_org, session, to_json

secret_app = typer.Typer(help="Secret values: reveal (audited), who may reveal.", no_args_is_help=True)

Ref = Annotated[str, typer.Argument(help="ORG/SLUG or the automation's id")]
MASK = "********"


def _entry(entry: str) -> tuple[str, str]:
    section, dot, key = entry.partition(".")
    if not dot or not section or not key:
        raise CfgError(f"name the entry as SECTION.KEY, not {entry!r}", "PT422")
    return section, key


@secret_app.command("reveal")
def secret_reveal(
    ref: Ref,
    entry: Annotated[str, typer.Argument(help="SECTION.KEY of the secret entry")],
    version: Annotated[int | None, typer.Option("--version", help="As this version captured it.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Print without asking first.")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Print a secret's value (editors and admins, or admins only where the org says so).
    Every reveal is audited and emits secret.revealed."""
    section, key = _entry(entry)
    if not yes:
        typer.confirm(f"Reveal {entry}{f' of version {version}' if version else ''}? The reveal is audited",
                      abort=True)
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute("select cfg.reveal_secret(%s, %s, %s, %s) as r", (automation["id"], section, key, version))
        revealed = cur.fetchone()["r"]
    if as_json:
        print(to_json(revealed))
    else:
        print(json.dumps(revealed["value"], ensure_ascii=False))


@secret_app.command("reveal-role")
def secret_reveal_role(
    org: Annotated[str, typer.Argument(help="The organisation (slug or id)")],
    role: Annotated[str, typer.Argument(help="editor (editors and admins) or admin (admins only)")],
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Set who may reveal secret values in an organisation (admins)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.set_secret_reveal_role(%s, %s::cfg.org_role)", (org_row["id"], role))
        row = cur.fetchone()
    render_one({"org": row["slug"], "secret_reveal_role": row["secret_reveal_role"]}, as_json)


@secret_app.command("list")
def secret_list(ref: Ref, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The secrets of an automation, masked: when each was set, its rotation policy, whether it is due."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute("select * from cfg.list_secrets(%s)", (automation["id"],))
        rows = cur.fetchall()
    render([{**r, "value": MASK} for r in rows],
           ["section", "key", "value", "value_set_at", "rotate_every", "expires_at", "rotation_due_at", "rotation_due"],
           as_json)


@secret_app.command("rotation")
def secret_rotation(
    ref: Ref,
    entry: Annotated[str, typer.Argument(help="SECTION.KEY of the secret entry")],
    every: Annotated[str | None, typer.Option("--every", help="Rotate this often ('90 days').")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Rotate by this time (ISO 8601).")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Set (or, with neither option, clear) a secret's rotation policy. A daily job emits
    secret.rotation_due for secrets past due."""
    section, key = _entry(entry)
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute("select cfg.set_secret_rotation(%s, %s, %s, %s::interval, %s::timestamptz) as r",
                    (automation["id"], section, key, every, expires))
        row = cur.fetchone()["r"]
    render_one({**row, "value": MASK}, as_json)
