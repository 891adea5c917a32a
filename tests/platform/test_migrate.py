"""The migration runner: idempotent, forward-only, serialised by an advisory lock."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service import local_stack as local
from sync_service import migrate as migrator
from sync_service.db import CfgError, acting_as
from sync_service.settings import CHECKOUT, SQL_ROOT
from tests.support.cluster import free_port


@pytest.fixture
def project_copy(tmp_path):
    """A copy of the schema files that a test may edit."""
    for folder in ("migrations", "functions", "policies"):
        shutil.copytree(SQL_ROOT / folder, tmp_path / folder)
    return tmp_path


def test_second_run_changes_nothing(db_url):
    assert migrator.migrate(db_url).applied == []
    states = {row["state"] for row in migrator.status(db_url)}
    assert states == {"applied"}


def test_history_is_cfgctls_own_table(conn):
    kinds = conn.execute(
        "select kind, count(*) as n from cfg_private.schema_migrations group by kind order by kind"
    ).fetchall()
    assert {k["kind"] for k in kinds} == {"function", "migration", "policy"}
    assert conn.execute("select to_regclass('supabase_migrations.schema_migrations') as t").fetchone()["t"] is None


def test_edited_migration_is_refused_and_nothing_runs(db_url, project_copy):
    first = sorted((project_copy / "migrations").glob("*.sql"))[0]
    first.write_text(first.read_text() + "\ncreate table cfg.sneaky (id int);\n")
    with pytest.raises(CfgError, match="changed after it was applied") as caught:
        migrator.migrate(db_url, root=project_copy)
    assert caught.value.detail["file"] == first.name
    assert [r["state"] for r in migrator.status(db_url, root=project_copy) if r["name"] == first.name] == ["changed"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select to_regclass('cfg.sneaky')").fetchone()[0] is None


def test_changed_function_file_is_reapplied_and_new_migration_runs(db_url, project_copy):
    (project_copy / "functions" / "zz_extra.sql").write_text(
        "create or replace function cfg_private.answer() returns int\n"
        "language sql set search_path = '' as $$ select 42 $$;\n"
    )
    (project_copy / "migrations" / "29991231000000_later.sql").write_text(
        "create table cfg_private.later (id int primary key);\n"
    )
    report = migrator.migrate(db_url, root=project_copy)
    assert "migrations/29991231000000_later.sql" in report.applied
    assert "functions/zz_extra.sql" in report.applied
    # A migration ran, so every function and policy file was re-applied after it.
    assert "policies/tenancy.sql" in report.applied
    assert migrator.migrate(db_url, root=project_copy).applied == []

    (project_copy / "functions" / "zz_extra.sql").write_text(
        "create or replace function cfg_private.answer() returns int\n"
        "language sql set search_path = '' as $$ select 43 $$;\n"
    )
    assert migrator.migrate(db_url, root=project_copy).applied == ["functions/zz_extra.sql"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select cfg_private.answer()").fetchone()[0] == 43


def test_failing_migration_rolls_back_and_is_not_recorded(db_url, project_copy):
    (project_copy / "migrations" / "29991231000000_broken.sql").write_text(
        "create table cfg_private.half (id int);\nselect 1/0;\n"
    )
    with pytest.raises(CfgError, match="29991231000000_broken.sql failed: division by zero"):
        migrator.migrate(db_url, root=project_copy)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select to_regclass('cfg_private.half')").fetchone()[0] is None
        recorded = conn.execute(
            "select count(*) from cfg_private.schema_migrations where name like '%%broken%%'"
        ).fetchone()[0]
    assert recorded == 0


def test_badly_named_migration_is_refused(db_url, project_copy):
    (project_copy / "migrations" / "add_things.sql").write_text("select 1;\n")
    with pytest.raises(CfgError, match="must look like YYYYMMDDHHMMSS_name.sql"):
        migrator.migrate(db_url, root=project_copy)


def test_concurrent_migrate_waits_for_the_lock(db_url, project_copy):
    (project_copy / "migrations" / "29991231000000_later.sql").write_text(
        "create table cfg_private.later (id int primary key);\n"
    )
    holder = psycopg.connect(db_url, autocommit=True)
    holder.execute("select pg_advisory_lock(%s)", (migrator.MIGRATE_LOCK_KEY,))
    result: dict = {}

    def run():
        result["report"] = migrator.migrate(db_url, root=project_copy)
        result["finished"] = time.monotonic()

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive(), "migrate must wait while another migrate holds the lock"
    released = time.monotonic()
    holder.execute("select pg_advisory_unlock(%s)", (migrator.MIGRATE_LOCK_KEY,))
    holder.close()
    worker.join(timeout=30)
    assert result["finished"] >= released
    assert "migrations/29991231000000_later.sql" in result["report"].applied


def test_two_racing_migrates_apply_each_file_once(db_url, project_copy):
    (project_copy / "migrations" / "29991231000000_later.sql").write_text(
        "create table cfg_private.later (id int primary key);\n"
    )
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(migrator.migrate(db_url, root=project_copy)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    applied = [r.applied for r in reports]
    assert sorted(len(a) > 0 for a in applied) == [False, True]


def test_cron_jobs_are_scheduled_where_pg_cron_lives(pg_cluster):
    """The cluster's `postgres` database is cron.database_name: migrating it schedules jobs."""
    from sync_service import local_stack as local

    url = pg_cluster.db_url
    local.provision(url, seed=False)
    with psycopg.connect(url) as conn:
        jobs = {name: (schedule, command) for name, schedule, command in
                conn.execute("select jobname, schedule, command from cron.job")}
        version = conn.execute("select extversion from pg_extension where extname = 'pg_cron'").fetchone()[0]
    assert "cfgctl-audit-retention" in jobs
    assert "purge_audit_log" in jobs["cfgctl-audit-retention"][1]
    # The search index job: every second with pg_cron 1.5+, every minute with Debian's 1.4.
    every = "1 seconds" if tuple(int(p) for p in version.split("-")[0].split(".")) >= (1, 5) else "* * * * *"
    assert jobs["cfgctl-search-index"] == (every, "select cfg_private.index_search_queue()")


