"""cfgctl as someone else installs it: the wheel, in a fresh virtualenv outside any checkout,
migrates an empty Supabase database; where each install or checkout keeps its state; and
the packages import one way only (cli -> sync_service)."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import psycopg
import pytest

from sync_service import local_stack, migrate, settings

REPO = Path(__file__).resolve().parents[2]
# What a build needs: the packages and the schema folders they ship.
SOURCES = ("pyproject.toml", "README.md", "cli", "sync_service", "migrations", "functions", "policies",
           "supabase", "seed.sql")
SCHEMA_GLOBS = ("migrations/*.sql", "functions/*.sql", "policies/*.sql", "supabase/local/*.sql",
                "supabase/config.toml", "supabase/types/*.ts", "seed.sql")


def copy_checkout(into: Path) -> Path:
    into.mkdir(parents=True)
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, into / name)
    return into


def clean_env(**extra: str) -> dict:
    """The environment of someone who never saw this checkout: no CFGCTL_*, no PYTHONPATH."""
    drop = ("CFGCTL_", "PYTHON", "VIRTUAL_ENV", "XDG_STATE_HOME")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | extra


def run(*cmd, cwd: Path, env: dict, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def expected_data_dir(state_dir: Path) -> str:
    if os.geteuid() == 0:
        owner = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:12]
        return f"/var/lib/cfgctl/{owner}/pgdata"
    return str(state_dir / "pgdata")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of this checkout (the build writes build/ and *.egg-info
    next to its sources; the checkout stays clean)."""
    base = tmp_path_factory.mktemp("wheel")
    src = copy_checkout(base / "src")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", src,
                cwd=base, env=clean_env())
    assert built.returncode == 0, built.stderr
    (path,) = (base / "dist").glob("cfgctl-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv (no system site-packages) with the wheel pip-installed into it.
    Its dependencies are this test run's own (a .pth line naming our site-packages, which
    holds no cfgctl code: ours is an editable install whose hook that line does not run),
    which keeps the test offline and ~30 s faster. CFGCTL_TEST_WHEEL_DEPS=index installs
    them from the package index instead, exactly as a user's `pip install` does."""
    env_dir = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    from_index = os.environ.get("CFGCTL_TEST_WHEEL_DEPS") == "index"
    done = run(sys.executable, "-m", "pip", "--python", python, "install", "-q",
               *([] if from_index else ["--no-deps"]), wheel, cwd=env_dir, env=clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    if not from_index:
        site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                   cwd=env_dir, env=clean_env()).stdout.strip()
        (Path(site) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def test_the_wheel_holds_every_module_and_schema_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(REPO)) for pkg in ("cli", "sync_service") for p in (REPO / pkg).rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set(), "list the new subpackage in pyproject.toml [tool.setuptools] packages"
    schema = {f"sync_service/sql/{p.relative_to(REPO)}" for g in SCHEMA_GLOBS for p in REPO.glob(g)}
    assert schema - names == set()
    # Nothing else of the repository root (tests, the README, build files) rides along.
    assert {n for n in names if n.startswith("sync_service/sql/")} == schema


