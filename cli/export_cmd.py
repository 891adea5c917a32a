"""`cfgctl export` and `cfgctl import`: an org's automations as one JSON document (a
bundle: a file, stdout, or storage://BUCKET/PATH on a hosted project) and back, through
cfg.export_automations and cfg.import_automations. Secret values travel only when asked
(--include-secrets), and then only age-encrypted with a passphrase (sync_service/bundles.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from sync_service.bundles import decrypt, encrypt, is_encrypted, read_bundle, read_passphrase, write_bundle
from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, console, render, resolve_org, selection_from_options, session, to_json

Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
PassphraseFile = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="A file whose first line is the passphrase of an encrypted bundle")]
ACTIONS = ("create", "update", "unchanged", "skipped", "refused")


def document_text(document: dict) -> str:
    """The bundle's text: the same document gives the same bytes."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def export(
    org: Org,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="type=T, tag=T (repeatable), tags_match=any|all, status=S, env=E, text=X")] = None,
    ids: Annotated[list[str] | None, typer.Option("--ids", help="Automation ids (repeatable or comma-separated)")]
    = None,
    env: Annotated[str | None, typer.Option("--env", help="Export the version deployed to this environment")] = None,
    version: Annotated[int | None, typer.Option("--version", help="Export this version number of each")] = None,
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Include secret values (who may reveal them; audited): needs --passphrase-file "
                                  "and -o, the bundle is age-encrypted")] = False,
    passphrase_file: PassphraseFile = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", "--to", help="A file, or storage://BUCKET/PATH on a hosted project (default: stdout)")]
    = None,
    as_user: AsOpt = None, service: ServiceOpt = False,
):
    """Export automations as one deterministic JSON document (secrets masked)."""
    selection = selection_from_options(where, ids)
    if include_secrets and (passphrase_file is None or output is None):
        raise typer.BadParameter("--include-secrets writes an encrypted bundle: give --passphrase-file and -o")
    passphrase = read_passphrase(passphrase_file) if include_secrets else None
    with session(as_user, service) as (cur, _):
        document = cur.execute("select cfg.export_automations(%s, %s::jsonb, %s, %s, %s) as d", (
            resolve_org(cur, org)["id"], json.dumps(selection), env, version, include_secrets,
        )).fetchone()["d"]
    data = document_text(document).encode()
    if passphrase is not None:
        data = encrypt(data, passphrase)
    if output is None:
        sys.stdout.write(data.decode())
        return
    where_to = write_bundle(output, data, "application/octet-stream" if passphrase else "application/json")
    console.print(f"exported {len(document['automations'])} automation(s) to {where_to}"
                  + (" (encrypted)" if passphrase else ""), highlight=False)
    for missing in document["left_out"]:
        console.print(f"left out {missing.get('slug') or missing.get('id')}: {missing['reason']}", highlight=False)


def _detail(item: dict) -> str:
    if item["action"] == "refused":
        return "; ".join(f"{e['path']}: {e['message']}" if e["path"] else e["message"] for e in item["errors"])
    parts = []
    if item.get("fields"):
        parts.append("fields " + ", ".join(item["fields"]))
    if item.get("diff"):
        summary = item["diff"]["summary"]
        parts.append(", ".join(f"{summary[k]} {k}" for k in ("added", "changed", "removed") if summary[k]))
    if item.get("secrets_needing_value"):
        parts.append("secrets needing a value: " + ", ".join(
            f"{s['section']}.{s['key']}" for s in item["secrets_needing_value"]))
    return "; ".join(p for p in parts if p)


def import_(
    org: Org,
    source: Annotated[str, typer.Argument(help="The bundle: a file, or storage://BUCKET/PATH on a hosted project")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen; change nothing")] = False,
    on_conflict: Annotated[str, typer.Option(
        "--on-conflict", help="An automation that would change: fail (if changed since the version known), "
                              "skip or overwrite")] = "fail",
    message: Annotated[str | None, typer.Option("--message", "-m", help="The message of the versions written")]
    = None,
    base_version: Annotated[list[str] | None, typer.Option(
        "--base-version", help="SLUG=N: fail unless SLUG is still at version N (repeatable)")] = None,
    passphrase_file: PassphraseFile = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Import a bundle into an org: each automation created, updated, unchanged, skipped or refused."""
    if on_conflict not in ("fail", "skip", "overwrite"):
        raise typer.BadParameter("--on-conflict is fail, skip or overwrite")
    base_versions = {}
    for pair in base_version or []:
        slug, sep, number = pair.partition("=")
        if not sep or not number.isdigit():
            raise typer.BadParameter(f"--base-version takes SLUG=N, not {pair!r}")
        base_versions[slug] = int(number)
    data = read_bundle(source)
    if is_encrypted(data):
        data = decrypt(data, read_passphrase(passphrase_file) if passphrase_file else None)
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise CfgError(f"{source} is not a JSON export document: {exc}", "PT422") from None
    with session(as_user, service) as (cur, _):
        result = cur.execute("select cfg.import_automations(%s, %s::jsonb, %s, %s, %s, %s::jsonb) as r", (
            resolve_org(cur, org)["id"], json.dumps(document), dry_run, on_conflict, message,
            json.dumps(base_versions) if base_versions else None,
        )).fetchone()["r"]
    if as_json:
        print(to_json(result))
    else:
        render([{**item, "detail": _detail(item)} for item in result["items"]], ["slug", "action", "version", "detail"],
               False, title="dry run: nothing changed" if result["dry_run"] else None)
        console.print(", ".join(f"{result['summary'][a]} {a}" for a in ACTIONS), highlight=False)
    if result["summary"]["refused"]:
        raise typer.Exit(1)
