"""`cfgctl type` and `cfgctl rule` — an organisation's automation types and the validation
rules of each (admins write, members read); `cfgctl config validate` is in config_cmd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, render, render_one, resolve_org, session

type_app = typer.Typer(help="Automation types of an organisation.", no_args_is_help=True)
rule_app = typer.Typer(help="Validation rules per automation type (JSON Schema).", no_args_is_help=True)

Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
TypeSlug = Annotated[str, typer.Argument(help="The automation type (slug)")]
RuleName = Annotated[str, typer.Argument(help="The rule's name within its type")]
RuleFile = Annotated[Path, typer.Option("--file", "-f", help="The rule as JSON or YAML: name, scope, section, key, "
                                                           "required, schema, severity, environments, description")]
RULE_COLUMNS = ["type", "name", "scope", "section", "key", "required", "severity", "environments", "enabled",
                "version"]


def read_rule(path: Path) -> dict:
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise CfgError(f"cannot read {path}: {exc}", "PT422") from None
    if not isinstance(data, dict):
        raise CfgError(f"{path} must hold one rule (an object)", "PT422")
    return data


def type_by_slug(cur, org_id, slug: str) -> dict:
    for row in cur.execute("select * from cfg.list_automation_types(%s)", (org_id,)).fetchall():
        if row["slug"] == slug:
            return row
    raise CfgError(f"no automation type {slug!r}", "PT404")


def rule_by_name(cur, org_id, type_slug: str, name: str) -> dict:
    for row in cur.execute("select * from cfg.list_validation_rules(%s)", (org_id,)).fetchall():
        if (row["type"], row["name"]) == (type_slug, name):
            return row
    raise CfgError(f"no rule {name!r} for type {type_slug!r}", "PT404")


@type_app.command("add")
def type_add(org: Org, slug: TypeSlug, name: Annotated[str, typer.Option("--name", help="A display name")],
             description: Annotated[str, typer.Option("--description")] = "",
             as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Add an automation type (admins)."""
    with session(as_user, service) as (cur, _):
        row = cur.execute("select * from cfg.add_automation_type(%s, %s, %s, %s)",
                          (resolve_org(cur, org)["id"], slug, name, description)).fetchone()
    render_one(row, as_json)


@type_app.command("list")
def type_list(org: Org, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The organisation's types, with how many automations and rules each has."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_automation_types(%s)", (resolve_org(cur, org)["id"],)).fetchall()
    render(rows, ["slug", "name", "automations", "rules", "description"], as_json)


@type_app.command("rm")
def type_rm(org: Org, slug: TypeSlug, as_user: AsOpt = None, service: ServiceOpt = False):
    """Remove a type no automation has, with its rules (admins)."""
    with session(as_user, service) as (cur, _):
        found = type_by_slug(cur, resolve_org(cur, org)["id"], slug)
        cur.execute("select cfg.remove_automation_type(%s)", (found["id"],))
    print(f"removed automation type {slug}")


@rule_app.command("add")
def rule_add(org: Org, type_slug: TypeSlug, file: RuleFile,
             as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Add a rule to a type (admins); what runs now is checked against it at once."""
    definition = read_rule(file)
    with session(as_user, service) as (cur, _):
        found = type_by_slug(cur, resolve_org(cur, org)["id"], type_slug)
        row = cur.execute("select * from cfg.add_validation_rule(%s, %s::jsonb)",
                          (found["id"], json.dumps(definition))).fetchone()
    render_one({k: row[k] for k in ("name", "scope", "section", "key", "severity", "version")}, as_json)


@rule_app.command("edit")
def rule_edit(org: Org, type_slug: TypeSlug, name: RuleName, file: RuleFile,
              as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Change a rule with the fields the file gives (admins): a new version of it."""
    changes = read_rule(file)
    with session(as_user, service) as (cur, _):
        found = rule_by_name(cur, resolve_org(cur, org)["id"], type_slug, name)
        row = cur.execute("select * from cfg.edit_validation_rule(%s, %s::jsonb)",
                          (found["id"], json.dumps(changes))).fetchone()
    render_one({k: row[k] for k in ("name", "scope", "section", "key", "severity", "version")}, as_json)


@rule_app.command("test")
def rule_test(org: Org, type_slug: TypeSlug, file: RuleFile,
              rule: Annotated[str | None, typer.Option("--rule", help="Test as a change of this rule")] = None,
              as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """A dry run: which automations and environments would fail (or warn), saving nothing.
    Exit 1 when any would fail."""
    definition = read_rule(file)
    with session(as_user, service) as (cur, _):
        org_id = resolve_org(cur, org)["id"]
        found = type_by_slug(cur, org_id, type_slug)
        rule_id = rule_by_name(cur, org_id, type_slug, rule)["id"] if rule else None
        rows = cur.execute("select * from cfg.test_validation_rule(%s, %s::jsonb, %s)",
                           (found["id"], json.dumps(definition), rule_id)).fetchall()
    render(rows, ["automation", "environment", "version", "severity", "path", "message"], as_json)
    if any(r["severity"] == "error" for r in rows):
        raise typer.Exit(1)


@rule_app.command("list")
def rule_list(org: Org, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The organisation's rules (members)."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_validation_rules(%s)", (resolve_org(cur, org)["id"],)).fetchall()
    render(rows, RULE_COLUMNS, as_json)


@rule_app.command("rm")
def rule_rm(org: Org, type_slug: TypeSlug, name: RuleName, as_user: AsOpt = None, service: ServiceOpt = False):
    """Delete a rule (admins)."""
    with session(as_user, service) as (cur, _):
        found = rule_by_name(cur, resolve_org(cur, org)["id"], type_slug, name)
        cur.execute("select cfg.remove_validation_rule(%s)", (found["id"],))
    print(f"removed rule {name}")
