"""The fixtures every area uses. One throwaway PostgreSQL cluster per test run; each test
gets a fresh database cloned from a migrated template (CREATE DATABASE … TEMPLATE, ~50 ms);
a test that asks for `world` gets a clone of a second template that holds the world already.

Tests are grouped by area (tests/<area>/); what they share lives in tests/support/:
act.py (act as a user, capture the outcome), rls.py (the RLS matrix engine), cli.py (the
CLI runner), world.py, cluster.py, and the local peers of an area (webhooks.py, versioning.py)."""

from __future__ import annotations

import copy
import itertools
import os
import tempfile
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service import local_stack as local
from tests.support.cli import Run, run_cfgctl
from tests.support.cluster import TEMPLATE, WORLD_TEMPLATE, create_database, drop_database, free_port
from tests.support.world import World, build_world

# Local peers whose fixtures any area may use: moto_server (AWS) and the scripted Vault KV v2.
pytest_plugins = ("tests.support.moto", "tests.support.scripted_vault", "tests.support.scripted_storage")

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    local.check_packages(for_tests=True)
    # /var/tmp: the postgres OS user must reach it when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="cfgctl-test-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    cluster = local.Cluster(data_dir=base / "pg" / "data", port=free_port(), fast=True)
    cluster.init()
    cluster.start()
    yield cluster
    cluster.destroy()
    os.rmdir(base) if base.exists() and not any(base.iterdir()) else None


@pytest.fixture(scope="session")
def template_url(pg_cluster) -> str:
    with psycopg.connect(pg_cluster.db_url, autocommit=True) as admin:
        admin.execute(f"create database {TEMPLATE}")
    url = pg_cluster.url_for(TEMPLATE)
    local.provision(url, seed=False)
    return url


@pytest.fixture(scope="session")
def world_template(pg_cluster, template_url) -> World:
    """The world, built once per run into WORLD_TEMPLATE. Building it in every test cost
    ~0.4 s of server CPU (most of it the session's first Vault encryption, in plpython)."""
    url = create_database(pg_cluster, WORLD_TEMPLATE)
    with psycopg.connect(url, row_factory=dict_row) as c:
        world = build_world(c)
        c.commit()
    return world


@pytest.fixture
def db_url(request, pg_cluster, template_url) -> str:
    template = TEMPLATE
    if "world" in request.fixturenames:  # directly or through another fixture
        request.getfixturevalue("world_template")
        template = WORLD_TEMPLATE
    name = f"test_{os.getpid()}_{next(_counter)}"
    url = create_database(pg_cluster, name, template)
    yield url
    drop_database(pg_cluster, name)


@pytest.fixture
def conn(db_url):
    """A superuser connection (like a DBA's). Act as users with `acting_as`."""
    with psycopg.connect(db_url, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def world(conn, world_template) -> World:
    """The world of tests/support/world.py, already in this test's database (db_url)."""
    with conn.transaction():
        cloned = conn.execute("select 1 from cfg.orgs where id = %s", (world_template.org_a,)).fetchone()
    # A database made before the test asked for the world (getfixturevalue) builds its own.
    return copy.deepcopy(world_template) if cloned else build_world(conn)


@pytest.fixture
def cfgctl(db_url):
    """cfgctl(*args, input=None) -> Run: the CLI against this test's database."""

    def run(*args: str, input: str | None = None) -> Run:
        return run_cfgctl(*args, env={"CFGCTL_DB_URL": db_url}, input=input)

    return run
