"""The RLS matrix engine: every table in schema cfg × every kind of caller × every
operation, and every RPC in cfg × every kind of caller, as PostgREST would run them
(role + request.jwt.claims in one transaction).

Each area keeps its matrix lines next to its tests, in tests/<area>/test_<area>_rls.py,
in one format:

    MATRIX = {            #  select      insert      update      delete
        "automations":    ("-YYY--Y", "--YY--Y", "--YY--Y", "---Y--Y"),
    }
    TABLES = {"automations": Table(target=..., insert=..., update=("description", "x"))}
    RPCS = {"create_automation": Rpc(call=..., effect=..., expected=expect(DENIED, "PT403", ...))}

and turns them into tests with `table_matrix_test(MATRIX, TABLES)`, `rpc_matrix_test(RPCS)`
and a module-scoped world, `shared_world(name, setup)`. tests/platform/test_rls_coverage.py
checks that the lines of all areas together name every table and every function in cfg.

Columns of a table line are the actors, in this order:

    anon   viewer   editor   admin   other_admin   outsider   service
     a       v        e        A         o            x          s

  'Y'  allowed on org A's rows;
  '-'  refused by RLS: reads and writes see no row of org A (inserts fail with 42501);
  '!'  refused by privileges: the statement fails with 42501, whatever the rows.
`other_admin` is the admin of org B, `outsider` a signed-in user with no org, `service`
the service_role key. An RPC line gives per actor 'ok' or the SQLSTATE of the refusal.

Every case runs in a transaction that is rolled back, so the cases of one world cannot
leak into each other; deferred constraints are checked as a commit would.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from tests.support.act import Outcome, attempt
from tests.support.cluster import WORLD_TEMPLATE, create_database, drop_database
from tests.support.world import World

ACTORS = ("anon", "viewer", "editor", "admin", "other_admin", "outsider", "service")
OPERATIONS = ("select", "insert", "update", "delete")
DENIED = "42501"  # anon: permission denied for schema cfg

# (sql, params) built from the world.
Statement = Callable[[World], tuple[Any, Any]]


def q(template: str, **identifiers: str) -> sql.Composed:
    """SQL with table/column names quoted as identifiers."""
    return sql.SQL(template).format(**{k: sql.Identifier(v) for k, v in identifiers.items()})


def by_id(table: str, attr: str) -> Statement:
    """Target: the row of cfg.<table> whose id is world.<attr>."""
    return lambda w: (q("select id from cfg.{t} where id = %(id)s", t=table), {"id": getattr(w, attr)})


def copy_of(table: str) -> Statement:
    """Insert: a copy of one of org A's rows. For tables nobody may insert into: were the
    privilege granted, the copy would fail on its primary key (not 42501) and the cell too."""
    return lambda w: (q("insert into cfg.{t} select * from cfg.{t} where org_id = %(org)s limit 1", t=table),
                      {"org": w.org_a})


@dataclass(frozen=True)
class Table:
    # (sql, params) selecting the primary key of one row of org A, run as superuser.
    target: Statement
    # A valid insert of one row of org A.
    insert: Statement
    # update sets this column to this value (sent as an untyped literal).
    update: tuple[str, str]
    org_column: str = "org_id"
    # Extra condition on the rows an allowed reader sees, per actor (e.g. admin-only audit rows).
    readable: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Rpc:
    call: Statement
    expected: dict[str, str]
    # Superuser query whose value changes if and only if the call took effect (None: read-only).
    effect: Statement | None = None
    # Run as superuser in the case's transaction before the call (state the call needs).
    prepare: Callable[[psycopg.Connection, World], None] | None = None


def expect(anon, viewer, editor, admin, other_admin, outsider, service) -> dict[str, str]:
    return dict(zip(ACTORS, (anon, viewer, editor, admin, other_admin, outsider, service), strict=True))


def check_lines(matrix: dict[str, tuple[str, ...]], tables: dict[str, Table]) -> None:
    assert set(matrix) == set(tables), "a matrix line without its Table, or the other way round"
    for name, cells in matrix.items():
        assert len(cells) == len(OPERATIONS), name
        assert all(len(c) == len(ACTORS) and set(c) <= {"Y", "-", "!"} for c in cells), name


# =============================================================================
# One world per area module; every case is rolled back.
# =============================================================================


def shared_world(name: str, setup: Callable[[psycopg.Connection, World], None] | None = None):
    """A module-scoped fixture `shared` -> (conn, world) on a database of its own."""

    @pytest.fixture(scope="module")
    def shared(pg_cluster, world_template):
        db = f"rls_{name}_{os.getpid()}"
        url = create_database(pg_cluster, db, WORLD_TEMPLATE)
        try:
            with psycopg.connect(url, row_factory=dict_row) as c:
                world = copy.deepcopy(world_template)
                if setup is not None:
                    setup(c, world)
                c.commit()
                yield c, world
        finally:
            drop_database(pg_cluster, db)

    return shared


def superuser_value(conn, query: Any, params: Any = None):
    row = conn.execute(query, params).fetchone()
    return None if row is None else next(iter(row.values()))


def run_as(conn: psycopg.Connection, who, query: Any, params: Any = None) -> Outcome:
    """attempt() inside the case's (rolled back) transaction; the superuser afterwards."""
    outcome = attempt(conn, who, query, params)
    assert conn.execute("select current_user as u").fetchone()["u"] == "postgres"
    return outcome


# =============================================================================
# Tables
# =============================================================================


def table_cases(matrix: dict[str, tuple[str, ...]]):
    for table, cells in matrix.items():
        for op, cell in zip(OPERATIONS, cells, strict=True):
            for actor, flag in zip(ACTORS, cell, strict=True):
                verdict = {"Y": "allowed", "-": "refused", "!": "forbidden"}[flag]
                yield pytest.param(table, op, actor, flag, id=f"{table}-{op}-{actor}-{verdict}")


