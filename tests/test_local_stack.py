"""`cfgctl local …` end to end: a second embedded stack on a spare port, driven by the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import free_port

from cli import local
from sync_service.db import CfgError


def cfgctl(*args: str, env: dict) -> subprocess.CompletedProcess:
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
    cfgctl("local", "stop", env=env)
    shutil.rmtree(base, ignore_errors=True)


def test_start_status_stop_and_start_again(stack_env):
    started = cfgctl("local", "start", "--json", env=stack_env)
    assert started.returncode == 0, started.stderr
    report = json.loads(started.stdout)
    assert report["running"] is True
    assert report["db_url"].endswith(f":{stack_env['CFGCTL_PG_PORT']}/postgres")
    assert report["migrations"]["changed"] is True

    again = cfgctl("local", "start", "--json", env=stack_env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["migrations"]["applied"] == []

    status = json.loads(cfgctl("local", "status", "--json", env=stack_env).stdout)
    assert status == status | {"running": True, "data_dir": stack_env["CFGCTL_DATA_DIR"]}

    # The seed is there and the stack answers as a seeded user.
    listed = cfgctl("automation", "list", "acme", "--as", "viewer@acme.test", "--json", env=stack_env)
    assert {a["slug"] for a in json.loads(listed.stdout)} == {"billing-api", "nightly-report", "edge-gateway"}

    assert cfgctl("local", "stop", env=stack_env).returncode == 0
    stopped = cfgctl("local", "status", "--json", env=stack_env)
    assert json.loads(stopped.stdout)["running"] is False
    down = cfgctl("automation", "list", "acme", "--as", "viewer@acme.test", env=stack_env)
    assert down.returncode == 1 and "cfgctl local start" in down.stderr


def test_missing_packages_are_named(monkeypatch):
    monkeypatch.setattr(local, "REQUIRED_FILES", [(Path("/nonexistent/pg_cron.control"), "postgresql-15-cron")])
    with pytest.raises(CfgError, match="apt-get install -y postgresql-15-cron"):
        local.check_packages()
