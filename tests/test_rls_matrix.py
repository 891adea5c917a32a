"""The RLS matrix: every table in schema cfg × every kind of caller × every operation,
and every RPC in cfg × every kind of caller, as PostgREST would run them
(role + request.jwt.claims in one transaction).

One world is built per module; each case runs inside a transaction that is rolled
back, so cases cannot leak into each other. Deferred constraints are checked at the
end of each case (`set constraints all immediate`), as a commit would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import test_cli_api as cli_api
import test_versioning_rls as versioning_rls
import test_webhooks_sql as webhooks_rls
from conftest import World, build_world, create_database, drop_database
from psycopg import sql
from psycopg.rows import dict_row

from sync_service.db import CfgError, Identity, acting_as

# Later features keep the matrix of their own tables and RPCs next to their tests;
# the coverage checks below take them into account, so nothing in cfg goes unmatrixed.
OTHER_MATRIX_TABLES = set(versioning_rls.TABLES) | set(webhooks_rls.TABLES)
OTHER_MATRIX_RPCS = set(versioning_rls.RPCS) | set(webhooks_rls.RPCS) | set(cli_api.RPCS)

# =============================================================================
# The matrix. Columns are the actors, in this order:
#
#   anon   viewer   editor   admin   other_admin   outsider   service
#    a       v        e        A         o            x          s
#
# 'Y' = allowed on org A's rows, '-' = refused. `other_admin` is the admin of
# org B, `outsider` a signed-in user with no org, `service` the service_role key.
# =============================================================================

ACTORS = ("anon", "viewer", "editor", "admin", "other_admin", "outsider", "service")
OPERATIONS = ("select", "insert", "update", "delete")

#                    select      insert      update      delete
MATRIX = {
    "orgs":            ("-YYY--Y", "------Y", "---Y--Y", "------Y"),
    # Nobody inserts memberships through the API: they come from invitations (RPCs).
    "org_members":     ("-YYY--Y", "------Y", "---Y--Y", "---Y--Y"),
    # Written only by the invitation RPCs; invitees read theirs (tests/test_invitations.py).
    "org_invitations": ("---Y--Y", "------Y", "------Y", "------Y"),
    "environments":    ("-YYY--Y", "---Y--Y", "---Y--Y", "---Y--Y"),
    "automations":     ("-YYY--Y", "--YY--Y", "--YY--Y", "---Y--Y"),
    "config_sections": ("-YYY--Y", "--YY--Y", "--YY--Y", "--YY--Y"),
    "config_entries":  ("-YYY--Y", "--YY--Y", "--YY--Y", "--YY--Y"),
    "entry_secrets":   ("--YY--Y", "--YY--Y", "--YY--Y", "--YY--Y"),
    # Nobody writes the audit log through the API; only triggers do.
    "audit_log":       ("--YY--Y", "-------", "-------", "-------"),
}


def test_matrix_covers_every_table_in_cfg(shared):
    conn, _ = shared
    with conn.transaction(force_rollback=True):
        tables = {
            r["relname"]
            for r in conn.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'cfg' and c.relkind in ('r', 'p')"
            )
        }
    assert set(MATRIX) == set(TABLES)
    assert tables == set(MATRIX) | OTHER_MATRIX_TABLES
    for cells in MATRIX.values():
        assert all(len(c) == len(ACTORS) and set(c) <= {"Y", "-"} for c in cells)


def test_every_table_in_cfg_has_rls_enabled(shared):
    conn, _ = shared
    with conn.transaction(force_rollback=True):
        rows = conn.execute(
            "select c.relname, c.relrowsecurity from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'cfg' and c.relkind = 'r'"
        ).fetchall()
    assert rows and all(r["relrowsecurity"] for r in rows), rows


# =============================================================================
# How each table is exercised: a row of org A to update/delete, a valid insert.
# =============================================================================


@dataclass(frozen=True)
class TableSpec:
    org_column: str
    # (sql, params) selecting the primary key of one row of org A, run as superuser.
    target: Callable[[World], tuple[str, dict]]
    insert: Callable[[World], tuple[str, dict]]
    # update sets this column to this value (sent as an untyped literal).
    update_column: str
    update_value: str


def q(template: str, **identifiers: str) -> sql.Composed:
    """SQL with table/column names quoted as identifiers."""
    return sql.SQL(template).format(**{k: sql.Identifier(v) for k, v in identifiers.items()})


def _by_id(table: str, attr: str) -> Callable[[World], tuple[str, dict]]:
    return lambda w: (q("select id from cfg.{t} where id = %(id)s", t=table), {"id": getattr(w, attr)})


TABLES: dict[str, TableSpec] = {
    "orgs": TableSpec(
        "id", _by_id("orgs", "org_a"),
        lambda w: ("insert into cfg.orgs (name, slug) values ('New org', 'new-org')", {}),
        "name", "Renamed",
    ),
    "org_members": TableSpec(
        "org_id",
        lambda w: ("select id from cfg.org_members where org_id = %(org)s and user_id = %(user)s",
                   {"org": w.org_a, "user": w["viewer"].user_id}),
        lambda w: ("insert into cfg.org_members (org_id, user_id, role) "
                   "values (%(org)s, %(user)s, 'viewer')",
                   {"org": w.org_a, "user": w["outsider"].user_id}),
        "role", "editor",
    ),
    "org_invitations": TableSpec(
        "org_id", lambda w: ("select id from cfg.org_invitations where id = %(id)s", {"id": PENDING_A}),
        lambda w: ("insert into cfg.org_invitations (org_id, email, role, expires_at) "
                   "values (%(org)s, 'new.person@example.test', 'viewer', now() + interval '1 day')",
                   {"org": w.org_a}),
        "role", "admin",
    ),
    "environments": TableSpec(
        "org_id",
        lambda w: ("select id from cfg.environments where org_id = %(org)s and slug = 'dev'",
                   {"org": w.org_a}),
        lambda w: ("insert into cfg.environments (org_id, name, slug, position) "
                   "values (%(org)s, 'QA', 'qa', 3)", {"org": w.org_a}),
        "name", "Renamed",
    ),
    "automations": TableSpec(
        "org_id", _by_id("automations", "automation_a"),
        lambda w: ("insert into cfg.automations (org_id, name, slug) "
                   "values (%(org)s, 'New', 'new-automation')", {"org": w.org_a}),
        "description", "Renamed",
    ),
    "config_sections": TableSpec(
        "org_id", _by_id("config_sections", "section_a"),
        lambda w: ("insert into cfg.config_sections (org_id, automation_id, name) "
                   "values (%(org)s, %(automation)s, 'new_section')",
                   {"org": w.org_a, "automation": w.automation_a}),
        "description", "Renamed",
    ),
    "config_entries": TableSpec(
        "org_id", _by_id("config_entries", "entry_a"),
        lambda w: ("insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
                   "values (%(org)s, %(automation)s, %(section)s, 'new_key', '1')",
                   {"org": w.org_a, "automation": w.automation_a, "section": w.section_a}),
        "description", "Renamed",
    ),
    "entry_secrets": TableSpec(
        "org_id", _by_id("entry_secrets", "secret_entry_a"),
        # A secret row for the plain entry: valid for the FK, so only RLS decides.
        lambda w: ("insert into cfg.entry_secrets (id, org_id, value) "
                   "values (%(entry)s, %(org)s, '\"x\"')", {"entry": w.entry_a, "org": w.org_a}),
        "value", '"rotated"',
    ),
    "audit_log": TableSpec(
        "org_id",
        lambda w: ("select min(id) as id from cfg.audit_log where org_id = %(org)s", {"org": w.org_a}),
        lambda w: ("insert into cfg.audit_log (org_id, actor_role, table_name, row_id, operation) "
                   "values (%(org)s, 'forged', 'orgs', %(org)s, 'INSERT')", {"org": w.org_a}),
        "actor_email", "forged@example.test",
    ),
}


# =============================================================================
# One world per module; every case is rolled back.
# =============================================================================


# Open invitations: one in org A to someone outside the world, one in org B to the
# outsider. The accepted invitations of build_world are dropped, so that what a member
# sees of org A's invitations is decided by their role alone (invitees see theirs).
PENDING_A = "00000000-0000-4000-8000-00000000a001"
PENDING_B = "00000000-0000-4000-8000-00000000b001"


def add_pending_invitations(conn: psycopg.Connection, world: World) -> None:
    with conn.transaction():
        conn.execute("delete from cfg.org_invitations")
        conn.execute(
            "insert into cfg.org_invitations (id, org_id, email, role, invited_by, expires_at) values "
            "(%s, %s, 'pending@example.test', 'editor', %s, now() + interval '7 days'), "
            "(%s, %s, %s, 'viewer', %s, now() + interval '7 days')",
            (PENDING_A, world.org_a, world["admin"].user_id,
             PENDING_B, world.org_b, world["outsider"].email, world["other_admin"].user_id),
        )


@pytest.fixture(scope="module")
def shared(pg_cluster, template_url):
    name = f"rls_matrix_{os.getpid()}"
    url = create_database(pg_cluster, name)
    try:
        with psycopg.connect(url, row_factory=dict_row) as c:
            world = build_world(c)
            add_pending_invitations(c, world)
            yield c, world
    finally:
        drop_database(pg_cluster, name)


@dataclass
class Outcome:
    ok: bool
    rowcount: int = 0
    rows: list | None = None
    code: str | None = None
    message: str = ""


def run_as(conn: psycopg.Connection, identity: Identity, query: Any, params: Any = None) -> Outcome:
    """Run sql as identity inside the caller's (rolled back) transaction; back to superuser after."""
    try:
        with acting_as(conn, identity) as cur:
            cur.execute(query, params)
            rowcount = cur.rowcount
            rows = cur.fetchall() if cur.description else None
            cur.execute("set constraints all immediate")  # what commit would check
        outcome = Outcome(True, rowcount, rows)
    except CfgError as exc:
        outcome = Outcome(False, code=exc.code, message=str(exc))
    # acting_as ran in a savepoint: its SET LOCALs outlive it until the outer rollback.
    conn.execute("reset role")
    conn.execute("select set_config('request.jwt.claims', '', true)")
    assert conn.execute("select current_user as u").fetchone()["u"] == "postgres"
    return outcome


