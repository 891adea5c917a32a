"""External vaults in tests: backends and bindings made through the RPCs, and the
sync worker run in-process (its own event loop in a thread). The peers themselves:
tests/support/moto.py (a real moto_server) and tests/support/scripted_vault.py (a
scripted HashiCorp Vault KV v2 exchange)."""

from __future__ import annotations

import json

import psycopg

from sync_service.db import Identity, acting_as
from sync_service.workers.vaults import VaultSync, VaultSyncSettings
from tests.support.workers import WorkerThread

# moto accepts any key pair; these are planted so that tests can search for them.
AWS_CREDENTIALS = json.dumps({"access_key_id": "AKIAPLANTEDKEY000001", "secret_access_key": "planted-aws-secret-0001"})


def add_backend(conn: psycopg.Connection, who: Identity, org_id, name: str, kind: str = "aws_sm",
                config: dict | None = None, credentials: str = AWS_CREDENTIALS) -> dict:
    config = config if config is not None else {"region": "eu-west-1"}
    with acting_as(conn, who) as cur:
        return cur.execute("select * from cfg.add_vault_backend(%s, %s, %s, %s::jsonb, %s::jsonb)",
                           (org_id, name, kind, json.dumps(config), credentials)).fetchone()


def bind(conn: psycopg.Connection, who: Identity, automation_id, backend_id, ref: str, mode: str = "reference",
         environment_id=None, section: str = "http", key: str = "api_key") -> dict:
    with acting_as(conn, who) as cur:
        return cur.execute("select * from cfg.bind_secret(%s, %s, %s, %s, %s, %s, %s)",
                           (automation_id, section, key, backend_id, ref, mode, environment_id)).fetchone()


def fast_settings(**overrides) -> VaultSyncSettings:
    return VaultSyncSettings(**({"poll_interval": 0.05, "check_every": 3600.0} | overrides))


class ThreadSync(WorkerThread):
    """The VaultSync worker on its own event loop in a thread, for a `with` block."""

    def __init__(self, db_url: str, settings: VaultSyncSettings | None = None) -> None:
        super().__init__(VaultSync(db_url, settings or fast_settings(), instance="test"))
