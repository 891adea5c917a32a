"""`cfgctl watch ORG[/SLUG]` — an organisation's (or one automation's) changes as they
happen: the messages a dashboard tab receives (docs/realtime.md).

- On a hosted project (`--token` or CFGCTL_ACCESS_TOKEN, with CFGCTL_SUPABASE_URL and
  CFGCTL_SUPABASE_ANON_KEY): through Supabase Realtime with the `realtime` client of
  supabase-py, on the private channel `org:<id>` or `automation:<id>`, joined with the
  user's token (Realtime checks it against the policies on realtime.messages). Give ids:
  no database is at hand to look slugs up.
- Locally: the same messages read from the database with cfg.changes_since, polled."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Annotated

import typer

from sync_service.db import CfgError, acting_as

from .common import (
    AsOpt,
    JsonOpt,
    ServiceOpt,
    console,
    open_connection,
    resolve_automation,
    resolve_identity,
    resolve_org,
)

Target = Annotated[str, typer.Argument(help="ORG or ORG/SLUG (slugs or ids; ids on a hosted project)")]
AfterOpt = Annotated[str | None, typer.Option("--after", help="Start after this cursor (default: from now)")]
CountOpt = Annotated[int | None, typer.Option("--count", help="Stop after this many changes")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Stop after this many seconds")]
IntervalOpt = Annotated[float, typer.Option("--interval", help="Seconds between polls (local)")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="CFGCTL_ACCESS_TOKEN",
                                              help="Your access token (JWT): watch through Supabase Realtime")]


def summary(change: dict) -> str:
    """One line a person reads: what changed, where, by whom."""
    data, kind = change["data"], change["type"]
    if kind.startswith("automation."):
        text = data.get("slug", "")
    elif kind.startswith("config."):
        keys = ", ".join(f"{c['section']}.{c['key']}" for c in data.get("changes") or [])
        text = f"v{data['version']} (from v{data.get('parent_version')}): {keys or 'no key changed'}"
    elif kind == "deployment.moved":
        text = f"{data['environment']} runs v{data['version']} (was v{data.get('previous_version')})"
    elif kind.startswith("promotion."):
        text = f"request {data.get('request_id')} for v{data.get('version')}"
    elif kind == "automations.bulk_updated":
        # No changes (patch, promote, delete): a dashboard reloads those automations.
        text = f"{data['action']} of {len(data['automation_ids'])} automations"
        text += f": {json.dumps(data['changes'])}" if data["changes"] else ""
    else:
        text = f"{data.get('from')} -> {data.get('to')}"
    return f"{change['at'][:19]} {kind:<26} {text} [{change['actor'].get('email') or 'system'}]"


def printer(as_json: bool) -> Callable[[dict], None]:
    # JSON lines: a script reads each change as it comes.
    if as_json:
        return lambda change: print(json.dumps(change), flush=True)
    return lambda change: console.print(summary(change), highlight=False, markup=False)


def follow_local(as_user, service, org_ref: str, slug: str | None, after: str | None, count: int | None,
                 timeout: float | None, interval: float, emit: Callable[[dict], None]) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    with open_connection() as conn:
        identity = resolve_identity(conn, as_user, service)
        with acting_as(conn, identity) as cur:
            org_id = resolve_org(cur, org_ref)["id"]
            automation_id = resolve_automation(cur, org_ref, slug)["id"] if slug else None
        while True:
            with acting_as(conn, identity) as cur:
                page = cur.execute("select cfg.changes_since(%s, %s, %s, %s) as r",
                                   (org_id, after, 100, automation_id)).fetchone()["r"]
            if page["resync"]:
                console.print(f"[yellow]missed changes ({page['reason']}): reload what you show[/yellow]")
            for change in page["changes"]:
                emit(change)
                seen += 1
                if count is not None and seen >= count:
                    return
            after = page["next"]
            if page["more"]:
                continue
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(interval)


async def follow_hosted(url: str, anon_key: str, token: str, org_id: str, automation_id: str | None,
                        count: int | None, timeout: float | None, emit: Callable[[dict], None]) -> None:
    from realtime import AsyncRealtimeClient, RealtimeSubscribeStates  # only needed for hosted projects

    client = AsyncRealtimeClient(f"{url.rstrip('/')}/realtime/v1", anon_key, auto_reconnect=False)
    await client.set_auth(token)
    received: asyncio.Queue = asyncio.Queue()
    config = {"config": {"private": True, "broadcast": {"self": False, "ack": False}, "presence": None}}

    async def join(topic: str, event: str, keep: Callable[[dict], bool]) -> None:
        channel = client.channel(topic, config)
        channel.on_broadcast(event, lambda m: keep(m["payload"]) and received.put_nowait(m["payload"]))
        joined: dict = {}
        await channel.subscribe(lambda status, error: joined.update(status=status, error=error))
        if joined.get("status") != RealtimeSubscribeStates.SUBSCRIBED:
            raise CfgError(f"Realtime refused to join {topic}: {joined.get('error') or joined.get('status')}",
                           "PT403")

    try:
        if automation_id is None:
            await join(f"org:{org_id}", "*", lambda _: True)
        else:
            # A bulk batch is one message on the org's topic only (docs/realtime.md): an
            # automation's tab hears those that name it there.
            await join(f"automation:{automation_id}", "*", lambda _: True)
            await join(f"org:{org_id}", "automations.bulk_updated",
                       lambda payload: automation_id in payload["data"]["automation_ids"])
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        seen = 0
        while count is None or seen < count:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            try:
                change = await asyncio.wait_for(received.get(), left)
            except TimeoutError:
                return
            emit(change)
            seen += 1
    finally:
        await client.close()


def _uuid(text: str, what: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise typer.BadParameter(f"on a hosted project give the {what}'s id, not {text!r}") from None


def watch(target: Target, after: AfterOpt = None, count: CountOpt = None, timeout: TimeoutOpt = None,
          interval: IntervalOpt = 1.0, token: TokenOpt = None, as_user: AsOpt = None, service: ServiceOpt = False,
          as_json: JsonOpt = False) -> None:
    """Print an organisation's (ORG) or one automation's (ORG/SLUG) changes as they happen."""
    org_ref, _, slug = target.partition("/")
    emit = printer(as_json)
    if token:
        url, anon_key = os.environ.get("CFGCTL_SUPABASE_URL"), os.environ.get("CFGCTL_SUPABASE_ANON_KEY")
        if not (url and anon_key):
            raise CfgError("watching through Realtime needs CFGCTL_SUPABASE_URL and CFGCTL_SUPABASE_ANON_KEY")
        asyncio.run(follow_hosted(url, anon_key, token, _uuid(org_ref, "organisation"),
                                  _uuid(slug, "automation") if slug else None, count, timeout, emit))
        return
    try:
        follow_local(as_user, service, org_ref, slug or None, after, count, timeout, interval, emit)
    except KeyboardInterrupt:
        return
