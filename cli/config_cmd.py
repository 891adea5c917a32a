"""`cfgctl config` — an automation's config as versions: show, set, edit, history, diff, rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, console, render, render_one, resolve_automation, session, to_json

config_app = typer.Typer(help="Config versions: show, set, edit, history, diff, rollback, validate.",
                         no_args_is_help=True)

Ref = Annotated[str, typer.Argument(help="ORG/SLUG or the automation's id")]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="What changed and why.")]
ExpectedOpt = Annotated[
    int | None,
    typer.Option("--expected", help="The version your edit started from (default: the one just read)."),
]
MASK = "********"


def _value_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def version_number(cur, automation: dict, token: str) -> int:
    """A version by number, or the version an environment runs (by its slug)."""
    if token.isdigit():
        return int(token)
    cur.execute("select * from cfg.deployment_status(%s, %s)", (automation["org_id"], automation["id"]))
    status = cur.fetchone()
    running = {e["environment"]: e["version"] for e in (status["environments"] if status else [])}
    if running.get(token) is None:
        raise CfgError(f"{token!r} is neither a version number nor an environment running a version", "PT404")
    return running[token]


def version_id(cur, automation: dict, number: int):
    """The uuid of a version by its number: the newest version before number + 1."""
    cur.execute("select * from cfg.config_history(%s, 1, %s)", (automation["id"], number + 1))
    row = cur.fetchone()
    if row is None or row["version"] != number:
        raise CfgError(f"version {number} of {automation['slug']} does not exist", "PT404")
    return row["id"]


def get_config(cur, automation_id, version: int | None = None) -> dict:
    cur.execute("select cfg.get_config(%s, %s) as c", (automation_id, version))
    return cur.fetchone()["c"]


def document(got: dict) -> dict:
    """What `show --json/--yaml` prints and `edit --file` reads back."""
    return {"version": got["version"], "sections": got["content"]["sections"]}


def entry_rows(sections: dict) -> list[dict]:
    rows = []
    for name, section in sorted(sections.items(), key=lambda kv: (kv[1].get("position", 0), kv[0])):
        for key, entry in sorted(section.get("entries", {}).items()):
            secret = bool(entry.get("secret"))
            rows.append({
                "section": name, "key": key, "secret": secret,
                "value": MASK if secret else _value_text(entry.get("value")),
                "description": entry.get("description", ""),
            })
    return rows


@config_app.command("show")
def config_show(
    ref: Ref,
    version: Annotated[int | None, typer.Option("--version", help="A past version (default: the current one).")] = None,
    env: Annotated[str | None, typer.Option("--env", help="The version this environment runs.")] = None,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="Print YAML that `config edit --file` reads.")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """The config of an automation; secret values are never shown."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        if env is not None:
            version = version_number(cur, automation, env)
        got = get_config(cur, automation["id"], version)
    doc = document(got)
    if as_json:
        print(to_json(doc))
    elif as_yaml:
        print(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), end="")
    else:
        console.print(f"[bold]{escape(automation['slug'])}[/bold] version {got['version']}")
        render(entry_rows(doc["sections"]), ["section", "key", "value", "secret", "description"], False)


def parse_value(text: str) -> object:
    """JSON when it parses (8080, true, {"a": 1}, "quoted"), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _report_save(result: dict, as_json: bool) -> None:
    if as_json:
        print(to_json(result))
    elif result["created"]:
        console.print(f"saved version {result['version']} (parent {result['parent_version']})")
    else:
        console.print(f"no change: version {result['version']} already has this content")


@config_app.command("set")
def config_set(
    ref: Ref,
    assignments: Annotated[list[str], typer.Argument(help="SECTION.KEY=VALUE (VALUE is JSON, or else text)")],
    section: Annotated[str | None, typer.Option("--section", help="Section for KEY=VALUE assignments.")] = None,
    secret: Annotated[bool, typer.Option("--secret", help="Store the values as secrets.")] = False,
    unset: Annotated[bool, typer.Option("--unset", help="Remove the keys instead (SECTION.KEY, no value).")] = False,
    message: MessageOpt = "", expected: ExpectedOpt = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Change some keys and save a new version (editors): cfg.patch_config."""
    set_: dict = {}
    unset_: dict = {}
    for item in assignments:
        target, has_value, raw = item.partition("=")
        if bool(has_value) == unset:
            raise CfgError(
                f"{item!r}: write SECTION.KEY=VALUE" + (" (or use --unset SECTION.KEY)" if not unset else
                                                       "; --unset takes SECTION.KEY without a value"),
                "PT422",
            )
        if section is not None:
            name, key = section, target
        else:
            name, dot, key = target.partition(".")
            if not dot:
                raise CfgError(f"{item!r}: name the section as SECTION.KEY or pass --section", "PT422")
        if unset:
            unset_.setdefault(name, []).append(key)
        else:
            set_.setdefault(name, {})[key] = {"value": parse_value(raw), "secret": secret}
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute(
            "select cfg.patch_config(%s, %s, %s::jsonb, %s::jsonb, %s) as r",
            (automation["id"], expected, json.dumps(set_), json.dumps(unset_), message or "cfgctl config set"),
        )
        result = cur.fetchone()["r"]
    _report_save(result, as_json)


