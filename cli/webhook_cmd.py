"""`cfgctl webhook …` — endpoints, deliveries, retries, test events, secret rotation."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from sync_service.db import CfgError

from .common import AsOpt, JsonOpt, ServiceOpt, console, render, render_one, resolve_automation, resolve_org, session

webhook_app = typer.Typer(help="Webhook endpoints and their deliveries.", no_args_is_help=True)

ENDPOINT_COLUMNS = ["id", "url", "enabled", "event_types", "description", "disabled_reason"]
DELIVERY_COLUMNS = ["id", "event_type", "status", "attempt_count", "last_status_code", "last_error",
                    "next_attempt_at", "created_at"]
EndpointArg = Annotated[str, typer.Argument(help="Endpoint id")]


@webhook_app.command("add")
def webhook_add(
    org: str, url: str,
    event: Annotated[list[str] | None, typer.Option("--event", help="Event type (repeat); default: all.")] = None,
    environment: Annotated[str | None, typer.Option("--environment", help="Only events of this environment (slug).")]
    = None,
    automation: Annotated[str | None, typer.Option("--automation", help="Only events of this automation (slug).")]
    = None,
    description: Annotated[str, typer.Option("--description")] = "",
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Add an endpoint to ORG (admins). Prints its signing secret: shown this once."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        environment_id = None
        if environment:
            cur.execute("select * from cfg.find_environment(%s, %s)", (org_row["id"], environment))
            environment_id = cur.fetchone()["id"]
        automation_id = resolve_automation(cur, org, automation)["id"] if automation else None
        cur.execute(
            "select cfg.create_webhook_endpoint(%s, %s, %s, %s, %s, %s) as e",
            (org_row["id"], url, description, event or [], environment_id, automation_id),
        )
        created = cur.fetchone()["e"]
    if as_json:
        render_one(created, True)
        return
    render_one({k: created[k] for k in ("id", "url", "event_types", "enabled")}, False)
    console.print(f"signing secret (shown once, store it now): [bold]{created['secret']}[/bold]")


@webhook_app.command("list")
def webhook_list(org: str, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False) -> None:
    """Endpoints of ORG (admins)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.list_webhook_endpoints(%s)", (org_row["id"],))
        rows = cur.fetchall()
    render(rows, ENDPOINT_COLUMNS, as_json)


@webhook_app.command("rm")
def webhook_rm(endpoint: EndpointArg, yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
               as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False) -> None:
    """Delete an endpoint with its queue and log (admins)."""
    if not yes:
        typer.confirm(f"Delete webhook endpoint {endpoint} and its delivery log?", abort=True)
    with session(as_user, service) as (cur, _):
        cur.execute("select * from cfg.delete_webhook_endpoint(%s)", (endpoint,))
        row = cur.fetchone()
    render_one(row, as_json) if as_json else console.print(f"deleted {row['id']}")


def _set_enabled(endpoint: str, enabled: bool, as_user, service, as_json) -> None:
    with session(as_user, service) as (cur, _):
        cur.execute("select * from cfg.set_webhook_endpoint_enabled(%s, %s)", (endpoint, enabled))
        row = cur.fetchone()
    render_one({k: row[k] for k in ENDPOINT_COLUMNS}, as_json)


@webhook_app.command("enable")
def webhook_enable(endpoint: EndpointArg, as_user: AsOpt = None, service: ServiceOpt = False,
                   as_json: JsonOpt = False) -> None:
    """Enable an endpoint (admins)."""
    _set_enabled(endpoint, True, as_user, service, as_json)


@webhook_app.command("disable")
def webhook_disable(endpoint: EndpointArg, as_user: AsOpt = None, service: ServiceOpt = False,
                    as_json: JsonOpt = False) -> None:
    """Disable an endpoint; its pending deliveries are cancelled (admins)."""
    _set_enabled(endpoint, False, as_user, service, as_json)


