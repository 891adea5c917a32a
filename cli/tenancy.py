"""`cfgctl org | member | invite | user | automation` — tenancy as a signed-in user would see it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sync_service.db import CfgError
from sync_service.users import user_directory

from .common import (
    AsOpt,
    DbUrlOpt,
    JsonOpt,
    ServiceOpt,
    console,
    db_url,
    render,
    render_one,
    resolve_automation,
    resolve_org,
    session,
)
from .template_cmd import parse_values, template_by_slug

org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
member_app = typer.Typer(help="Members of an organisation and their roles.", no_args_is_help=True)
invite_app = typer.Typer(help="Invitations addressed to you.", no_args_is_help=True)
user_app = typer.Typer(help="Users (Supabase Auth).", no_args_is_help=True)
automation_app = typer.Typer(help="Automations: services, cron jobs, gateways.", no_args_is_help=True)

ORG_COLUMNS = ["slug", "name", "role", "id", "created_at"]
AUTOMATION_COLUMNS = ["slug", "name", "type", "status", "tags", "updated_at", "id"]
Role = Annotated[str, typer.Option("--role", help="viewer | editor | admin")]
ExpiresOpt = Annotated[str, typer.Option("--expires-in", help="e.g. '7 days', '12 hours' (1 hour to 30 days)")]
RedirectOpt = Annotated[
    str | None, typer.Option("--redirect-to", help="Hosted project: where the invite email's link lands.")
]


@org_app.command("create")
def org_create(
    name: str, slug: Annotated[str, typer.Option("--slug", help="URL name, e.g. acme")],
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Create an organisation; you become its first admin."""
    with session(as_user, service) as (cur, _):
        cur.execute("select * from cfg.create_org(%s, %s)", (name, slug))
        org = cur.fetchone()
    render_one(org, as_json)


@org_app.command("list")
def org_list(as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False) -> None:
    """Organisations you belong to, with your role."""
    with session(as_user, service) as (cur, _):
        cur.execute("select * from cfg.my_orgs()")
        rows = cur.fetchall()
    render(rows, ORG_COLUMNS, as_json)


def _member_user_id(cur, org_id, email: str):
    cur.execute("select * from cfg.list_members(%s)", (org_id,))
    row = next((m for m in cur.fetchall() if (m["email"] or "").lower() == email.lower()), None)
    if row is None:
        raise CfgError(f"{email} is not a member of this organisation", "PT404")
    return row["user_id"]


@member_app.command("list")
def member_list(org: str, as_user: AsOpt = None, service: ServiceOpt = False,
                as_json: JsonOpt = False) -> None:
    """Members of ORG with their roles."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.list_members(%s)", (org_row["id"],))
        rows = cur.fetchall()
    render(rows, ["email", "role", "user_id", "created_at"], as_json)


# There is no `member add`: people join by accepting an invitation (issue 8).
@member_app.command("invite")
def member_invite(
    org: str, email: str, role: Role = "viewer",
    expires_in: ExpiresOpt = "7 days",
    redirect_to: RedirectOpt = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Invite EMAIL to ORG with a role (admins only). The answer is the same whether or not
    EMAIL has an account. On a hosted project Supabase Auth also emails new addresses."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.invite_member(%s, %s, %s::cfg.org_role, %s::interval)",
                    (org_row["id"], email, role, expires_in))
        row = cur.fetchone()
    # After the commit: the invitation exists before anyone can follow the email's link.
    user_directory(db_url(None)).invite_user(row["email"], redirect_to)
    render_one(row, as_json)


@member_app.command("invitations")
def member_invitations(org: str, as_user: AsOpt = None, service: ServiceOpt = False,
                       as_json: JsonOpt = False) -> None:
    """Invitations of ORG with their status: pending, expired, accepted, revoked (admins only)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.list_invitations(%s)", (org_row["id"],))
        rows = cur.fetchall()
    render(rows, ["email", "role", "status", "expires_at", "invited_by_email", "id"], as_json)