def superuser_value(conn, query: Any, params: Any = None):
    row = conn.execute(query, params).fetchone()
    return None if row is None else next(iter(row.values()))


def assert_refused_write(outcome: Outcome, actor: str) -> None:
    """Refused writes either raise permission/RLS errors or touch nothing."""
    if outcome.ok:
        assert outcome.rowcount == 0, f"{actor}: refused write affected {outcome.rowcount} rows"
    else:
        assert outcome.code == "42501", (outcome.code, outcome.message)


def _cases():
    for table, cells in MATRIX.items():
        for op, cell in zip(OPERATIONS, cells, strict=True):
            for actor, flag in zip(ACTORS, cell, strict=True):
                verdict = "allowed" if flag == "Y" else "refused"
                yield pytest.param(table, op, actor, flag == "Y", id=f"{table}-{op}-{actor}-{verdict}")


@pytest.mark.parametrize("table, op, actor, allowed", list(_cases()))
def test_table_matrix(shared, table, op, actor, allowed):
    conn, world = shared
    spec = TABLES[table]
    identity = world[actor]
    with conn.transaction(force_rollback=True):
        target_sql, target_params = spec.target(world)
        target = superuser_value(conn, target_sql, target_params)
        assert target is not None
        count_a = q("select count(*) from cfg.{t} where {c} = %(org)s", t=table, c=spec.org_column)

        if op == "select":
            total = superuser_value(conn, count_a, {"org": world.org_a})
            assert total > 0
            if table == "audit_log" and actor == "editor":
                # Audit rows of admin-only tables (readable_by = 'admin') are the admins'.
                total = superuser_value(conn, count_a + sql.SQL(" and readable_by = 'editor'"), {"org": world.org_a})
            outcome = run_as(conn, identity, count_a, {"org": world.org_a})
            if actor == "anon":
                assert not outcome.ok and outcome.code == "42501"
                assert "permission denied for schema cfg" in outcome.message
            elif allowed:
                assert outcome.ok and outcome.rows[0]["count"] == total
            else:
                assert outcome.ok, outcome
                assert outcome.rows[0]["count"] == 0, f"{actor} sees org A's {table}"

        elif op == "insert":
            count_all = q("select count(*) from cfg.{t}", t=table)
            before = superuser_value(conn, count_all)
            statement, params = spec.insert(world)
            outcome = run_as(conn, identity, statement, params)
            after = superuser_value(conn, count_all)
            if allowed:
                assert outcome.ok, outcome
                assert outcome.rowcount == 1 and after == before + 1
            else:
                assert not outcome.ok, f"{actor} inserted into {table}"
                assert outcome.code == "42501", (outcome.code, outcome.message)
                if actor == "anon":
                    assert "permission denied for schema cfg" in outcome.message
                else:
                    assert ("row-level security" in outcome.message
                            or "permission denied for table" in outcome.message), outcome.message
                assert after == before

        elif op == "update":
            probe = q("select {c}::text from cfg.{t} where id = %(id)s", t=table, c=spec.update_column)
            before = superuser_value(conn, probe, {"id": target})
            outcome = run_as(
                conn, identity,
                q("update cfg.{t} set {c} = %(value)s where id = %(id)s", t=table, c=spec.update_column),
                {"id": target, "value": spec.update_value},
            )
            after = superuser_value(conn, probe, {"id": target})
            if allowed:
                assert outcome.ok and outcome.rowcount == 1, outcome
                assert after != before
            else:
                assert_refused_write(outcome, actor)
                assert after == before

        else:  # delete
            exists = q("select count(*) from cfg.{t} where id = %(id)s", t=table)
            outcome = run_as(conn, identity, q("delete from cfg.{t} where id = %(id)s", t=table), {"id": target})
            left = superuser_value(conn, exists, {"id": target})
            if allowed:
                assert outcome.ok and outcome.rowcount == 1, outcome
                assert left == 0
            else:
                assert_refused_write(outcome, actor)
                assert left == 1


