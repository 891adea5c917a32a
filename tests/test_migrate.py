"""The migration runner: idempotent, forward-only, serialised by an advisory lock."""

from __future__ import annotations

import shutil
import threading
import time

import psycopg
import pytest

from sync_service import migrate as migrator
from sync_service.db import CfgError
from sync_service.settings import PROJECT_ROOT


@pytest.fixture
def project_copy(tmp_path):
    """A copy of the schema files that a test may edit."""
    for folder in ("migrations", "functions", "policies"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder)
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
    from cli import local

    url = pg_cluster.db_url
    local.provision(url, seed=False)
    with psycopg.connect(url) as conn:
        jobs = {name: (schedule, command) for name, schedule, command in
                conn.execute("select jobname, schedule, command from cron.job")}
    assert "cfgctl-audit-retention" in jobs
    assert "purge_audit_log" in jobs["cfgctl-audit-retention"][1]
