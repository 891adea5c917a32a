"""Supabase Realtime's authorisation checks of a joining client, run the way Realtime runs
them (lib/realtime/tenants/authorization.ex): in a transaction that is rolled back,

- read: insert one probe row per extension (topic, extension) as the connection's own
  role, then set role, realtime.topic, request.jwt.claims, request.jwt.claim.sub and
  .role and request.headers, and select the probe rows back: a row returned means the
  client may receive that extension on the topic;
- write: set the same configuration, then insert (topic, extension) as the client, each
  in a savepoint: success means it may send, insufficient_privilege (42501) that it may not.

And the change log as a test reads it: messages on a topic, changes after a cursor."""

from __future__ import annotations

import json
import uuid

import psycopg
from psycopg import errors

from sync_service.db import Identity

EXTENSIONS = ("broadcast", "presence")


def _set_conn_config(conn: psycopg.Connection, who: Identity, topic: str) -> None:
    claims = who.claims()
    conn.execute(
        "select set_config('role', %s, true), set_config('realtime.topic', %s, true), "
        "set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true), "
        "set_config('request.jwt.claim.role', %s, true), set_config('request.headers', '{}', true)",
        (who.role, topic, json.dumps(claims), claims.get("sub", ""), who.role),
    )


def read_check(conn: psycopg.Connection, who: Identity, topic: str) -> dict[str, bool]:
    """{extension: may receive} for who joining topic."""
    probes = {ext: uuid.uuid4() for ext in EXTENSIONS}
    with conn.transaction(force_rollback=True):
        for ext, probe in probes.items():
            conn.execute("insert into realtime.messages (id, topic, extension) values (%s, %s, %s)",
                         (probe, topic, ext))
        _set_conn_config(conn, who, topic)
        seen = {r["id"] for r in conn.execute("select id from realtime.messages where id = any(%s)",
                                              (list(probes.values()),))}
    return {ext: probe in seen for ext, probe in probes.items()}


def write_check(conn: psycopg.Connection, who: Identity, topic: str) -> dict[str, bool]:
    """{extension: may send (broadcast) or track (presence)} for who joined to topic."""
    allowed = {}
    with conn.transaction(force_rollback=True):
        _set_conn_config(conn, who, topic)
        for ext in EXTENSIONS:
            try:
                with conn.transaction():
                    conn.execute("insert into realtime.messages (topic, extension) values (%s, %s)", (topic, ext))
                allowed[ext] = True
            except errors.InsufficientPrivilege:
                allowed[ext] = False
    return allowed


def messages(conn: psycopg.Connection, topic: str | None = None) -> list[dict]:
    """Broadcasts in realtime.messages (as the superuser), oldest first."""
    rows = conn.execute(
        "select topic, event, payload, private from realtime.messages "
        "where extension = 'broadcast' and (%(t)s::text is null or topic = %(t)s) "
        "order by payload ->> 'cursor', topic",
        {"t": topic},
    ).fetchall()
    conn.commit()
    return rows


def head_cursor(conn: psycopg.Connection, org_id) -> str:
    """The newest cursor of an org's log (or zeros), as the superuser."""
    row = conn.execute(
        "select coalesce(max(message ->> 'cursor'), repeat('0', 16) || '-' || repeat('0', 16)) as c "
        "from cfg_private.changes where org_id = %s", (org_id,),
    ).fetchone()
    conn.commit()
    return row["c"]


def wal_messages(conn: psycopg.Connection, slot: str) -> list[dict]:
    """The rows inserted into realtime.messages since the last call, in the order Realtime
    streams them (commit order, from a wal2json slot), each {topic, event, extension,
    private, payload}."""
    rows = conn.execute(
        "select data from pg_logical_slot_get_changes(%s, null, null, "
        "'format-version', '2', 'add-tables', 'realtime.*')", (slot,),
    ).fetchall()
    conn.commit()
    found = []
    for row in rows:
        change = json.loads(row["data"])
        if change["action"] == "I":
            columns = {c["name"]: c["value"] for c in change["columns"]}
            found.append({k: columns[k] for k in ("topic", "event", "extension", "private")}
                         | {"payload": json.loads(columns["payload"])})
    return found