# =============================================================================
# RPCs: outcome per actor ('ok' or the SQLSTATE), and the effect seen by the superuser.
# =============================================================================


@dataclass(frozen=True)
class RpcSpec:
    call: Callable[[World], tuple[str, dict]]
    # Superuser query whose value changes if and only if the call took effect (None: read-only).
    effect: Callable[[World], tuple[str, dict]] | None
    expected: dict[str, str]


def _expect(anon, viewer, editor, admin, other_admin, outsider, service) -> dict[str, str]:
    return dict(zip(ACTORS, (anon, viewer, editor, admin, other_admin, outsider, service), strict=True))


DENIED = "42501"  # anon: permission denied for schema cfg

RPCS: dict[str, RpcSpec] = {
    "create_org": RpcSpec(
        lambda w: ("select * from cfg.create_org('Fresh', 'fresh-org')", {}),
        lambda w: ("select count(*) from cfg.orgs where slug = 'fresh-org'", {}),
        # The service key is nobody: an org needs a signed-in creator to be its admin.
        _expect(DENIED, "ok", "ok", "ok", "ok", "ok", "PT403"),
    ),
    "invite_member": RpcSpec(
        lambda w: ("select * from cfg.invite_member(%(org)s, %(email)s, 'viewer')",
                   {"org": w.org_a, "email": w["outsider"].email}),
        lambda w: ("select count(*) from cfg.org_invitations where org_id = %(org)s", {"org": w.org_a}),
        _expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "list_invitations": RpcSpec(
        lambda w: ("select * from cfg.list_invitations(%(org)s)", {"org": w.org_a}),
        None,
        _expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "revoke_invitation": RpcSpec(
        lambda w: ("select * from cfg.revoke_invitation(%(id)s)", {"id": PENDING_A}),
        lambda w: ("select revoked_at is not null from cfg.org_invitations where id = %(id)s", {"id": PENDING_A}),
        _expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    # Only the account the invitation is addressed to (the outsider, to org B).
    "accept_invitation": RpcSpec(
        lambda w: ("select * from cfg.accept_invitation(%(id)s)", {"id": PENDING_B}),
        lambda w: ("select count(*) from cfg.org_members where org_id = %(org)s", {"org": w.org_b}),
        _expect(DENIED, "PT404", "PT404", "PT404", "PT404", "ok", "PT404"),
    ),
    "set_member_role": RpcSpec(
        lambda w: ("select * from cfg.set_member_role(%(org)s, %(user)s, 'editor')",
                   {"org": w.org_a, "user": w["viewer"].user_id}),
        lambda w: ("select role::text from cfg.org_members where org_id = %(org)s and user_id = %(user)s",
                   {"org": w.org_a, "user": w["viewer"].user_id}),
        _expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "remove_member": RpcSpec(
        lambda w: ("select * from cfg.remove_member(%(org)s, %(user)s)",
                   {"org": w.org_a, "user": w["viewer"].user_id}),
        lambda w: ("select count(*) from cfg.org_members where org_id = %(org)s", {"org": w.org_a}),
        _expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    # Everyone may ask; each sees only their own orgs (tests/test_tenancy.py).
    "my_orgs": RpcSpec(
        lambda w: ("select count(*) from cfg.my_orgs()", {}),
        None,
        _expect(DENIED, "ok", "ok", "ok", "ok", "ok", "ok"),
    ),
    "list_members": RpcSpec(
        lambda w: ("select * from cfg.list_members(%(org)s)", {"org": w.org_a}),
        None,
        _expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok"),
    ),
    "create_automation": RpcSpec(
        lambda w: ("select * from cfg.create_automation(%(org)s, 'Fresh', 'fresh')", {"org": w.org_a}),
        lambda w: ("select count(*) from cfg.automations where org_id = %(org)s", {"org": w.org_a}),
        _expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok"),
    ),
    "delete_automation": RpcSpec(
        lambda w: ("select * from cfg.delete_automation(%(id)s)", {"id": w.automation_a}),
        lambda w: ("select count(*) from cfg.automations where org_id = %(org)s", {"org": w.org_a}),
        _expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "audit_events": RpcSpec(
        lambda w: ("select * from cfg.audit_events(%(org)s)", {"org": w.org_a}),
        None,
        _expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok"),
    ),
}


def test_rpc_matrix_covers_every_function_in_cfg(shared):
    conn, _ = shared
    with conn.transaction(force_rollback=True):
        names = {
            r["proname"]
            for r in conn.execute(
                "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = 'cfg'"
            )
        }
    assert names == set(RPCS) | OTHER_MATRIX_RPCS


def _rpc_cases():
    for name, spec in RPCS.items():
        for actor in ACTORS:
            yield pytest.param(name, actor, spec.expected[actor], id=f"{name}-{actor}-{spec.expected[actor]}")


@pytest.mark.parametrize("rpc, actor, expected", list(_rpc_cases()))
def test_rpc_matrix(shared, rpc, actor, expected):
    conn, world = shared
    spec = RPCS[rpc]
    with conn.transaction(force_rollback=True):
        before = superuser_value(conn, *spec.effect(world)) if spec.effect else None
        outcome = run_as(conn, world[actor], *spec.call(world))
        after = superuser_value(conn, *spec.effect(world)) if spec.effect else None
        if expected == "ok":
            assert outcome.ok, outcome
            assert outcome.rows, f"{rpc} returned nothing for {actor}"
            if spec.effect:
                assert after != before, f"{rpc} as {actor} changed nothing"
        else:
            assert not outcome.ok, f"{rpc} as {actor} succeeded"
            assert outcome.code == expected, (outcome.code, outcome.message)
            assert outcome.message
            if actor == "anon":
                assert "permission denied for schema cfg" in outcome.message
            assert after == before


def test_rpc_results_are_limited_to_the_org(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        members = run_as(conn, world["viewer"], "select * from cfg.list_members(%s)", (world.org_a,))
        assert sorted(r["email"] for r in members.rows) == [
            "admin@example.test", "editor@example.test", "viewer@example.test"]
        events = run_as(conn, world["editor"], "select * from cfg.audit_events(%s, max_rows => 10000)",
                        (world.org_a,))
        assert events.rows and {r["org_id"] for r in events.rows} == {world.org_a}


# =============================================================================
# Secrets: viewers never read them; config_entries never holds them.
# =============================================================================


@pytest.mark.parametrize("actor", ["viewer", "other_admin", "outsider"])
def test_secret_values_are_invisible_to(shared, actor):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(conn, world[actor], "select * from cfg.entry_secrets")
        assert out.ok and out.rows == []
        out = run_as(conn, world[actor], "select * from cfg.entry_secrets where id = %s",
                     (world.secret_entry_a,))
        assert out.ok and out.rows == []


@pytest.mark.parametrize("actor", ["viewer", "editor", "admin", "service"])
def test_config_entries_value_is_null_for_secrets_for(shared, actor):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(conn, world[actor], "select value, is_secret from cfg.config_entries where id = %s",
                     (world.secret_entry_a,))
        assert out.rows == [{"value": None, "is_secret": True}]
        # Not even a whole-row read of the table mentions the value.
        out = run_as(conn, world[actor], "select t::text as t from cfg.config_entries t")
        assert out.rows and not any("hunter2" in r["t"] for r in out.rows)
        leaked = "select count(*) from cfg.config_entries where value::text like '%%hunter2%%'"
        assert superuser_value(conn, leaked) == 0


@pytest.mark.parametrize("actor", ["editor", "admin"])
def test_editors_read_secret_values(shared, actor):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(conn, world[actor], "select value from cfg.entry_secrets where id = %s",
                     (world.secret_entry_a,))
        assert out.rows == [{"value": "sk_live_hunter2"}]


def test_viewer_cannot_read_secret_through_a_join(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(
            conn, world["viewer"],
            "select e.key, coalesce(s.value, e.value) as v from cfg.config_entries e "
            "left join cfg.entry_secrets s on s.id = e.id where e.is_secret",
        )
        assert out.rows == [{"key": "api_key", "v": None}]


# =============================================================================
# org_id never changes: a row cannot be moved to another tenant.
# =============================================================================

MOVABLE = ["org_members", "environments", "automations", "config_sections", "config_entries",
           "entry_secrets"]


@pytest.mark.parametrize("actor", ["admin_of_both", "service"])
@pytest.mark.parametrize("table", MOVABLE)
def test_org_id_cannot_be_changed(shared, table, actor):
    conn, world = shared
    spec = TABLES[table]
    with conn.transaction(force_rollback=True):
        if actor == "admin_of_both":
            # The strongest authenticated caller: admin in both orgs, so only the rule itself refuses.
            conn.execute("insert into cfg.org_members (org_id, user_id, role) values (%s, %s, 'admin')",
                         (world.org_b, world["admin"].user_id))
            identity = world["admin"]
        else:
            identity = world["service"]
        target = superuser_value(conn, *spec.target(world))
        out = run_as(conn, identity, q("update cfg.{t} set org_id = %s where id = %s", t=table),
                     (world.org_b, target))
        assert not out.ok, f"{table} row moved to org B as {actor}"
        assert out.code in ("PT422", "23503"), (out.code, out.message)
        org = superuser_value(conn, q("select org_id from cfg.{t} where id = %s", t=table), (target,))
        assert org == world.org_a


def test_org_id_cannot_be_changed_even_by_the_superuser(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("update cfg.automations set org_id = %s where id = %s",
                         (world.org_b, world.automation_a))
        assert info.value.sqlstate == "PT422"
        assert "org_id cannot be changed" in str(info.value)


# =============================================================================
# The access-token hook's org_roles claim is for the UI only: absent or stale, it
# changes nothing. Membership is the truth.
# =============================================================================


def with_claims(identity: Identity, org_roles: object) -> Identity:
    return Identity(identity.role, identity.user_id, identity.email, (("org_roles", org_roles),))


def test_hook_puts_memberships_in_the_claims(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        event = {"user_id": str(world["editor"].user_id), "claims": {"role": "authenticated"}}
        claims = superuser_value(conn, "select cfg_private.custom_access_token_hook(%s::jsonb) -> 'claims' as c",
                                 (json.dumps(event),))
        assert claims == {"role": "authenticated", "org_roles": {str(world.org_a): "editor"}}


@pytest.mark.parametrize("claim", ["absent", "admin-of-b", "admin-of-a", "garbage"])
def test_stale_or_absent_org_roles_claim_changes_nothing(shared, claim):
    conn, world = shared
    viewer = world["viewer"]
    identity = {
        "absent": viewer,
        "admin-of-b": with_claims(viewer, {str(world.org_b): "admin"}),
        "admin-of-a": with_claims(viewer, {str(world.org_a): "admin"}),
        "garbage": with_claims(viewer, "admin"),
    }[claim]
    with conn.transaction(force_rollback=True):
        # Reads: still exactly org A (membership), never org B (claim).
        out = run_as(conn, identity, "select org_id from cfg.automations")
        assert {r["org_id"] for r in out.rows} == {world.org_a}
        # Writes a viewer may not do stay refused, in both orgs.
        for automation in (world.automation_a, world.automation_b):
            out = run_as(conn, identity, "update cfg.automations set description = 'x' where id = %s",
                         (automation,))
            assert out.ok and out.rowcount == 0
        out = run_as(conn, identity, "select * from cfg.invite_member(%s, %s, 'admin')",
                     (world.org_a, world["outsider"].email))
        assert out.code == "PT403"
        out = run_as(conn, identity, "select * from cfg.delete_automation(%s)", (world.automation_b,))
        assert out.code == "PT404"
        out = run_as(conn, identity, "select * from cfg.entry_secrets")
        assert out.rows == []


def test_claim_of_a_removed_member_grants_nothing(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        # The token was minted while the editor was a member; then an admin removed them.
        event = {"user_id": str(world["editor"].user_id), "claims": {}}
        roles = superuser_value(
            conn, "select cfg_private.custom_access_token_hook(%s::jsonb) -> 'claims' -> 'org_roles' as r",
            (json.dumps(event),))
        stale = with_claims(world["editor"], roles)
        out = run_as(conn, world["admin"], "select * from cfg.remove_member(%s, %s)",
                     (world.org_a, world["editor"].user_id))
        assert out.ok
        for table in ("orgs", "automations", "config_entries", "entry_secrets", "audit_log"):
            out = run_as(conn, stale, q("select count(*) from cfg.{t}", t=table))
            assert out.rows[0]["count"] == 0, table
        out = run_as(conn, stale, "update cfg.automations set description = 'x' where id = %s",
                     (world.automation_a,))
        assert out.rowcount == 0
        out = run_as(conn, stale, "select * from cfg.create_automation(%s, 'X', 'x')", (world.org_a,))
        assert out.code == "PT404"
