"""`cfgctl template` — an organisation's config templates (admins write, members read):
add, edit, show, list; `apply` merges a newer template version into an automation made
from it, `drift` shows where one differs from its template. Creating an automation from
a template and cloning one are `cfgctl automation create --template` and `automation clone`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, render, render_one, resolve_automation, resolve_org, session

template_app = typer.Typer(help="Config templates with typed placeholders.", no_args_is_help=True)

Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
Slug = Annotated[str, typer.Argument(help="The template's slug")]
Automation = Annotated[str, typer.Argument(help="The automation, ORG/SLUG or id")]
TemplateFile = Annotated[Path, typer.Option("--file", "-f", help="JSON or YAML: {content: {sections: ...}, "
                                                                 "placeholders: [{name, type, default, ...}]}")]
CHANGE_COLUMNS = ["section", "key", "change", "secret"]


def read_template(path: Path) -> dict:
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise CfgError(f"cannot read {path}: {exc}", "PT422") from None
    if not isinstance(data, dict) or not ({"content", "placeholders"} & set(data)):
        raise CfgError(f"{path} must hold an object with content and/or placeholders", "PT422")
    return data


def template_by_slug(cur, org_id, slug: str) -> dict:
    for row in cur.execute("select * from cfg.list_templates(%s)", (org_id,)).fetchall():
        if row["slug"] == slug:
            return row
    raise CfgError(f"no template {slug!r}", "PT404")


def parse_values(pairs: list[str] | None) -> dict:
    """--set k=v pairs: v as JSON when it parses (numbers, booleans, quoted text), else text."""
    values = {}
    for pair in pairs or []:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--set takes NAME=VALUE, not {pair!r}")
        try:
            values[name] = json.loads(text)
        except ValueError:
            values[name] = text
    return values


@template_app.command("add")
def template_add(org: Org, slug: Slug, file: TemplateFile,
                 type_: Annotated[str, typer.Option("--type", help="The automation type (slug) it makes")],
                 name: Annotated[str | None, typer.Option("--name", help="A display name (default: the slug)")] = None,
                 description: Annotated[str, typer.Option("--description")] = "",
                 as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Add a template (admins): its content and placeholders from a file."""
    data = read_template(file)
    with session(as_user, service) as (cur, _):
        row = cur.execute("select * from cfg.add_template(%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)", (
            resolve_org(cur, org)["id"], type_, slug, name or slug, json.dumps(data.get("content")),
            json.dumps(data.get("placeholders", [])), description,
        )).fetchone()
    render_one({k: row[k] for k in ("id", "slug", "name", "version")}, as_json)


@template_app.command("edit")
def template_edit(org: Org, slug: Slug, file: TemplateFile,
                  message: Annotated[str, typer.Option("--message", "-m", help="What changed")] = "",
                  expected_version: Annotated[int | None, typer.Option(
                      "--expected-version", help="Fail (exit 5) if the template changed since this version")] = None,
                  as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """A new version of a template (admins): the content and/or placeholders the file gives."""
    data = read_template(file)
    with session(as_user, service) as (cur, _):
        found = template_by_slug(cur, resolve_org(cur, org)["id"], slug)
        row = cur.execute("select * from cfg.edit_template(%s, %s::jsonb, %s::jsonb, %s, %s)", (
            found["id"], json.dumps(data["content"]) if "content" in data else None,
            json.dumps(data["placeholders"]) if "placeholders" in data else None, message, expected_version,
        )).fetchone()
    render_one({k: row[k] for k in ("id", "slug", "name", "version")}, as_json)


@template_app.command("show")
def template_show(org: Org, slug: Slug,
                  version: Annotated[int | None, typer.Option("--version", help="Default: the current one")] = None,
                  as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """A template at a version: its placeholders and content."""
    with session(as_user, service) as (cur, _):
        found = template_by_slug(cur, resolve_org(cur, org)["id"], slug)
        shown = cur.execute("select cfg.get_template(%s, %s) as t", (found["id"], version)).fetchone()["t"]
    if as_json:
        render_one(shown, True)
        return
    render_one({k: shown[k] for k in ("slug", "name", "type", "version", "latest_version", "automations")}, False)
    render(shown["placeholders"], ["name", "type", "required", "default", "options", "description"], False,
           title="placeholders")
    print(json.dumps(shown["content"], indent=2))


@template_app.command("list")
def template_list(org: Org, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The organisation's templates (members)."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_templates(%s)", (resolve_org(cur, org)["id"],)).fetchall()
    render(rows, ["slug", "name", "type", "version", "placeholders", "automations"], as_json)


@template_app.command("drift")
def template_drift(automation: Automation, as_user: AsOpt = None, service: ServiceOpt = False,
                   as_json: JsonOpt = False):
    """Where an automation differs from its template's current version, key by key."""
    with session(as_user, service) as (cur, _):
        found = resolve_automation(cur, None, automation)
        drift = cur.execute("select cfg.template_drift(%s) as d", (found["id"],)).fetchone()["d"]
    if as_json:
        render_one(drift, True)
        return
    print(f"template {drift['template']} v{drift['latest_version']} "
          f"(the automation came from v{drift['template_version']})")
    render(drift["drift"], ["section", "key", "change", "template", "automation"], False)


@template_app.command("apply")
def template_apply(
    automation: Automation,
    version: Annotated[int | None, typer.Option("--version", help="Template version (default: current)")] = None,
    expected_version: Annotated[int | None, typer.Option(
        "--expected-version", help="Fail (exit 5) if the automation was saved since this version")] = None,
    write: Annotated[bool, typer.Option("--write", help="Save the merge (default: a dry run)")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Merge a newer template version into an automation made from it (editors). A dry
    run unless --write; conflicts exit 5 with each key's base, theirs and mine."""
    with session(as_user, service) as (cur, _):
        found = resolve_automation(cur, None, automation)
        result = cur.execute("select cfg.apply_template(%s, %s, %s, %s) as r",
                             (found["id"], version, expected_version, not write)).fetchone()["r"]
    if as_json:
        render_one(result, True)
    else:
        saved = f", saved as version {result['version']}" if not result["dry_run"] else " (dry run)"
        print(f"template {result['template']} v{result['from_template_version']} -> v{result['template_version']}"
              f"{saved}")
        render(result["changes"], CHANGE_COLUMNS, False, title="changes")
        if result["conflicts"]:
            render(result["conflicts"], ["section", "key", "base", "theirs", "mine"], False, title="conflicts")
    if result["conflicts"]:
        raise typer.Exit(5)