@member_app.command("revoke-invite")
def member_revoke_invite(invitation_id: str, as_user: AsOpt = None, service: ServiceOpt = False,
                         as_json: JsonOpt = False) -> None:
    """Revoke a pending invitation by its id (admins only)."""
    with session(as_user, service) as (cur, _):
        cur.execute("select * from cfg.revoke_invitation(%s)", (invitation_id,))
        row = cur.fetchone()
    render_one(row, as_json)


@invite_app.command("list")
def invite_list(as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Open invitations addressed to your email."""
    with session(as_user, False) as (cur, _):
        cur.execute("select * from cfg.my_invitations()")
        rows = cur.fetchall()
    render(rows, ["id", "org_id", "role", "expires_at"], as_json)


@invite_app.command("accept")
def invite_accept(invitation_id: str, as_user: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Accept an invitation addressed to your email: you join its organisation."""
    with session(as_user, False) as (cur, _):
        cur.execute("select * from cfg.accept_invitation(%s)", (invitation_id,))
        row = cur.fetchone()
    render_one(row, as_json)


@member_app.command("set-role")
def member_set_role(org: str, email: str, role: Annotated[str, typer.Argument(help="viewer | editor | admin")],
                    as_user: AsOpt = None, service: ServiceOpt = False,
                    as_json: JsonOpt = False) -> None:
    """Change a member's role (admins only; the last admin cannot be demoted)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        user_id = _member_user_id(cur, org_row["id"], email)
        cur.execute("select * from cfg.set_member_role(%s, %s, %s::cfg.org_role)",
                    (org_row["id"], user_id, role))
        row = cur.fetchone()
    render_one(row, as_json)


@member_app.command("remove")
def member_remove(org: str, email: str, as_user: AsOpt = None, service: ServiceOpt = False,
                  as_json: JsonOpt = False) -> None:
    """Remove a member (admins only; the last admin cannot be removed)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        user_id = _member_user_id(cur, org_row["id"], email)
        cur.execute("select * from cfg.remove_member(%s, %s)", (org_row["id"], user_id))
        row = cur.fetchone()
    render_one(row, as_json)


@user_app.command("create")
def user_create(
    email: str,
    password: Annotated[str, typer.Option("--password", prompt=True, hide_input=True)],
    url: DbUrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a user who can sign in with email and password."""
    user = user_directory(db_url(url)).create_user(email, password)
    if as_json:
        render_one(user, True)
    else:
        console.print(f"created {user['email']} ({user['id']})")


@user_app.command("delete")
def user_delete(email: str, yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
                url: DbUrlOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a user as Supabase Auth does. Their memberships end; what they did stays
    (author ids and emails are kept). An org whose last admin this was is left without
    one: name a new admin with `member set-role ... admin --service` or `member invite
    ... --role admin --service`."""
    if not yes:
        typer.confirm(f"Delete the user {email} and all their memberships?", abort=True)
    user = user_directory(db_url(url)).delete_user(email)
    if as_json:
        render_one(user, True)
    else:
        console.print(f"deleted {user['email']} ({user['id']})")


@automation_app.command("create")
def automation_create(
    org: str, name: str,
    slug: Annotated[str, typer.Option("--slug", help="Unique within the org, e.g. billing-api")],
    type_: Annotated[str, typer.Option("--type", help="service | cron_job | api_gateway | worker | other")] = "service",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Repeat for several tags.")] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    template: Annotated[str | None, typer.Option(
        "--template", help="Start from this template (slug): its type, its content filled with --set values")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="A placeholder's value, NAME=VALUE (repeat)")] = None,
    template_version: Annotated[int | None, typer.Option(
        "--template-version", help="The template version to start from (default: its current one)")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Create an automation in ORG (editors and admins), blank or from a template (its
    first version saved, the type's rules checked; missing or invalid values exit 6)."""
    if set_ and not template:
        raise typer.BadParameter("--set needs --template")
    values = parse_values(set_)
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        if template:
            found = template_by_slug(cur, org_row["id"], template)
            made = cur.execute(
                "select cfg.create_automation_from_template(%s, %s, %s, %s, %s::jsonb, %s) as r",
                (org_row["id"], found["id"], name, slug, json.dumps(values), template_version),
            ).fetchone()["r"]
            row = made["automation"] | {k: made[k] for k in ("version", "template", "template_version")}
        else:
            cur.execute(
                "select * from cfg.create_automation(%s, %s, %s, %s, %s, %s)",
                (org_row["id"], name, slug, type_, tag or [], description),
            )
            row = cur.fetchone()
    render_one(row, as_json)


@automation_app.command("clone")
def automation_clone(
    source: Annotated[str, typer.Argument(help="The automation to copy, ORG/SLUG or id")],
    new_slug: Annotated[str, typer.Argument(help="The clone's slug")],
    name: Annotated[str, typer.Option("--name", help="The clone's name")],
    to_org: Annotated[str | None, typer.Option("--to-org", help="Another organisation (editor in both)")] = None,
    version: Annotated[int | None, typer.Option("--version", help="The version to copy (default: latest)")] = None,
    copy_secrets: Annotated[bool, typer.Option(
        "--copy-secrets", help="Include secret values (needs the right to reveal them; audited as reveals)")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Copy a version of an automation into a new one, in its org or another; secrets are
    left out (and listed) unless --copy-secrets."""
    with session(as_user, service) as (cur, _):
        found = resolve_automation(cur, None, source)
        target = resolve_org(cur, to_org)["id"] if to_org else None
        made = cur.execute("select cfg.clone_automation(%s, %s, %s, %s, %s, %s) as r",
                           (found["id"], name, new_slug, version, target, copy_secrets)).fetchone()["r"]
    if as_json:
        render_one(made, True)
        return
    console.print(f"cloned {made['source']['slug']} v{made['source']['version']} into {made['automation']['slug']} "
                  f"(version {made['version']})")
    for kind in ("secrets_copied", "secrets_left_out"):
        if made[kind]:
            console.print(f"{kind.replace('_', ' ')}: " + ", ".join(f"{s['section']}.{s['key']}" for s in made[kind]))


@automation_app.command("list")
def automation_list(org: str, as_user: AsOpt = None, service: ServiceOpt = False,
                    as_json: JsonOpt = False) -> None:
    """Automations of ORG."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.list_automations(%s)", (org_row["id"],))
        rows = cur.fetchall()
    render(rows, AUTOMATION_COLUMNS, as_json)


@automation_app.command("show")
def automation_show(ref: Annotated[str, typer.Argument(help="ORG/SLUG or id")],
                    as_user: AsOpt = None, service: ServiceOpt = False,
                    as_json: JsonOpt = False) -> None:
    """One automation with its sections and entries (secret values masked)."""
    with session(as_user, service) as (cur, _):
        row = resolve_automation(cur, None, ref)
        # The current version's content (cfg.get_config): secret values never leave the database.
        cur.execute("select cfg.get_config(%s) as c", (row["id"],))
        sections = cur.fetchone()["c"]["content"]["sections"]
        # Where it came from: a template version, or a clone's source (cfg.automation_origins).
        origin = cur.execute("select cfg.automation_origin(%s) as o", (row["id"],)).fetchone()["o"]
    entries = [
        {"section": name, "key": key, "value": "********" if entry.get("secret") else entry.get("value"),
         "is_secret": bool(entry.get("secret"))}
        for name, section in sorted(sections.items(), key=lambda kv: (kv[1].get("position", 0), kv[0]))
        for key, entry in sorted(section.get("entries", {}).items())
    ]
    if as_json:
        render_one(row | {"entries": entries, "origin": origin}, True)
        return
    render_one(row | {"origin": json.dumps(origin) if origin else ""}, False)
    render(entries, ["section", "key", "value", "is_secret"], False, title="entries")


@automation_app.command("delete")
def automation_delete(ref: Annotated[str, typer.Argument(help="ORG/SLUG or id")],
                      yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
                      as_user: AsOpt = None, service: ServiceOpt = False,
                      as_json: JsonOpt = False) -> None:
    """Delete an automation and its config (admins only)."""
    with session(as_user, service) as (cur, _):
        row = resolve_automation(cur, None, ref)
        if not yes:
            typer.confirm(f"Delete automation {row['slug']} and all its config?", abort=True)
        cur.execute("select * from cfg.delete_automation(%s)", (row["id"],))
        deleted = cur.fetchone()
    if as_json:
        render_one(deleted, True)
    else:
        console.print(f"deleted {deleted['slug']}")
