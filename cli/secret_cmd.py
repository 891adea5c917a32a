"""`cfgctl secret` — secret values, revealed on purpose (audited), and who may reveal them;
bindings to external vaults (bind, unbind, sync, status) and their conflicts."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, render, render_one, resolve_automation, resolve_org, session, to_json
from .vault_cmd import WaitOpt, backend_by_name, wait_for

secret_app = typer.Typer(help="Secret values: reveal (audited), who may reveal, external vault bindings.",
                         no_args_is_help=True)

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
    if revealed.get("pending"):
        revealed = _collected(revealed, as_user, service)
    if as_json:
        print(to_json(revealed))
    else:
        print(json.dumps(revealed["value"], ensure_ascii=False))


def _collected(asked: dict, as_user, service) -> dict:
    """A secret bound by reference: the sync service fetches it; collect the answer once."""
    def answer():
        with session(as_user, service) as (cur, _):
            got = cur.execute("select cfg.collect_revealed_secret(%s) as r", (asked["request_id"],)).fetchone()["r"]
        return got if got["status"] != "pending" else None
    got = wait_for(answer, 30.0, f"fetching {asked['ref']}")
    if got is None:
        raise CfgError(f"{asked['ref']} was not fetched in time", "PT404")
    if got["status"] == "failed":
        raise CfgError(f"{asked['ref']} could not be read: {got['error']}")
    return {**asked, "pending": False, "value": got["value"]}


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


# -- external vault bindings -------------------------------------------------------------

BINDING_COLUMNS = ["section", "key", "mode", "backend", "ref", "environment", "fingerprint", "external_version",
                   "status", "error_kind", "last_error", "last_success_at"]


def _binding(cur, automation_id, entry: str, env: str | None) -> dict:
    section, key = _entry(entry)
    for row in cur.execute("select * from cfg.list_secret_bindings(%s)", (automation_id,)).fetchall():
        if (row["section"], row["key"], row["environment"]) == (section, key, env):
            return row
    raise CfgError(f"{entry} has no binding{f' for {env}' if env else ''}", "PT404")


EnvOpt = Annotated[str | None, typer.Option("--env", help="push: write on deployments to this environment "
                                                       "(default: on every save).")]


@secret_app.command("bind")
def secret_bind(
    ref: Ref,
    entry: Annotated[str, typer.Argument(help="SECTION.KEY of the secret entry")],
    backend: Annotated[str, typer.Option("--backend", help="The vault backend's name")],
    address: Annotated[str, typer.Option("--ref", help="aws-sm://NAME[#FIELD] or vault://MOUNT/PATH#FIELD")],
    mode: Annotated[str, typer.Option("--mode", help="reference (the value lives there only) or push "
                                                     "(cfgctl writes it there)")] = "reference",
    env: EnvOpt = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Bind a secret entry to a secret in an external vault (admins)."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        backend_id = backend_by_name(cur, automation["org_id"], backend)["id"]
        env_id = cur.execute("select * from cfg.find_environment(%s, %s)",
                             (automation["org_id"], env)).fetchone()["id"] if env else None
        section, key = _entry(entry)
        cur.execute("select * from cfg.bind_secret(%s, %s, %s, %s, %s, %s, %s)",
                    (automation["id"], section, key, backend_id, address, mode, env_id))
        row = _binding(cur, automation["id"], entry, env)
    render_one({k: row[k] for k in BINDING_COLUMNS}, as_json)


@secret_app.command("unbind")
def secret_unbind(ref: Ref, entry: Annotated[str, typer.Argument(help="SECTION.KEY")], env: EnvOpt = None,
                  as_user: AsOpt = None, service: ServiceOpt = False):
    """End a binding (admins). The external secret stays; an entry bound by reference has no
    value in cfgctl afterwards: its next save gives one."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute("select cfg.unbind_secret(%s)", (_binding(cur, automation["id"], entry, env)["id"],))
    print(f"unbound {entry}")


@secret_app.command("sync")
def secret_sync(ref: Ref, entry: Annotated[str, typer.Argument(help="SECTION.KEY")], env: EnvOpt = None,
                wait: WaitOpt = 10.0, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Have the sync service look at a binding now (editors); exit 1 unless it ends in step."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute("select * from cfg.sync_secret_binding(%s)", (_binding(cur, automation["id"], entry, env)["id"],))

    def answered():
        with session(as_user, service) as (cur, _):
            row = _binding(cur, automation["id"], entry, env)
        return row if row["status"] != "pending" else None
    row = wait_for(answered, wait, "sync")
    if row is None:
        raise typer.Exit(1)
    render_one({k: row[k] for k in BINDING_COLUMNS}, as_json)
    if row["status"] != "ok":
        raise typer.Exit(1)


@secret_app.command("status")
def secret_status(ref: Ref, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """An automation's bindings: where each secret is kept, its state, the last success and error."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        rows = cur.execute("select * from cfg.list_secret_bindings(%s)", (automation["id"],)).fetchall()
    render(rows, BINDING_COLUMNS, as_json)


@secret_app.command("conflicts")
def secret_conflicts(org: Annotated[str, typer.Argument(help="The organisation (slug or id)")],
                     as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Open sync conflicts: bound secrets changed both in cfgctl and in the external vault (admins)."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_secret_conflicts(%s)", (resolve_org(cur, org)["id"],)).fetchall()
    render(rows, ["id", "automation_id", "binding_id", "external_version", "created_at"], as_json)


@secret_app.command("resolve")
def secret_resolve(
    conflict: Annotated[str, typer.Argument(help="The conflict's id (cfgctl secret conflicts)")],
    keep: Annotated[str, typer.Argument(help="local (push cfgctl's value) or external (import theirs)")],
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Resolve a sync conflict (admins)."""
    resolution = {"local": "keep_local", "external": "take_external"}.get(keep, keep)
    with session(as_user, service) as (cur, _):
        row = cur.execute("select * from cfg.resolve_secret_conflict(%s, %s)", (conflict, resolution)).fetchone()
    render_one(row, as_json)