def _refused(outcome: Outcome, actor: str, flag: str, what: str) -> None:
    if actor == "anon":
        assert not outcome.ok and outcome.code == DENIED, (what, outcome)
        assert "permission denied for schema cfg" in outcome.message
    elif flag == "!":
        assert not outcome.ok and outcome.code == DENIED, (what, outcome)
        assert "permission denied" in outcome.message, outcome.message
    elif outcome.ok:  # '-': RLS hides the rows
        assert outcome.rowcount == 0 or (outcome.rows and outcome.rows[0].get("count") == 0), (what, outcome)
    else:
        assert outcome.code == DENIED, (what, outcome.code, outcome.message)


def check_table_case(conn: psycopg.Connection, world: World, table: str, spec: Table, op: str, actor: str,
                     flag: str) -> None:
    identity = world[actor]
    with conn.transaction(force_rollback=True):
        target = superuser_value(conn, *spec.target(world))
        assert target is not None, f"no row of org A in {table} to act on"
        count_a = q("select count(*) from cfg.{t} where {c} = %(org)s", t=table, c=spec.org_column)
        what = f"{actor} {op} {table}"

        if op == "select":
            total = superuser_value(conn, count_a, {"org": world.org_a})
            assert total > 0
            readable = dict(spec.readable).get(actor)
            if readable:
                total = superuser_value(conn, count_a + sql.SQL(f" and {readable}"), {"org": world.org_a})
            outcome = run_as(conn, identity, count_a, {"org": world.org_a})
            if flag == "Y":
                assert outcome.ok and outcome.rows[0]["count"] == total, (what, outcome)
            else:
                _refused(outcome, actor, flag, what)
                if outcome.ok:
                    assert outcome.rows[0]["count"] == 0, f"{actor} sees org A's {table}"
            if actor in ("viewer", "editor", "admin"):
                # Members of org A only: nor anything of org B's.
                theirs = run_as(conn, identity, count_a, {"org": world.org_b})
                assert not theirs.ok or theirs.rows[0]["count"] == 0, f"{actor} sees org B's {table}"

        elif op == "insert":
            count_all = q("select count(*) from cfg.{t}", t=table)
            before = superuser_value(conn, count_all)
            outcome = run_as(conn, identity, *spec.insert(world))
            after = superuser_value(conn, count_all)
            if flag == "Y":
                assert outcome.ok, (what, outcome)
                assert outcome.rowcount == 1 and after == before + 1
            else:
                assert not outcome.ok, f"{actor} inserted into {table}"
                assert outcome.code == DENIED, (what, outcome.code, outcome.message)
                _refused(outcome, actor, flag, what)
                if flag == "-" and actor != "anon":
                    assert ("row-level security" in outcome.message
                            or "permission denied for table" in outcome.message), outcome.message
                assert after == before

        elif op == "update":
            column, value = spec.update
            probe = q("select {c}::text from cfg.{t} where id = %(id)s", t=table, c=column)
            before = superuser_value(conn, probe, {"id": target})
            outcome = run_as(conn, identity, q("update cfg.{t} set {c} = %(value)s where id = %(id)s",
                                               t=table, c=column), {"id": target, "value": value})
            after = superuser_value(conn, probe, {"id": target})
            if flag == "Y":
                assert outcome.ok and outcome.rowcount == 1, (what, outcome)
                assert after != before
            else:
                _refused(outcome, actor, flag, what)
                assert after == before

        else:  # delete
            exists = q("select count(*) from cfg.{t} where id = %(id)s", t=table)
            outcome = run_as(conn, identity, q("delete from cfg.{t} where id = %(id)s", t=table), {"id": target})
            left = superuser_value(conn, exists, {"id": target})
            if flag == "Y":
                assert outcome.ok and outcome.rowcount == 1, (what, outcome)
                assert left == 0
            else:
                _refused(outcome, actor, flag, what)
                assert left == 1


def table_matrix_test(matrix: dict[str, tuple[str, ...]], tables: dict[str, Table]):
    """The parametrised test of an area's table lines (assign it to test_table_matrix)."""
    check_lines(matrix, tables)

    @pytest.mark.parametrize("table, op, actor, flag", list(table_cases(matrix)))
    def test_table_matrix(shared, table, op, actor, flag):
        conn, world = shared
        check_table_case(conn, world, table, tables[table], op, actor, flag)

    return test_table_matrix


# =============================================================================
# RPCs: outcome per actor ('ok' or the SQLSTATE), and the effect seen by the superuser.
# =============================================================================


def rpc_cases(rpcs: dict[str, Rpc]):
    for name, spec in rpcs.items():
        assert set(spec.expected) == set(ACTORS), name
        for actor in ACTORS:
            yield pytest.param(name, actor, spec.expected[actor], id=f"{name}-{actor}-{spec.expected[actor]}")


def check_rpc_case(conn: psycopg.Connection, world: World, rpc: str, spec: Rpc, actor: str, expected: str) -> None:
    with conn.transaction(force_rollback=True):
        if spec.prepare:
            spec.prepare(conn, world)
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


def rpc_matrix_test(rpcs: dict[str, Rpc]):
    """The parametrised test of an area's RPC lines (assign it to test_rpc_matrix)."""

    @pytest.mark.parametrize("rpc, actor, expected", list(rpc_cases(rpcs)))
    def test_rpc_matrix(shared, rpc, actor, expected):
        conn, world = shared
        check_rpc_case(conn, world, rpc, rpcs[rpc], actor, expected)

    return test_rpc_matrix
