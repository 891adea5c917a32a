"""Throwaway databases on the test run's cluster, cloned from the migrated template."""

from __future__ import annotations

import socket

import psycopg

from sync_service import local_stack as local

TEMPLATE = "cfgctl_template"
# TEMPLATE with the small world of tests/support/world.py in it (tests/conftest.py).
WORLD_TEMPLATE = "cfgctl_world_template"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_database(cluster: local.Cluster, name: str, template: str = TEMPLATE) -> str:
    with psycopg.connect(cluster.db_url, autocommit=True) as admin:
        admin.execute(f"create database {name} template {template}")
    return cluster.url_for(name)


def drop_database(cluster: local.Cluster, name: str) -> None:
    with psycopg.connect(cluster.db_url, autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