def read_document(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CfgError(f"cannot read {path}: {exc.strerror}", "PT422") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CfgError(f"{path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}",
                       "PT422") from exc
    if not isinstance(data, dict):
        raise CfgError(f"{path} must hold an object with \"sections\" (see `cfgctl config show --yaml`)", "PT422")
    return data


@config_app.command("edit")
def config_edit(
    ref: Ref,
    file: Annotated[Path, typer.Option("--file", "-f", help="JSON or YAML, as `config show --json/--yaml` prints.")],
    message: MessageOpt = "", expected: ExpectedOpt = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Replace the whole config with a file's content and save a version (editors).

    The file's "version" is the version the edit started from: if someone saved
    since, the save fails with a conflict (exit 5) that lists what they changed.
    """
    data = read_document(file)
    base = expected if expected is not None else data.pop("version", None)
    data.pop("version", None)
    if base is None:
        raise CfgError('say which version you edited: "version: N" in the file, or --expected N', "PT422")
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute(
            "select cfg.save_config(%s, %s, %s::jsonb, %s) as r",
            (automation["id"], base, json.dumps(data), message or f"cfgctl config edit {file.name}"),
        )
        result = cur.fetchone()["r"]
    _report_save(result, as_json)


@config_app.command("history")
def config_history(
    ref: Ref,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    before: Annotated[int | None, typer.Option("--before", help="Versions older than this one.")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Versions, newest first, with author, message and time."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        cur.execute("select * from cfg.config_history(%s, %s, %s)", (automation["id"], limit, before))
        rows = cur.fetchall()
    if not as_json:
        for row in rows:
            row["changed"] = _changed_summary(row["changes"])
    render(rows, ["version", "created_at", "author_email", "kind", "restored_from", "changed", "message"], as_json,
           title=None if as_json else f"{automation['slug']} history")


def _changed_summary(changes: list | None, shown: int = 3) -> str:
    """'http.port, +db.pool, -old.key (+2 more)': the keys a version changed, briefly."""
    if changes is None:
        return ""
    marks = {"added": "+", "removed": "-", "changed": ""}
    names = [f"{marks[c['change']]}{c['section']}.{c['key']}" for c in changes]
    more = f" (+{len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _side(change: dict, which: str) -> str:
    entry_key = f"{which}_value"
    if entry_key in change:
        return _value_text(change[entry_key])
    if change["change"] == ("added" if which == "old" else "removed"):
        return ""
    return MASK if change.get("secret") else ""


def render_diff(diff: dict, title_from: str, title_to: str, split: bool) -> None:
    """A code-review style diff: unified (default) or side by side."""
    changes = diff["changes"]
    section_changes = {s["section"]: s for s in diff.get("sections", [])}
    if not changes and not section_changes:
        console.print("[dim]no differences[/dim]")
        return
    if split:
        table = Table(show_lines=False)
        table.add_column("section.key")
        table.add_column(escape(title_from), style="red")
        table.add_column(escape(title_to), style="green")
        for c in changes:
            name = f"{c['section']}.{c['key']}" + (" (secret)" if c.get("secret") else "")
            old, new = _side(c, "old"), _side(c, "new")
            if c.get("secret") and c["change"] == "changed" and "value" in c.get("fields", []):
                old, new = f"{MASK} (changed)", f"{MASK} (changed)"
            table.add_row(escape(name), escape(old), escape(new))
        console.print(table)
    else:
        console.print(f"[bold red]--- {escape(title_from)}[/bold red]")
        console.print(f"[bold green]+++ {escape(title_to)}[/bold green]")
        current = None
        for c in changes:
            if c["section"] != current:
                current = c["section"]
                note = section_changes.get(current, {}).get("change")
                console.print(f"[cyan]@@ {escape(current)} @@[/cyan]" + (f" [dim]({note})[/dim]" if note else ""))
            key = escape(c["key"])
            if c.get("secret"):
                verb = {"added": "+", "removed": "-", "changed": "~"}[c["change"]]
                colour = {"+": "green", "-": "red", "~": "yellow"}[verb]
                fields = ", ".join(c.get("fields", [])) or c["change"]
                console.print(f"[{colour}]{verb} {key}: {MASK} (secret {escape(fields)})[/{colour}]")
                continue
            if "old_value" in c:
                console.print(f"[red]- {key}: {escape(_value_text(c['old_value']))}[/red]")
            if "new_value" in c:
                console.print(f"[green]+ {key}: {escape(_value_text(c['new_value']))}[/green]")
            if c["change"] == "changed" and "old_value" not in c and "new_value" not in c:
                console.print(f"[yellow]~ {key}: {escape(', '.join(c.get('fields', [])))}[/yellow]")
        for name, s in section_changes.items():
            if not any(c["section"] == name for c in changes):
                console.print(f"[cyan]@@ {escape(name)} @@[/cyan] [dim]({s['change']})[/dim]")
    summary = diff["summary"]
    console.print(
        f"[green]{summary['added']} added[/green], [red]{summary['removed']} removed[/red], "
        f"[yellow]{summary['changed']} changed[/yellow]"
    )


@config_app.command("diff")
def config_diff(
    ref: Ref,
    from_version: Annotated[str, typer.Argument(help="Version number, or an environment (dev, prod…)")],
    to_version: Annotated[str, typer.Argument(help="Version number, or an environment")],
    split: Annotated[bool, typer.Option("--split", help="Side by side instead of unified.")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """What changed between two versions; secrets show as changed, never their values."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        a = version_number(cur, automation, from_version)
        b = version_number(cur, automation, to_version)
        cur.execute(
            "select cfg.diff_versions(%s, %s) as d",
            (version_id(cur, automation, a), version_id(cur, automation, b)),
        )
        diff = cur.fetchone()["d"]
    if as_json:
        print(to_json(diff))
        return
    slug = automation["slug"]
    render_diff(diff, f"{slug} v{a}", f"{slug} v{b}", split)


@config_app.command("rollback")
def config_rollback(
    ref: Ref,
    version: Annotated[int, typer.Argument(help="The version whose content comes back.")],
    message: Annotated[str | None, typer.Option("--message", "-m")] = None,
    expected: ExpectedOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Create a new version with the content of VERSION (editors); history stays append-only."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        current = get_config(cur, automation["id"])["version"]
        cur.execute(
            "select cfg.diff_versions(%s, %s) as d",
            (version_id(cur, automation, current), version_id(cur, automation, version)),
        )
        diff = cur.fetchone()["d"]
    if not yes:
        render_diff(diff, f"{automation['slug']} v{current} (current)", f"{automation['slug']} v{version}", False)
        typer.confirm(f"Roll {automation['slug']} back to the content of version {version}?", abort=True)
    with session(as_user, service) as (cur, _):
        cur.execute(
            "select cfg.rollback(%s, %s, %s, %s) as r",
            (automation["id"], version, message, expected if expected is not None else current),
        )
        result = cur.fetchone()["r"]
    if as_json:
        render_one(result, True)
    elif result["created"]:
        console.print(f"rolled back: version {result['version']} has the content of version {version}")
    else:
        console.print(f"no change: the current version {result['version']} already has that content")


@config_app.command("validate")
def config_validate(
    ref: Ref,
    env: Annotated[str | None, typer.Option("--env", help="Only this environment's rules")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Check the latest version against each environment's validation rules; exit 1 on errors."""
    with session(as_user, service) as (cur, _):
        automation = resolve_automation(cur, None, ref)
        report = cur.execute("select cfg.validate_config(%s, %s) as r", (automation["id"], env)).fetchone()["r"]
    if as_json:
        print(to_json(report))
    else:
        render([{"environment": name, "severity": f["severity"], "path": f["path"], "message": f["message"],
                 "rule": f["rule_name"]}
                for name, found in report.items() for f in found["errors"] + found["warnings"]],
               ["environment", "severity", "path", "message", "rule"], False,
               title=", ".join(f"{name}: {found['status']}" for name, found in report.items()))
    if any(found["status"] == "errors" for found in report.values()):
        raise typer.Exit(1)
