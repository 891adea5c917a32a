"""Helpers shared by the versioning and promotion tests (not fixtures: plain functions):
content bodies, saving, reading versions and events, and `refused` (built on act.attempt)."""

from __future__ import annotations

import json

import psycopg

from sync_service.db import Identity, acting_as
from tests.support.act import Outcome, attempt
from tests.support.world import add_member, create_user


def content(sections: dict) -> dict:
    """{"http": {"port": 8080, "api_key": ("secret", "x")}} -> save_config content."""
    out: dict = {"sections": {}}
    for name, entries in sections.items():
        section: dict = {"entries": {}}
        for key, value in entries.items():
            if isinstance(value, tuple) and value and value[0] == "secret":
                section["entries"][key] = {"secret": True, **({"value": value[1]} if len(value) > 1 else {})}
            else:
                section["entries"][key] = {"value": value}
        out["sections"][name] = section
    return out


def rpc(conn: psycopg.Connection, who: Identity, sql: str, params: tuple = ()):
    with acting_as(conn, who) as cur:
        return cur.execute(sql, params).fetchone()


def save(conn, who, automation_id, expected: int, body: dict, message: str = "") -> dict:
    return rpc(
        conn, who, "select cfg.save_config(%s, %s, %s::jsonb, %s) as r",
        (automation_id, expected, json.dumps(body), message),
    )["r"]


def head(conn, automation_id) -> int:
    row = conn.execute(
        "select coalesce(max(version), 0) as v from cfg.config_versions where automation_id = %s",
        (automation_id,),
    ).fetchone()
    conn.commit()
    return row["v"]


def version_id(conn, automation_id, number: int):
    row = conn.execute(
        "select id from cfg.config_versions where automation_id = %s and version = %s",
        (automation_id, number),
    ).fetchone()
    conn.commit()
    return row["id"]


def live(conn, automation_id) -> dict:
    """{section: {key: value-or-('secret', value)}} straight from the tables (and Vault), as superuser."""
    rows = conn.execute(
        """
        select s.name, e.key, e.value, e.is_secret,
            cfg_private.secret_member_value(v.decrypted_secret, es.member)::jsonb as secret_value
        from cfg.config_sections s
        left join cfg.config_entries e on e.section_id = s.id
        left join cfg.entry_secrets es on es.id = e.id
        left join vault.decrypted_secrets v on v.id = es.secret_id
        where s.automation_id = %s
        """,
        (automation_id,),
    ).fetchall()
    conn.commit()
    out: dict = {}
    for r in rows:
        section = out.setdefault(r["name"], {})
        if r["key"] is not None:
            section[r["key"]] = ("secret", r["secret_value"]) if r["is_secret"] else r["value"]
    return out


def events(conn, event_type: str | None = None) -> list[dict]:
    rows = conn.execute(
        "select * from cfg_private.events where %s::text is null or type = %s order by id",
        (event_type, event_type),
    ).fetchall()
    conn.commit()
    return rows


def snapshot_counts(conn) -> dict:
    """Row counts of everything a refused call must leave unchanged."""
    row = conn.execute(
        """
        select (select count(*) from cfg.config_versions) as versions,
               (select count(*) from cfg.config_entries) as entries,
               (select count(*) from cfg.config_sections) as sections,
               (select count(*) from cfg.deployments) as deployments,
               (select count(*) from cfg.deployment_history) as deployment_history,
               (select count(*) from cfg.promotion_requests) as requests,
               (select count(*) from cfg_private.events) as events,
               (select coalesce(jsonb_agg(to_jsonb(e) order by e.id), '[]') from cfg.config_entries e) as entry_rows,
               (select coalesce(jsonb_agg(to_jsonb(d) order by d.id), '[]') from cfg.deployments d) as deployment_rows,
               (select coalesce(jsonb_agg(to_jsonb(r) order by r.id), '[]') from cfg.promotion_requests r)
                   as request_rows
        """
    ).fetchone()
    conn.commit()
    return row


def refused(conn, who, sql, params=(), code: str | None = None) -> Outcome:
    """Runs sql as who, expects a refusal (with code when given) and no change at all."""
    before = snapshot_counts(conn)
    outcome = attempt(conn, who, sql, params)
    assert not outcome.ok, f"accepted: {sql}"
    if code is not None:
        assert outcome.code == code, (outcome.code, outcome.message, outcome.detail)
    assert snapshot_counts(conn) == before
    return outcome


REQUEST_CHANGE = ("select * from cfg.request_environment_change("
                  "(select id from cfg.environments where org_id = %s and slug = %s), %s::jsonb)")


def make_busy(conn, world) -> None:
    """Rows in every versioning and promotion table in both orgs: automation A at version 3
    (dev ahead of staging), a pending prod request in each org (world.pending, world.other_request),
    versions 1 and 2 of A (world.v1, world.v2), a pending pipeline change in org A
    (world.env_change; org A has a second admin, world["admin2"]) and an applied one in org B."""
    a, b = world.automation_a, world.automation_b
    save(conn, world["editor"], a, 1, content({"http": {"port": 9090, "api_key": ("secret",)}}))
    save(conn, world["other_admin"], b, 0, content({"main": {"x": 1}}))
    for automation, who in ((a, world["editor"]), (b, world["other_admin"])):
        rpc(conn, who, "select cfg.promote(%s, 'dev', 'staging', false)", (automation,))
    world.pending = rpc(conn, world["editor"], "select cfg.promote(%s, 'staging', 'prod', false) as r", (a,))["r"][
        "request_id"
    ]
    other = rpc(conn, world["other_admin"], "select cfg.promote(%s, 'staging', 'prod', false) as r", (b,))["r"]
    world.other_request = other["request_id"]
    # dev moves on to version 3, so there is something to promote to staging.
    save(conn, world["editor"], a, 2, content({"http": {"port": 9091, "api_key": ("secret",)}}))
    # Pipeline changes: org A has a second admin, so its request stays pending; org B's
    # only admin moves prod to the free position 5, applied at once.
    world.users["admin2"] = create_user(conn, "admin2@example.test")
    add_member(conn, world["admin"], world.org_a, world["admin2"], "admin")
    off = '{"requires_approval": false}'
    world.env_change = rpc(conn, world["admin"], REQUEST_CHANGE, (world.org_a, "prod", off))["id"]
    moved = rpc(conn, world["other_admin"], REQUEST_CHANGE, (world.org_b, "prod", '{"position": 5}'))
    assert moved["status"] == "applied"
    world.v1, world.v2 = version_id(conn, a, 1), version_id(conn, a, 2)