@webhook_app.command("deliveries")
def webhook_deliveries(
    endpoint: EndpointArg,
    status: Annotated[str | None, typer.Option("--status", help="pending | succeeded | failed | cancelled")] = None,
    since: Annotated[datetime | None, typer.Option("--since")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    attempts: Annotated[int | None, typer.Option("--attempts", help="Show every attempt of this delivery id.")]
    = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Deliveries of an endpoint, newest first; --attempts ID shows one delivery's log."""
    with session(as_user, service) as (cur, _):
        if attempts is not None:
            cur.execute("select * from cfg.webhook_delivery_attempts(%s)", (attempts,))
            render(cur.fetchall(), ["attempt", "created_at", "status_code", "latency_ms", "error",
                                    "response_excerpt", "worker"], as_json)
            return
        cur.execute("select * from cfg.webhook_deliveries(%s, %s, %s, %s)", (endpoint, status, since, limit))
        rows = cur.fetchall()
    render(rows, DELIVERY_COLUMNS, as_json)


@webhook_app.command("retry")
def webhook_retry(
    delivery: Annotated[int | None, typer.Argument(help="Delivery id to send again")] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Retry this endpoint's failed deliveries")]
    = None,
    since: Annotated[datetime | None, typer.Option("--since", help="…created since this time")] = None,
    as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False,
) -> None:
    """Send one delivery again, or every failed delivery of --endpoint since --since."""
    if (delivery is None) == (endpoint is None):
        raise CfgError("give a DELIVERY id, or --endpoint ID --since TIME", "PT422")
    with session(as_user, service) as (cur, _):
        if delivery is not None:
            cur.execute("select * from cfg.retry_webhook_delivery(%s)", (delivery,))
            result = cur.fetchone()
        else:
            cur.execute("select cfg.retry_failed_webhook_deliveries(%s, %s) as n", (endpoint, since))
            result = {"retried": cur.fetchone()["n"]}
    render_one(result, as_json)


@webhook_app.command("test")
def webhook_test(endpoint: EndpointArg,
                 payload: Annotated[str | None, typer.Option("--payload", help="JSON object to send")] = None,
                 as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False) -> None:
    """Send a webhook.test event to one endpoint (admins)."""
    try:
        data = json.loads(payload) if payload else None
    except ValueError as exc:
        raise CfgError(f"--payload is not valid JSON: {exc}", "PT422") from exc
    if data is not None and not isinstance(data, dict):
        raise CfgError("--payload must be a JSON object", "PT422")
    with session(as_user, service) as (cur, _):
        cur.execute("select cfg.send_test_webhook(%s, %s) as id",
                    (endpoint, json.dumps(data) if data is not None else None))
        delivery_id = cur.fetchone()["id"]
    render_one({"delivery_id": delivery_id}, as_json)


@webhook_app.command("rotate-secret")
def webhook_rotate(endpoint: EndpointArg, as_user: AsOpt = None, service: ServiceOpt = False,
                   as_json: JsonOpt = False) -> None:
    """New signing secret (shown once); the previous one stays valid for 24 h (admins)."""
    with session(as_user, service) as (cur, _):
        cur.execute("select cfg.rotate_webhook_secret(%s) as r", (endpoint,))
        result = cur.fetchone()["r"]
    render_one(result, as_json)


@webhook_app.command("event-types")
def webhook_event_types(as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False) -> None:
    """Event types an endpoint can subscribe to."""
    with session(as_user, service) as (cur, _):
        cur.execute("select * from cfg.webhook_event_types()")
        rows = cur.fetchall()
    render(rows, ["type", "description"], as_json)


HOST_COLUMNS = ["host", "created_at", "id"]
HostArg = Annotated[str, typer.Argument(help="A host name, an IP address or a CIDR network, e.g. 10.0.0.0/24")]


@webhook_app.command("allow-host")
def webhook_allow_host(org: str, host: HostArg, as_user: AsOpt = None, service: ServiceOpt = False,
                       as_json: JsonOpt = False) -> None:
    """Let ORG send to HOST although private or plain http (operator: --service)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.allow_webhook_host(%s, %s)", (org_row["id"], host))
        row = cur.fetchone()
    render_one(row, as_json)


@webhook_app.command("disallow-host")
def webhook_disallow_host(org: str, host: HostArg, as_user: AsOpt = None, service: ServiceOpt = False,
                          as_json: JsonOpt = False) -> None:
    """Take HOST off ORG's allowlist (operator: --service)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.disallow_webhook_host(%s, %s)", (org_row["id"], host))
        row = cur.fetchone()
    render_one(row, as_json) if as_json else console.print(f"{row['host']} is no longer allowed")


@webhook_app.command("allowed-hosts")
def webhook_allowed_hosts(org: str, as_user: AsOpt = None, service: ServiceOpt = False,
                          as_json: JsonOpt = False) -> None:
    """ORG's webhook host allowlist (admins)."""
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        cur.execute("select * from cfg.list_webhook_allowed_hosts(%s)", (org_row["id"],))
        rows = cur.fetchall()
    render(rows, HOST_COLUMNS, as_json)
