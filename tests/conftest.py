"""One throwaway PostgreSQL cluster per test run; each test gets a fresh database
cloned from a migrated template (CREATE DATABASE … TEMPLATE, ~50 ms)."""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service import local_stack as local
from sync_service.db import SERVICE, Identity, acting_as

TEMPLATE = "cfgctl_template"
_counter = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def create_database(cluster: local.Cluster, name: str) -> str:
    with psycopg.connect(cluster.db_url, autocommit=True) as admin:
        admin.execute(f"create database {name} template {TEMPLATE}")
    return cluster.url_for(name)


def drop_database(cluster: local.Cluster, name: str) -> None:
    with psycopg.connect(cluster.db_url, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def db_url(pg_cluster, template_url) -> str:
    name = f"test_{os.getpid()}_{next(_counter)}"
    url = create_database(pg_cluster, name)
    yield url
    drop_database(pg_cluster, name)


@pytest.fixture
def conn(db_url):
    """A superuser connection (like a DBA's). Act as users with `acting_as`."""
    with psycopg.connect(db_url, row_factory=dict_row) as c:
        yield c


# =============================================================================
# A small world: two orgs, a user per role in org A, an admin in org B.
# =============================================================================


@dataclass
class World:
    org_a: UUID
    org_b: UUID
    users: dict[str, Identity] = field(default_factory=dict)
    automation_a: UUID | None = None
    automation_b: UUID | None = None
    section_a: UUID | None = None
    entry_a: UUID | None = None
    secret_entry_a: UUID | None = None

    def __getitem__(self, name: str) -> Identity:
        return self.users[name]


def create_user(conn: psycopg.Connection, email: str) -> Identity:
    """A confirmed account, as GoTrue's sign-up writes it when confirmations are off."""
    row = conn.execute(
        "insert into auth.users (email, email_confirmed_at) values (%s, now()) returning id", (email,)
    ).fetchone()
    conn.commit()
    return Identity(role="authenticated", user_id=row["id"], email=email)


def add_member(conn: psycopg.Connection, admin: Identity, org_id: UUID, member: Identity,
               role: str) -> None:
    """Membership the only way the API allows: the admin invites, the member accepts."""
    with acting_as(conn, admin) as cur:
        invitation = cur.execute("select id from cfg.invite_member(%s, %s, %s)",
                                 (org_id, member.email, role)).fetchone()["id"]
    with acting_as(conn, member) as cur:
        cur.execute("select cfg.accept_invitation(%s)", (invitation,))


def build_world(conn: psycopg.Connection) -> World:
    users = {
        name: create_user(conn, f"{name}@example.test")
        for name in ("admin", "editor", "viewer", "other_admin", "outsider")
    }
    with acting_as(conn, users["admin"]) as cur:
        org_a = cur.execute("select id from cfg.create_org('Org A', 'org-a')").fetchone()["id"]
    for name in ("editor", "viewer"):
        add_member(conn, users["admin"], org_a, users[name], name)
    with acting_as(conn, users["admin"]) as cur:
        automation_a = cur.execute(
            "select id from cfg.create_automation(%s, 'Billing', 'billing')", (org_a,)
        ).fetchone()["id"]
        section_a = cur.execute(
            "insert into cfg.config_sections (org_id, automation_id, name) "
            "values (%s, %s, 'http') returning id", (org_a, automation_a)
        ).fetchone()["id"]
        entry_a = cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
            "values (%s, %s, %s, 'port', '8080') returning id", (org_a, automation_a, section_a)
        ).fetchone()["id"]
        secret_entry_a = cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
            "values (%s, %s, %s, 'api_key', '\"sk_live_hunter2\"', true) returning id",
            (org_a, automation_a, section_a),
        ).fetchone()["id"]
    with acting_as(conn, users["other_admin"]) as cur:
        org_b = cur.execute("select id from cfg.create_org('Org B', 'org-b')").fetchone()["id"]
        automation_b = cur.execute(
            "select id from cfg.create_automation(%s, 'Other', 'other')", (org_b,)
        ).fetchone()["id"]
    users["service"] = SERVICE
    users["anon"] = Identity(role="anon")
    return World(org_a, org_b, users, automation_a, automation_b, section_a, entry_a, secret_entry_a)


@pytest.fixture
def world(conn) -> World:
    return build_world(conn)
