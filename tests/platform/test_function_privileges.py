"""EXECUTE on every function in cfg and cfg_private is granted on purpose (issue 8).

The built-in grant to PUBLIC is revoked from every function, trigger functions
included (a per-schema default privilege cannot take it away), and each function is
executable by exactly the roles listed in GRANTS. A new function fails this test
until it is added here with its grantees.
"""

from __future__ import annotations

import psycopg
import pytest

from sync_service.db import CfgError, acting_as
from tests.platform.function_grants import GRANTS

SCHEMAS = ["cfg", "cfg_private"]


def actual_grants(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute(
        """
        select p.oid::regprocedure::text as fn,
               coalesce(string_agg(distinct case when a.grantee = 0 then 'PUBLIC' else r.rolname end, ' '
                                   order by case when a.grantee = 0 then 'PUBLIC' else r.rolname end), '') as grantees
        from pg_proc p
        left join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
            on a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner
        left join pg_roles r on r.oid = a.grantee
        where p.pronamespace::regnamespace::text = any(%s)
        group by p.oid
        """,
        (SCHEMAS,),
    ).fetchall()
    return {r["fn"]: r["grantees"] for r in rows}


def test_every_function_is_executable_by_exactly_its_listed_roles(conn):
    actual = actual_grants(conn)
    missing = sorted(set(actual) - set(GRANTS))
    assert missing == [], "functions not in tests/platform/function_grants.py"
    gone = sorted(set(GRANTS) - set(actual))
    assert gone == [], "functions listed in tests/platform/function_grants.py that do not exist"
    wrong = {fn: (actual[fn], GRANTS[fn]) for fn in actual if actual[fn] != GRANTS[fn]}
    assert wrong == {}


def test_no_function_is_executable_by_public(conn):
    public = [fn for fn, grantees in actual_grants(conn).items() if "PUBLIC" in grantees.split()]
    assert public == []


def trigger_functions(conn) -> list[str]:
    rows = conn.execute(
        "select p.oid::regprocedure::text as fn from pg_proc p "
        "where p.pronamespace::regnamespace::text = any(%s) and p.prorettype = 'trigger'::regtype order by 1",
        (SCHEMAS,),
    ).fetchall()
    conn.commit()
    return [r["fn"] for r in rows]


def test_a_user_cannot_attach_any_trigger_function_to_a_table_of_their_own(conn, world):
    """The attack: with SQL access, attach audit_changes, fan_out_event or keep_one_admin to
    a temp table and write another org's audit log or events through it."""
    functions = trigger_functions(conn)
    assert "cfg_private.audit_changes()" in functions and "cfg_private.keep_one_admin()" in functions
    for fn in functions:
        with pytest.raises(CfgError) as info, acting_as(conn, world["admin"]) as cur:
            cur.execute("create temp table bait (id uuid, org_id uuid, automation_id uuid, role text)")
            cur.execute(f"create trigger bait after insert on bait for each row execute function {fn}")  # noqa: S608
            cur.execute("insert into bait values (gen_random_uuid(), %s, %s, 'admin')",
                        (world.org_b, world.automation_b))
        assert info.value.code == "42501", (fn, info.value)