# Databases built by earlier releases must upgrade in place. Each commit's schema files
# (shim, migrations, functions, policies) build a fresh database with a saved config in
# it; today's files then migrate it, and the config must still work.
UPGRADE_FROM = {
    "457cd7994b890d7885b09256fdaf1ab71a64e9a9": "triggers calling cfg_private.in_versioned_write()",
    "1c9c3d91d64b85714ee60d1ca2d92a2180c6d68c": "the release before versions were built from the written content",
}


def _schema_files_at(commit: str, into) -> None:
    archive = subprocess.run(
        ["git", "-C", str(CHECKOUT), "archive", commit, "supabase/local", "migrations", "functions", "policies"],
        check=True, capture_output=True,
    ).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(into, filter="data")


@pytest.mark.parametrize("commit", list(UPGRADE_FROM))
def test_a_database_built_by_an_earlier_release_upgrades_in_place(pg_cluster, tmp_path, commit):
    from tests.support.cluster import drop_database
    from tests.support.world import create_user

    old = tmp_path / "old"
    _schema_files_at(commit, old)
    name = f"upgrade_{commit[:8]}"
    drop_database(pg_cluster, name)
    with psycopg.connect(pg_cluster.db_url, autocommit=True) as admin:
        admin.execute(f"create database {name}")
    url = pg_cluster.url_for(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for path in sorted((old / "supabase" / "local").glob("*.sql")):
                conn.execute(path.read_text())
        migrator.migrate(url, root=old)
        body = json.dumps({"sections": {"http": {"entries": {
            "port": {"value": 8080}, "api_key": {"value": "sk_old", "secret": True}}}}})
        with psycopg.connect(url, row_factory=dict_row) as conn:
            editor = create_user(conn, "editor@example.test")
            with acting_as(conn, editor) as cur:
                org = cur.execute("select id from cfg.create_org('Old', 'old')").fetchone()["id"]
                automation = cur.execute(
                    "select id from cfg.create_automation(%s, 'Api', 'api')", (org,)
                ).fetchone()["id"]
                cur.execute("select cfg.save_config(%s, 0, %s::jsonb)", (automation, body))

        local.apply_supabase_shim(url)
        report = migrator.migrate(url)
        assert "migrations/20261126090100_replaced_functions.sql" in report.applied
        assert {row["state"] for row in migrator.status(url)} == {"applied"}
        with psycopg.connect(url, row_factory=dict_row) as conn, acting_as(conn, editor) as cur:
            # The old version's snapshot has the hash today's code gives the same content:
            # saving it again records nothing; a change records version 2 with its keys.
            same = cur.execute("select cfg.save_config(%s, 1, %s::jsonb) as r", (automation, body)).fetchone()["r"]
            assert same["created"] is False
            changed = body.replace("8080", "9090")
            saved = cur.execute("select cfg.save_config(%s, 1, %s::jsonb) as r", (automation, changed)).fetchone()["r"]
            assert saved["version"] == 2
            history = cur.execute("select version, changes from cfg.config_history(%s)", (automation,)).fetchall()
            assert history == [
                {"version": 2, "changes": [{"section": "http", "key": "port", "change": "changed", "secret": False}]},
                {"version": 1, "changes": None},
            ]
            # The secret the old release stored in plaintext is in Vault now, whole: revealed
            # as it was, from the live entry and from the version that captured it.
            for version in (None, 1):
                revealed = cur.execute("select cfg.reveal_secret(%s, 'http', 'api_key', %s) ->> 'value' as v",
                                       (automation, version)).fetchone()["v"]
                assert revealed == "sk_old"
        # And nowhere in plaintext: the tables that held it were rewritten.
        dump = subprocess.run([str(local.PG_BIN / "pg_dump"), "--dbname", url],
                              check=True, capture_output=True, text=True).stdout
        assert "sk_old" not in dump
        # Nor in the tables' files: VACUUM FULL rewrote them without the dead tuples that held it.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("checkpoint")
            files = [pg_cluster.data_dir / r[0] for r in conn.execute(
                "select pg_relation_filepath(c) from unnest(array['cfg.entry_secrets', "
                "'cfg_private.version_secrets']::regclass[]) as c")]
        assert files and all(b"sk_old" not in f.read_bytes() for f in files)
    finally:
        drop_database(pg_cluster, name)


# The release before pg_cron moved to pg_catalog (its migrations created it in public).
CRON_IN_PUBLIC = "ff2907d2686812be161d2b4b24937c6bb33e667d"


@pytest.fixture
def cron_cluster():
    """A cluster of its own: pg_cron can only live in cron.database_name (`postgres`),
    and this test rebuilds that database the old way."""
    base = Path(tempfile.mkdtemp(prefix="cfgctl-cron-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    cluster = local.Cluster(data_dir=base / "pg" / "data", port=free_port(), fast=True)
    cluster.init()
    cluster.start()
    yield cluster
    cluster.destroy()
    shutil.rmtree(base, ignore_errors=True)


def test_pg_cron_in_public_moves_to_pg_catalog_with_its_jobs(cron_cluster, tmp_path):
    old = tmp_path / "old"
    _schema_files_at(CRON_IN_PUBLIC, old)
    url = cron_cluster.db_url
    with psycopg.connect(url, autocommit=True) as conn:
        for path in sorted((old / "supabase" / "local").glob("*.sql")):
            conn.execute(path.read_text())
    migrator.migrate(url, root=old)
    jobs_sql = ("select jobid, jobname, schedule, command, nodename, nodeport, database, username, active "
                "from cron.job order by jobid")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(
            "select extnamespace::regnamespace::text from pg_extension where extname = 'pg_cron'"
        ).fetchone() == ("public",)
        # A user's own jobs too: another role's, paused, and one with a run recorded.
        conn.execute("select cron.schedule_in_database('nightly-vacuum', '5 4 * * 1', 'vacuum', "
                     "'postgres', 'supabase_admin', false)")
        conn.execute("select cron.schedule('0 * * * *', 'select 1')")  # unnamed
        conn.execute("insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, "
                     "status, return_message, start_time, end_time) "
                     "select jobid, 7, 42, 'postgres', 'postgres', command, 'succeeded', '1 row', now(), now() "
                     "from cron.job where jobname = 'cfgctl-audit-retention'")
        jobs = conn.execute(jobs_sql).fetchall()
        runs = conn.execute("select * from cron.job_run_details").fetchall()
    assert len(jobs) == 4

    local.apply_supabase_shim(url)
    report = migrator.migrate(url)
    assert "migrations/20261129110000_cron_in_pg_catalog.sql" in report.applied
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(
            "select extnamespace::regnamespace::text from pg_extension where extname = 'pg_cron'"
        ).fetchone() == ("pg_catalog",)
        # Every job kept as it was (later migrations may schedule jobs of their own).
        kept = conn.execute(jobs_sql).fetchall()
        assert [j for j in kept if j[0] in {k[0] for k in jobs}] == jobs
        assert conn.execute("select * from cron.job_run_details").fetchall() == runs
        # New jobs and runs do not collide with the kept ids.
        new_id = conn.execute("select cron.schedule('later', '1 1 * * *', 'select 2')").fetchone()[0]
        assert new_id > max(j[0] for j in jobs)
        assert conn.execute("select nextval('cron.runid_seq')").fetchone()[0] > 7


# The release before this one (main when issue 8 began).
PREVIOUS_RELEASE = "7cff269"

CATALOGUE = """
select 'function ' || p.oid::regprocedure::text || ' definer=' || p.prosecdef
       || ' config=' || coalesce(array_to_string(p.proconfig, ','), '') || ' acl=' || coalesce(p.proacl::text, '')
       || ' body=' || md5(p.prosrc) as item
from pg_proc p where p.pronamespace::regnamespace::text in ('cfg', 'cfg_private')
union all
select 'column ' || c.oid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where c.relnamespace::regnamespace::text in ('cfg', 'cfg_private') and c.relkind in ('r', 'v', 'S')
union all
select 'table ' || c.oid::regclass::text || ' rls=' || c.relrowsecurity || ' acl=' || coalesce(c.relacl::text, '')
from pg_class c where c.relnamespace::regnamespace::text in ('cfg', 'cfg_private') and c.relkind = 'r'
union all
select 'constraint ' || conrelid::regclass::text || '.' || conname || ' ' || pg_get_constraintdef(oid)
from pg_constraint where connamespace::regnamespace::text in ('cfg', 'cfg_private')
union all
select 'index ' || indexdef from pg_indexes where schemaname in ('cfg', 'cfg_private')
union all
select 'trigger ' || pg_get_triggerdef(t.oid) from pg_trigger t
join pg_class c on c.oid = t.tgrelid
where not t.tgisinternal and c.relnamespace::regnamespace::text in ('cfg', 'cfg_private', 'auth')
union all
select 'policy ' || schemaname || '.' || tablename || '.' || policyname || ' ' || cmd || ' ' || roles::text
       || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '')
from pg_policies where schemaname in ('cfg', 'cfg_private')
union all
select 'type ' || t.oid::regtype::text || ' ' || coalesce((select string_agg(e.enumlabel, ',' order by e.enumsortorder)
       from pg_enum e where e.enumtypid = t.oid), '')
from pg_type t where t.typnamespace::regnamespace::text in ('cfg', 'cfg_private') and t.typtype = 'e'
union all
select 'publication ' || schemaname || '.' || tablename from pg_publication_tables where pubname = 'supabase_realtime'
union all
select 'event type ' || type from cfg_private.event_types
"""


def catalogue(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(CATALOGUE)}


def test_an_upgraded_database_has_the_same_catalogue_as_a_new_one(pg_cluster, template_url, tmp_path):
    """Migrations and function files agree: a database the previous release built, then
    migrated, ends up exactly like one built today (no function left behind, no
    constraint, index, trigger, policy or grant missing)."""
    from tests.support.cluster import drop_database

    old = tmp_path / "old"
    _schema_files_at(PREVIOUS_RELEASE, old)
    name = "upgrade_catalogue"
    drop_database(pg_cluster, name)
    with psycopg.connect(pg_cluster.db_url, autocommit=True) as admin:
        admin.execute(f"create database {name}")
    url = pg_cluster.url_for(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for path in sorted((old / "supabase" / "local").glob("*.sql")):
                conn.execute(path.read_text())
        migrator.migrate(url, root=old)
        local.apply_supabase_shim(url)
        migrator.migrate(url)
        upgraded, fresh = catalogue(url), catalogue(template_url)
        assert sorted(upgraded - fresh) == []
        assert sorted(fresh - upgraded) == []
    finally:
        drop_database(pg_cluster, name)
