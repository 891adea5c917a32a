"""`cfgctl vault backend` — an organisation's external vaults (AWS Secrets Manager,
HashiCorp Vault KV v2). Admins. Credentials are read from a file or stdin (never from
the command line, which other users of the machine can see) and go straight to Vault.
The sync service (`cfgctl serve`) makes every call to the backend."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, render, render_one, resolve_org, session

vault_app = typer.Typer(help="External vaults: AWS Secrets Manager, HashiCorp Vault.", no_args_is_help=True)
backend_app = typer.Typer(help="An organisation's vault backends (admins).", no_args_is_help=True)
vault_app.add_typer(backend_app, name="backend")

Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
Name = Annotated[str, typer.Argument(help="The backend's name in the organisation")]
WaitOpt = Annotated[float, typer.Option("--wait", help="Seconds to wait for the sync service's answer (0: don't).")]
COLUMNS = ["name", "kind", "config", "tested_at", "test_result"]


def wait_for(check, seconds: float, what: str):
    """check() until it returns something, for up to `seconds` (the sync service answers)."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() >= deadline:
            if not found and seconds > 0:
                print(f"no answer from the sync service within {seconds:g} s ({what}): is `cfgctl serve` running?",
                      file=sys.stderr)
            return found
        time.sleep(0.2)


def backend_by_name(cur, org_id, name: str) -> dict:
    for row in cur.execute("select * from cfg.list_vault_backends(%s)", (org_id,)).fetchall():
        if row["name"] == name:
            return row
    raise CfgError(f"no vault backend named {name!r}", "PT404")


def _shown(row: dict) -> dict:
    return {k: row[k] for k in COLUMNS}


@backend_app.command("add")
def backend_add(
    org: Org, name: Name,
    kind: Annotated[str, typer.Option("--kind", help="aws_sm or hashicorp")],
    credentials_file: Annotated[str, typer.Option(
        "--credentials-file", help="JSON credentials, '-' for stdin. aws_sm: access_key_id, secret_access_key "
        "[, session_token]; hashicorp: token, or role_id and secret_id with --auth approle.")],
    region: Annotated[str | None, typer.Option("--region", help="aws_sm: the AWS region.")] = None,
    endpoint_url: Annotated[str | None, typer.Option("--endpoint-url", help="aws_sm: another endpoint.")] = None,
    address: Annotated[str | None, typer.Option("--address", help="hashicorp: https://vault.example:8200")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="hashicorp: the namespace.")] = None,
    auth: Annotated[str | None, typer.Option("--auth", help="hashicorp: token (default) or approle.")] = None,
    wait: WaitOpt = 10.0,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
):
    """Add a backend; the sync service tests its credentials at once."""
    text = sys.stdin.read() if credentials_file == "-" else Path(credentials_file).read_text()
    try:
        credentials = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CfgError(f"the credentials are not JSON ({exc.msg}, line {exc.lineno})", "PT422") from None
    config = {k: v for k, v in {"region": region, "endpoint_url": endpoint_url, "address": address,
                                "namespace": namespace, "auth": auth}.items() if v is not None}
    with session(as_user, service) as (cur, _):
        org_id = resolve_org(cur, org)["id"]
        row = cur.execute("select * from cfg.add_vault_backend(%s, %s, %s, %s::jsonb, %s::jsonb)",
                          (org_id, name, kind, json.dumps(config), json.dumps(credentials))).fetchone()
    render_one(_shown(_tested(row, org_id, wait, as_user, service)), as_json)


def _tested(row: dict, org_id, wait: float, as_user, service) -> dict:
    def answered():
        with session(as_user, service) as (cur, _):
            now = backend_by_name(cur, org_id, row["name"])
        return now if now["tested_at"] and now["tested_at"] >= now["test_requested_at"] else None
    return wait_for(answered, wait, "backend test") or row


@backend_app.command("list")
def backend_list(org: Org, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The organisation's backends and their last test (credentials are never shown)."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_vault_backends(%s)", (resolve_org(cur, org)["id"],)).fetchall()
    render([_shown(r) for r in rows], COLUMNS, as_json)


@backend_app.command("test")
def backend_test(org: Org, name: Name, wait: WaitOpt = 10.0,
                 as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Ask the sync service to test the backend's credentials; exit 1 if they fail."""
    with session(as_user, service) as (cur, _):
        org_id = resolve_org(cur, org)["id"]
        backend = backend_by_name(cur, org_id, name)
        row = cur.execute("select * from cfg.test_vault_backend(%s)", (backend["id"],)).fetchone()
    row = _tested(row, org_id, wait, as_user, service)
    render_one(_shown(row), as_json)
    if row["test_result"] is None or not row["test_result"].get("ok"):
        raise typer.Exit(1)


@backend_app.command("rm")
def backend_rm(org: Org, name: Name, as_user: AsOpt = None, service: ServiceOpt = False):
    """Remove a backend no binding uses, and its credentials."""
    with session(as_user, service) as (cur, _):
        backend = backend_by_name(cur, resolve_org(cur, org)["id"], name)
        cur.execute("select cfg.remove_vault_backend(%s)", (backend["id"],))
    print(f"removed vault backend {name}")
