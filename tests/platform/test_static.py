"""Static checks of the schema: plpgsql_check, and the lints Supabase's advisors (splinter) run."""

from __future__ import annotations

import psycopg
import pytest

SCHEMAS = ("cfg", "cfg_private")


@pytest.fixture
def checked(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("create extension if not exists plpgsql_check")
    conn.commit()
    return conn


def test_plpgsql_check_reports_no_errors(checked):
    functions = checked.execute(
        """
        select p.oid, p.oid::regprocedure::text as name, t.tgrelid as relid,
               t.tgoldtable as oldtable, t.tgnewtable as newtable,
               p.prorettype = 'trigger'::regtype as is_trigger
        from pg_proc p
        join pg_language l on l.oid = p.prolang
        -- One of its triggers, with the names of its transition tables if it has them
        -- (one with both, for a function serving inserts, updates and deletes).
        left join lateral (
            select * from pg_trigger t where t.tgfoid = p.oid
            order by (t.tgoldtable is not null and t.tgnewtable is not null) desc limit 1
        ) as t on true
        where l.lanname = 'plpgsql' and p.pronamespace::regnamespace::text = any(%s)
        """,
        (list(SCHEMAS),),
    ).fetchall()
    assert len(functions) > 10
    problems = []
    for fn in functions:
        if fn["is_trigger"] and fn["relid"] is None:
            problems.append(f"{fn['name']}: trigger function attached to no table")
            continue
        rows = checked.execute(
            "select * from plpgsql_check_function_tb(%s, coalesce(%s, 0)::regclass, "
            "oldtable => %s, newtable => %s)",
            (fn["oid"], fn["relid"], fn["oldtable"], fn["newtable"]),
        ).fetchall()
        problems += [f"{fn['name']}: {r['message']} (line {r['lineno']})" for r in rows if r["level"] == "error"]
    assert problems == []


def test_every_function_pins_search_path(conn):
    loose = conn.execute(
        """
        select p.oid::regprocedure::text as name
        from pg_proc p
        where p.pronamespace::regnamespace::text = any(%s)
          and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%%')
          and p.prokind = 'f'
        """,
        (list(SCHEMAS),),
    ).fetchall()
    assert loose == []


def test_every_cfg_table_has_rls_and_policies(conn):
    rows = conn.execute(
        """
        select c.relname, c.relrowsecurity,
               (select count(*) from pg_policy p where p.polrelid = c.oid) as policies
        from pg_class c
        where c.relnamespace = 'cfg'::regnamespace and c.relkind = 'r'
        """
    ).fetchall()
    assert rows
    assert [r["relname"] for r in rows if not r["relrowsecurity"] or r["policies"] == 0] == []


def test_every_cfg_table_is_audited_except_the_log(conn):
    unaudited = conn.execute(
        """
        select c.relname from pg_class c
        where c.relnamespace = 'cfg'::regnamespace and c.relkind = 'r' and c.relname <> 'audit_log'
          and not exists (
              select 1 from pg_trigger t
              where t.tgrelid = c.oid and t.tgfoid = 'cfg_private.audit_changes'::regproc
          )
        """
    ).fetchall()
    assert unaudited == []


def test_every_cfg_table_carries_tenant_key_and_timestamps(conn):
    missing = conn.execute(
        """
        select c.relname, col.name
        from pg_class c
        cross join (values ('org_id'), ('created_at')) as col(name)
        where c.relnamespace = 'cfg'::regnamespace and c.relkind = 'r' and c.relname <> 'orgs'
          and not exists (
              select 1 from pg_attribute a
              where a.attrelid = c.oid and a.attname = col.name and not a.attisdropped
          )
        """
    ).fetchall()
    assert missing == []


def test_policies_wrap_auth_calls_for_initplan_caching(conn):
    """splinter's auth_rls_initplan: auth.<fn>() must be wrapped in (select …)."""
    bare = conn.execute(
        """
        select polname, pg_get_expr(polqual, polrelid) as using_expr,
               pg_get_expr(polwithcheck, polrelid) as check_expr
        from pg_policy
        where polrelid::regclass::text like 'cfg.%%'
        """
    ).fetchall()
    offenders = []
    for p in bare:
        for expr in (p["using_expr"], p["check_expr"]):
            if expr and ("auth.uid()" in expr or "orgs_with_role" in expr) and "SELECT" not in expr.upper():
                offenders.append(p["polname"])
    assert offenders == []


def test_foreign_keys_are_indexed(conn):
    """splinter's unindexed_foreign_keys: some index leads with the FK's columns, so deleting
    a parent row does not scan the child table."""
    unindexed = conn.execute(
        """
        select c.conrelid::regclass::text as tbl, c.conname
        from pg_constraint c
        where c.contype = 'f' and c.connamespace::regnamespace::text = any(%s)
          and not exists (
              select 1 from pg_index i
              where i.indrelid = c.conrelid
                and c.conkey @> (i.indkey::int2[])[0:least(cardinality(c.conkey), i.indnkeyatts) - 1]
          )
        """,
        (list(SCHEMAS),),
    ).fetchall()
    assert unindexed == []


def test_no_security_definer_views_and_no_public_execute(conn):
    definer_views = conn.execute(
        """
        select c.relname from pg_class c
        where c.relnamespace::regnamespace::text = any(%s) and c.relkind = 'v'
          and not coalesce(c.reloptions @> array['security_invoker=true'], false)
        """,
        (list(SCHEMAS),),
    ).fetchall()
    assert definer_views == []
    public_exec = conn.execute(
        """
        select p.oid::regprocedure::text as name from pg_proc p
        where p.pronamespace::regnamespace::text = any(%s)
          and (has_function_privilege('anon', p.oid, 'execute')
               or exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                          where a.grantee = 0 and a.privilege_type = 'EXECUTE'))
          and p.prorettype <> 'trigger'::regtype
        """,
        (list(SCHEMAS),),
    ).fetchall()
    assert public_exec == []


# splinter's lints 0028 and 0029 (supabase/splinter, lints/002[89]_*.sql), their
# queries mirrored with the exposed schemas of supabase/config.toml as PostgREST's
# pgrst.db_schemas. No allow-list: a definer function in an exposed schema is a finding.
EXPOSED_SCHEMAS = "public, graphql_public, cfg"


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_splinter_0028_0029_no_security_definer_function_is_executable_in_exposed_schemas(conn, role):
    conn.execute("select set_config('pgrst.db_schemas', %s, false)", (EXPOSED_SCHEMAS,))
    findings = conn.execute(
        """
        select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as fn
        from pg_proc p
        join pg_namespace n on p.pronamespace = n.oid
        where p.prosecdef
          and has_function_privilege(%s, p.oid, 'EXECUTE')
          and n.nspname = any(array(
              select trim(unnest(string_to_array(current_setting('pgrst.db_schemas', 't'), ',')))
          ))
          and n.nspname not in ('auth', 'cron', 'extensions', 'graphql', 'graphql_public', 'information_schema',
                                'net', 'pgsodium', 'pgsodium_masks', 'pg_catalog', 'realtime', 'storage',
                                'supabase_functions', 'supabase_migrations', 'vault')
        order by 1
        """,
        (role,),
    ).fetchall()
    assert [f["fn"] for f in findings] == []


# splinter's lints/0014_extension_in_public.sql, its query as is (no allow-list).
EXTENSION_IN_PUBLIC = """
select pe.extname
from pg_catalog.pg_extension pe
where pe.extname not in ('plpgsql')
  and pe.extnamespace::regnamespace::text = 'public'
"""


def test_no_extension_in_public(conn, pg_cluster):
    """Lint 0014 on a test database and on the one pg_cron lives in (cron.database_name,
    the cluster's `postgres` database, provisioned as `cfgctl local start` does)."""
    from sync_service import local_stack as local

    assert conn.execute(EXTENSION_IN_PUBLIC).fetchall() == []
    local.provision(pg_cluster.db_url, seed=False)
    with psycopg.connect(pg_cluster.db_url) as cron_db:
        assert cron_db.execute(EXTENSION_IN_PUBLIC).fetchall() == []
        assert cron_db.execute(
            "select extnamespace::regnamespace::text from pg_extension where extname = 'pg_cron'"
        ).fetchone() == ("pg_catalog",)


# =============================================================================
# Function files: one concept each, loaded in dependency order (issue 9)
# =============================================================================

FUNCTION_DIR = __import__("pathlib").Path(__file__).resolve().parents[2] / "functions"


def test_function_files_load_in_dependency_order():
    """Files load in name order (NN_ prefixes). Each may call only functions defined in
    itself or in a file before it: plpgsql binds names late, so a wrong order would
    work on an upgraded database and fail on a fresh one, or the other way round."""
    import re

    files = sorted(FUNCTION_DIR.glob("*.sql"))
    assert all(re.match(r"^\d\d_[a-z_]+\.sql$", f.name) for f in files), [f.name for f in files]
    defined_in: dict[str, int] = {}
    for index, f in enumerate(files):
        for name in re.findall(r"create or replace function (cfg(?:_private)?\.\w+)\(", f.read_text()):
            defined_in.setdefault(name, index)
    late = []
    for index, f in enumerate(files):
        # Calls only: comments and string literals (hints, messages) left out.
        text = re.sub(r"'(?:[^']|'')*'", "''", re.sub(r"--[^\n]*", "", f.read_text()))
        for name in set(re.findall(r"\b(cfg(?:_private)?\.\w+)\(", text)):
            if name in defined_in and defined_in[name] > index:
                late.append(f"{f.name} calls {name}, defined later in {files[defined_in[name]].name}")
    assert late == []


def test_function_files_stay_short():
    long = {f.name: n for f in FUNCTION_DIR.glob("*.sql") if (n := len(f.read_text().splitlines())) > 550}
    assert long == {}


def test_function_files_hold_no_schema_grants_or_drops():
    """Schema-level grants and drops of replaced functions live only in migrations."""
    import re

    offenders = [
        f"{f.name}: {m}" for f in FUNCTION_DIR.glob("*.sql")
        for m in re.findall(r"^(?:grant usage on schema.*|drop function.*|alter default privileges.*)$",
                            f.read_text(), re.MULTILINE)
    ]
    assert offenders == []