def test_pip_installed_cfgctl_migrates_an_empty_supabase_database(installed, pg_cluster, tmp_path):
    name = f"pkg_{os.getpid()}"
    with psycopg.connect(pg_cluster.db_url, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name}")
    url = pg_cluster.url_for(name)
    python, cfgctl = installed / "bin" / "python", installed / "bin" / "cfgctl"
    env = clean_env(HOME=str(tmp_path))
    try:
        where = run(python, "-c", "from sync_service import settings as s; print(s.SQL_ROOT, s.CHECKOUT)",
                    cwd=tmp_path, env=env)
        sql_root, checkout = where.stdout.split()
        assert Path(sql_root).is_relative_to(installed) and checkout == "None", where.stdout + where.stderr

        # What a hosted Supabase project already has (auth, roles, extensions, realtime),
        # from the shim the wheel ships.
        shim = run(python, "-c", f"from sync_service import local_stack; local_stack.apply_supabase_shim({url!r})",
                   cwd=tmp_path, env=env)
        assert shim.returncode == 0, shim.stderr

        migrated = run(cfgctl, "db", "migrate", "--db-url", url, "--json", cwd=tmp_path, env=env)
        assert migrated.returncode == 0, migrated.stderr
        files = migrate.project_files()
        assert len(json.loads(migrated.stdout)["applied"]) == len(files)

        status = run(cfgctl, "db", "status", "--db-url", url, "--json", cwd=tmp_path, env=env)
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)
        assert [(r["kind"], r["name"]) for r in rows] == [(f.kind, f.name) for f in files]
        assert {r["state"] for r in rows} == {"applied"}
        again = run(cfgctl, "db", "migrate", "--db-url", url, "--json", cwd=tmp_path, env=env)
        assert json.loads(again.stdout)["applied"] == []

        seeded = run(python, "-c", f"from sync_service import local_stack; local_stack.apply_seed({url!r})",
                     cwd=tmp_path, env=env)
        assert seeded.returncode == 0, seeded.stderr
        with psycopg.connect(url) as conn:
            signature = "cfg.save_config(uuid, integer, jsonb, text, boolean)"
            assert conn.execute("select to_regprocedure(%s) is not null", (signature,)).fetchone() == (True,)
            assert conn.execute("select slug from cfg.orgs").fetchall() == [("acme",)]
    finally:
        with psycopg.connect(pg_cluster.db_url, autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def test_an_installed_cfgctl_keeps_its_state_per_user(installed, tmp_path):
    home = tmp_path / "home"
    cfgctl = installed / "bin" / "cfgctl"
    shown = run(cfgctl, "local", "status", "--json", cwd=tmp_path, env=clean_env(HOME=str(home)))
    status = json.loads(shown.stdout)
    state_dir = home / ".local" / "state" / "cfgctl"
    assert (status["state_dir"], status["data_dir"]) == (str(state_dir), expected_data_dir(state_dir))
    assert not status["running"]

    xdg = tmp_path / "xdg"
    shown = run(cfgctl, "local", "status", "--json", cwd=tmp_path,
                env=clean_env(HOME=str(home), XDG_STATE_HOME=str(xdg)))
    assert json.loads(shown.stdout)["state_dir"] == str(xdg / "cfgctl")


def local_status(checkout: Path) -> dict:
    """`cfgctl local status` run from the checkout's own code (as `.venv/bin/cfgctl` or
    `python -m` there would)."""
    shown = run(sys.executable, "-c", "from cli.main import main; main()", "local", "status", "--json",
                cwd=checkout, env=clean_env())
    assert shown.stderr == "" and shown.returncode in (0, 1), shown.stderr
    return json.loads(shown.stdout)


def test_a_copied_checkout_uses_its_own_state_and_data_directory(tmp_path):
    original = copy_checkout(tmp_path / "original")
    # The original's stack has run: its state.json names its data directory and port.
    local_stack.save_state(original / ".cfgctl", {"data_dir": str(tmp_path / "original-data"), "port": 55432})
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    assert (copy / ".cfgctl" / "state.json").exists()

    mine = local_status(original)
    theirs = local_status(copy)
    assert (mine["state_dir"], mine["data_dir"], mine["port"]) == (
        str(original / ".cfgctl"), str(tmp_path / "original-data"), 55432)
    assert (theirs["state_dir"], theirs["data_dir"], theirs["port"]) == (
        str(copy / ".cfgctl"), expected_data_dir(copy / ".cfgctl"), settings.DEFAULT_PG_PORT)
    assert expected_data_dir(copy / ".cfgctl") != expected_data_dir(original / ".cfgctl")


def test_a_checkout_reads_its_own_schema_files():
    """Tests, `python -m` and the editable install read the folders in place."""
    assert settings.CHECKOUT == REPO and settings.SQL_ROOT == REPO
    assert settings.default_state_dir() == REPO / ".cfgctl"


def test_sync_service_never_imports_cli():
    offenders = []
    for path in (REPO / "sync_service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "cli"]
    assert offenders == []
