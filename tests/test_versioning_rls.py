"""RLS and privilege matrix for the versioning tables and RPCs: anon, viewer, editor,
admin, another org's admin and the service role, for select/insert/update/delete and
each RPC. Every call runs in its own transaction and is rolled back, so the cells of
one matrix share a world without seeing each other's effects."""

from __future__ import annotations

import json

import psycopg
import pytest
from conftest import add_member, create_user
from psycopg.types.json import Jsonb
from versioning_helpers import content, rpc, save, version_id

from sync_service.db import act_as

IDENTITIES = ("anon", "viewer", "editor", "admin", "other_admin", "service")
TABLES = ("config_versions", "deployments", "deployment_history", "promotion_requests",
          "environment_change_requests")
# Every RPC this module's matrices exercise (tests/test_rls_matrix.py checks coverage).
RPCS = ("save_config", "patch_config", "rollback", "merge_config", "promote", "diff_versions",
        "config_history",
        "get_config", "deployment_status", "list_promotion_requests", "approve_promotion", "reject_promotion",
        "apply_promotion",
        "request_environment_change", "approve_environment_change", "reject_environment_change")


def outcome(conn, who, sql, params=()) -> str:
    """'ok' or the SQLSTATE of the refusal; the transaction is always rolled back."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            act_as(cur, who)
            cur.execute(sql, params)
            if cur.description:
                cur.fetchall()
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        return exc.sqlstate
    return "ok"


def visible(conn, who, table) -> str | set:
    try:
        with conn.transaction(), conn.cursor() as cur:
            act_as(cur, who)
            rows = cur.execute(f"select org_id from cfg.{table}").fetchall()  # noqa: S608
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        return exc.sqlstate
    return {r["org_id"] for r in rows}


@pytest.fixture
def busy(conn, world):
    """Rows in every table in both orgs and a pending prod request in each."""
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
    return world


REQUEST_CHANGE = ("select * from cfg.request_environment_change("
                  "(select id from cfg.environments where org_id = %s and slug = %s), %s::jsonb)")


def test_tables_are_readable_by_members_of_their_org_only(conn, busy):
    world = busy
    for table in TABLES:
        assert visible(conn, world["anon"], table) == "42501", table
        for name in ("viewer", "editor", "admin"):
            assert visible(conn, world[name], table) == {world.org_a}, (table, name)
        assert visible(conn, world["other_admin"], table) == {world.org_b}, table
        assert visible(conn, world["outsider"], table) == set(), table
        assert visible(conn, world["service"], table) == {world.org_a, world.org_b}, table


@pytest.mark.parametrize("table", TABLES)
def test_nobody_writes_the_tables_directly(conn, busy, table):
    world = busy
    row = conn.execute(f"select * from cfg.{table} where org_id = %s limit 1", (world.org_a,)).fetchone()  # noqa: S608
    conn.commit()
    columns = [c for c in row if c not in ("id", "created_at", "updated_at")]
    insert = (
        f"insert into cfg.{table} ({', '.join(columns)}) "  # noqa: S608
        f"values ({', '.join(['%s'] * len(columns))})"
    )
    values = tuple(Jsonb(row[c]) if isinstance(row[c], dict | list) else row[c] for c in columns)
    for name in IDENTITIES:
        assert outcome(conn, world[name], insert, values) == "42501", (table, name, "insert")
        assert outcome(conn, world[name], f"update cfg.{table} set updated_at = now()") == "42501", (table, name)  # noqa: S608
        assert outcome(conn, world[name], f"delete from cfg.{table}") == "42501", (table, name)  # noqa: S608


def test_version_secrets_and_digest_key_are_out_of_reach(conn, busy):
    for name in IDENTITIES:
        for sql in ("select * from cfg_private.version_secrets", "select * from cfg_private.digest_keys",
                    "select * from cfg_private.transaction_marks",
                    "insert into cfg_private.transaction_marks (mark) values ('versioned_write')",
                    "select cfg_private.secret_token(gen_random_uuid(), '\"guess\"')"):
            assert outcome(conn, busy[name], sql) == "42501", (name, sql)


def _matrix(conn, world, sql, params, expected: dict):
    got = {name: outcome(conn, world[name], sql, params) for name in IDENTITIES}
    assert got == expected


def test_rpc_matrix_writes(conn, busy):
    world, a = busy, busy.automation_a
    body = json.dumps(content({"http": {"port": 1, "api_key": ("secret",)}}))
    editors = {"anon": "42501", "viewer": "PT403", "editor": "ok", "admin": "ok", "other_admin": "PT404",
               "service": "ok"}
    _matrix(conn, world, "select cfg.save_config(%s, 3, %s::jsonb)", (a, body), editors)
    _matrix(conn, world, "select cfg.patch_config(%s, 3, '{\"http\": {\"port\": {\"value\": 2}}}')", (a,), editors)
    _matrix(conn, world, "select cfg.rollback(%s, 1)", (a,), editors)
    v1, v2 = version_id(conn, a, 1), version_id(conn, a, 2)
    _matrix(conn, world, "select cfg.merge_config(%s, %s, %s::jsonb)", (v1, v2, body), editors)
    _matrix(conn, world, "select cfg.promote(%s, 'dev', 'staging')", (a,), editors)
    _matrix(conn, world, "select cfg.promote(%s, 'dev', 'staging', false)", (a,), editors)


def test_rpc_matrix_reads(conn, busy):
    world, a = busy, busy.automation_a
    members = {"anon": "42501", "viewer": "ok", "editor": "ok", "admin": "ok", "other_admin": "PT404",
               "service": "ok"}
    v1, v2 = version_id(conn, a, 1), version_id(conn, a, 2)
    _matrix(conn, world, "select cfg.diff_versions(%s, %s)", (v1, v2), members)
    _matrix(conn, world, "select * from cfg.config_history(%s)", (a,), members)
    _matrix(conn, world, "select cfg.get_config(%s)", (a,), members)
    _matrix(conn, world, "select * from cfg.deployment_status(%s)", (world.org_a,), members)
    _matrix(conn, world, "select * from cfg.list_promotion_requests(%s, null)", (world.org_a,), members)


def test_rpc_matrix_approvals(conn, busy):
    world = busy
    admins = {"anon": "42501", "viewer": "PT403", "editor": "PT403", "admin": "ok", "other_admin": "PT404",
              "service": "ok"}
    _matrix(conn, world, "select cfg.approve_promotion(%s)", (world.pending,), admins)
    _matrix(conn, world, "select cfg.reject_promotion(%s, 'no')", (world.pending,), admins)
    rpc(conn, world["admin"], "select cfg.approve_promotion(%s, null, false)", (world.pending,))
    _matrix(conn, world, "select cfg.apply_promotion(%s)", (world.pending,), {
        "anon": "42501", "viewer": "PT403", "editor": "ok", "admin": "ok", "other_admin": "PT404", "service": "ok",
    })
    # The other org's admin requested theirs: they cannot approve it themselves, org A's admin cannot see it.
    assert outcome(conn, world["other_admin"], "select cfg.approve_promotion(%s)", (world.other_request,)) == "PT403"
    assert outcome(conn, world["admin"], "select cfg.approve_promotion(%s)", (world.other_request,)) == "PT404"
    assert outcome(conn, world["service"], "select cfg.approve_promotion(%s)", (world.other_request,)) == "ok"


def test_rpc_matrix_environment_changes(conn, busy):
    world = busy
    admins = {"anon": "42501", "viewer": "PT403", "editor": "PT403", "admin": "ok", "other_admin": "PT404",
              "service": "ok"}
    _matrix(conn, world, REQUEST_CHANGE, (world.org_a, "dev", '{"position": 7}'), admins)
    _matrix(conn, world, "select cfg.reject_environment_change(%s, 'no')", (world.env_change,), admins)
    # Two-person rule: the requester (admin) cannot approve; another admin or the service key can.
    _matrix(conn, world, "select cfg.approve_environment_change(%s)", (world.env_change,),
            {**admins, "admin": "PT403"})
    assert outcome(conn, world["admin2"], "select cfg.approve_environment_change(%s)", (world.env_change,)) == "ok"


def test_foundation_section_and_entry_writes_stay_open_to_editors(conn, busy):
    """Direct writes are versioned, not refused: the foundation's policies are unchanged."""
    world = busy
    insert = ("insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
              "values (%s, %s, %s, 'extra', '1')")
    params = (world.org_a, world.automation_a, world.section_a)
    assert outcome(conn, world["editor"], insert, params) == "ok"
    assert outcome(conn, world["service"], insert, params) == "ok"
    assert outcome(conn, world["viewer"], insert, params) == "42501"
    assert outcome(conn, world["other_admin"], insert, params) == "42501"
