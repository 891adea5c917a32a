"""`cfgctl local …` end to end: a second embedded stack on a spare port, driven by the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from cli import stack
from sync_service import local_stack as local
from sync_service.db import CfgError
from tests.support.cli import run_cfgctl
from tests.support.cluster import free_port


def cfgctl_process(*args: str, env: dict) -> subprocess.CompletedProcess:
    """The CLI in a process of its own: the stack `local start` starts must outlive the
    call. The other commands run in-process (run_cfgctl): ~1.5 s less each."""
    return subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )


@pytest.fixture
def stack_env():
    base = Path(tempfile.mkdtemp(prefix="cfgctl-stack-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    env = os.environ | {
        "CFGCTL_PG_PORT": str(free_port()),
        "CFGCTL_STATE_DIR": str(base / "state"),
        "CFGCTL_DATA_DIR": str(base / "pg" / "data"),
    }
    env.pop("CFGCTL_DB_URL", None)
    yield env
    run_cfgctl("local", "stop", env=env)
    shutil.rmtree(base, ignore_errors=True)


def test_start_status_stop_and_start_again(stack_env):
    started = cfgctl_process("local", "start", "--json", env=stack_env)
    assert started.returncode == 0, started.stderr
    report = json.loads(started.stdout)
    assert report["running"] is True
    assert report["db_url"].endswith(f":{stack_env['CFGCTL_PG_PORT']}/postgres")
    assert report["migrations"]["changed"] is True

    again = cfgctl_process("local", "start", "--json", env=stack_env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["migrations"]["applied"] == []

    status = json.loads(run_cfgctl("local", "status", "--json", env=stack_env).out)
    assert status == status | {"running": True, "data_dir": stack_env["CFGCTL_DATA_DIR"]}

    # The seed is there and the stack answers as a seeded user.
    listed = run_cfgctl("automation", "list", "acme", "--as", "viewer@acme.test", "--json", env=stack_env)
    assert {a["slug"] for a in json.loads(listed.out)} == {"billing-api", "nightly-report", "edge-gateway"}

    assert run_cfgctl("local", "stop", env=stack_env).code == 0
    stopped = run_cfgctl("local", "status", "--json", env=stack_env)
    assert json.loads(stopped.out)["running"] is False
    down = run_cfgctl("automation", "list", "acme", "--as", "viewer@acme.test", env=stack_env)
    assert down.code == 1 and "cfgctl local start" in down.err


def test_missing_packages_are_named(monkeypatch):
    monkeypatch.setattr(local, "REQUIRED_FILES", [(Path("/nonexistent/pg_cron.control"), "postgresql-15-cron")])
    with pytest.raises(CfgError, match="apt-get install -y postgresql-15-cron"):
        local.check_packages()


# =============================================================================
# A PostgreSQL minor upgrade under a running stack (Debian security updates), and
# clusters created before the stack needed a setting. Packages cannot be downgraded
# here, so "the postmaster is older than the installed binaries" is simulated by
# making the probes see a newer installed server; restarts and settings are real.
# =============================================================================


@pytest.fixture
def cluster():
    base = Path(tempfile.mkdtemp(prefix="cfgctl-stack-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    c = local.Cluster(data_dir=base / "pg" / "data", port=free_port(), fast=True)
    c.init()
    c.start()
    yield c
    c.destroy()
    shutil.rmtree(base, ignore_errors=True)


def status(monkeypatch, cluster: local.Cluster, *args: str):
    monkeypatch.setattr(stack, "_cluster", lambda port: cluster)
    return run_cfgctl("local", "status", *args)


def test_a_current_cluster_is_left_alone(cluster, monkeypatch):
    pid = cluster.postmaster_pid()
    assert cluster.server_version() == local.installed_version()
    assert not cluster.stale_binaries()
    assert cluster.start() is None
    assert cluster.postmaster_pid() == pid
    shown = json.loads(status(monkeypatch, cluster, "--json").out)
    assert shown == shown | {"running": True, "stale_binaries": False, "settings_current": True, "fix": None}
    assert status(monkeypatch, cluster).code == 0


def test_start_restarts_a_postmaster_older_than_the_installed_binaries(cluster, monkeypatch):
    with psycopg.connect(cluster.db_url, autocommit=True) as conn:
        conn.execute("create table kept (id int); insert into kept values (1)")
    pid = cluster.postmaster_pid()
    # Simulated: the installed package is newer than the server that runs.
    monkeypatch.setattr(local, "installed_version", lambda: "15.99 (simulated newer package)")

    shown = json.loads(status(monkeypatch, cluster, "--json").out)
    assert shown == shown | {"running": True, "stale_binaries": True, "fix": "cfgctl local start",
                             "installed_version": "15.99 (simulated newer package)"}
    human = status(monkeypatch, cluster)
    assert human.code == 1
    assert "is installed" in human.out and "cfgctl local start" in human.out

    assert cluster.start() == "binaries upgraded"
    assert cluster.postmaster_pid() != pid
    with psycopg.connect(cluster.db_url) as conn:
        assert conn.execute("select id from kept").fetchall() == [(1,)]


def test_a_replaced_executable_is_stale_even_when_the_server_cannot_answer(cluster, monkeypatch, tmp_path):
    """apt renames the new postgres over the old one; the postmaster keeps running the old
    file. Simulated: the "installed" path points at a copy (another file than the running one)."""
    assert not cluster.executable_replaced()
    copy = tmp_path / "postgres"
    shutil.copy2(local.POSTGRES, copy)
    monkeypatch.setattr(local, "POSTGRES", copy)
    monkeypatch.setattr(local.Cluster, "server_version", lambda self: None)  # e.g. plpgsql.so fails to load
    assert cluster.executable_replaced()
    assert cluster.stale_binaries()


# What `cfgctl local start` appended to postgresql.conf before 15.19 added output_plugin_libraries.
OLD_SETTINGS = """
# cfgctl embedded stack
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
max_connections = 200
log_min_messages = warning
fsync = off
synchronous_commit = off
full_page_writes = off
"""


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_start_gives_an_existing_cluster_the_settings_it_lacks(cluster, running):
    cluster.stop()
    conf = cluster.data_dir / "postgresql.conf"
    conf.write_text(conf.read_text().replace(local.INCLUDE_LINE, "") + OLD_SETTINGS.format(
        socket_dir=cluster.socket_dir))
    cluster.settings_file.unlink()
    cluster._pg_ctl("start")  # as the old release did: no settings written
    slot = "select pg_create_logical_replication_slot('realtime', 'wal2json')"
    with psycopg.connect(cluster.db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="output_plugin_libraries"):
            conn.execute(slot)
    assert not cluster.settings_current()
    if not running:
        cluster.stop()

    assert cluster.start() == ("settings changed" if running else None)
    assert cluster.settings_current()
    assert "# cfgctl embedded stack" not in conf.read_text()
    with psycopg.connect(cluster.db_url, autocommit=True) as conn:
        conn.execute(slot)
        # Decoding stops at the flushed WAL and this test cluster commits asynchronously.
        conn.execute("set synchronous_commit = on")
        conn.execute("create table t (id int); insert into t values (1)")
        changes = conn.execute("select data from pg_logical_slot_get_changes('realtime', null, null, "
                               "'format-version', '2')").fetchall()
        assert [json.loads(d) for (d,) in changes if '"I"' in d][0]["table"] == "t"
        assert conn.execute("show wal_level").fetchone() == ("logical",)
