"""The set-based secret steps of a save and a rollback (issue 10, item 6: secrets cheap
enough on save and rollback). Each save below writes several secrets in one statement:
tokens computed in one pass over the content, the reference check and the Vault clean-up
run once per statement, not once per row. These tests hold the behaviour those steps keep."""

from __future__ import annotations

import json

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.vaults import add_backend, bind


def call(conn, who, sql, params=()):
    with acting_as(conn, who) as cur:
        return cur.execute(sql, params).fetchone()


def head(conn, automation_id) -> int:
    v = conn.execute("select coalesce(max(version), 0) as v from cfg.config_versions where automation_id = %s",
                     (automation_id,)).fetchone()["v"]
    conn.commit()
    return v


def save(conn, who, automation_id, content: dict) -> dict:
    return call(conn, who, "select cfg.save_config(%s, %s, %s::jsonb) as r",
                (automation_id, head(conn, automation_id), json.dumps(content)))["r"]


def reveal(conn, who, automation_id, key, version=None):
    return call(conn, who, "select cfg.reveal_secret(%s, 'http', %s, %s) as r",
                (automation_id, key, version))["r"]["value"]


def content(api_key, db_password=None, port=8080, empty_section=True) -> dict:
    entries = {"port": {"value": port}, "api_key": {"secret": True}}
    if api_key is not None:
        entries["api_key"]["value"] = api_key
    entries["db_password"] = {"secret": True} if db_password is None else {"value": db_password, "secret": True}
    sections = {"http": {"entries": entries}}
    if empty_section:
        sections["notes"] = {"description": "no entries key at all", "position": 3}
    return {"sections": sections}


def state(conn, automation_id) -> dict:
    rows = conn.execute(
        "select ce.key, es.secret_id, es.token from cfg.entry_secrets es join cfg.config_entries ce on ce.id = es.id "
        "where ce.automation_id = %s order by ce.key", (automation_id,)).fetchall()
    conn.commit()
    return {r["key"]: (r["secret_id"], r["token"]) for r in rows}


def vault_count(conn) -> int:
    n = conn.execute("select count(*) as n from vault.secrets").fetchone()["n"]
    conn.commit()
    return n


def test_several_secrets_in_one_save_each_get_their_value_and_sections_without_entries_stay(conn, world):
    a = world.automation_a
    saved = save(conn, world["editor"], a, content("sk_one", "pw_one"))
    assert reveal(conn, world["editor"], a, "api_key") == "sk_one"
    assert reveal(conn, world["editor"], a, "db_password") == "pw_one"
    snapshot = conn.execute("select content from cfg.config_versions where id = %s",
                            (saved["version_id"],)).fetchone()["content"]
    conn.commit()
    assert snapshot["sections"]["notes"] == {"description": "no entries key at all", "position": 3, "entries": {}}
    api_key, db_password = (snapshot["sections"]["http"]["entries"][k] for k in ("api_key", "db_password"))
    assert set(api_key) == set(db_password) == {"secret", "digest", "description"}
    assert api_key["digest"] != db_password["digest"]
    assert "sk_one" not in json.dumps(snapshot) and "pw_one" not in json.dumps(snapshot)
    # The same content again: no version, nothing new in Vault.
    before = vault_count(conn)
    again = save(conn, world["editor"], a, content("sk_one", "pw_one"))
    assert again["created"] is False and vault_count(conn) == before


def test_a_rollback_restores_every_captured_secret_and_writes_nothing_to_vault(conn, world):
    a = world.automation_a
    first = save(conn, world["editor"], a, content("sk_one", "pw_one"))["version"]
    captured = state(conn, a)
    save(conn, world["editor"], a, content("sk_two", "pw_two"))
    before = vault_count(conn)
    call(conn, world["editor"], "select cfg.rollback(%s, %s) as r", (a, first))
    assert state(conn, a) == captured and vault_count(conn) == before
    assert (reveal(conn, world["editor"], a, "api_key"), reveal(conn, world["editor"], a, "db_password")) == (
        "sk_one", "pw_one")


def test_a_save_giving_a_value_to_a_reference_bound_secret_is_refused_whole(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, content("sk_one", "pw_one"))
    backend = add_backend(conn, world["admin"], world.org_a, "aws")
    bind(conn, world["admin"], a, backend["id"], "aws-sm://billing/api#key")
    conn.commit()
    before, vault_before, version = state(conn, a), vault_count(conn), head(conn, a)
    # Two secrets change in one statement; one of them is bound by reference.
    with pytest.raises(CfgError) as refused:
        save(conn, world["editor"], a, content("sk_local", "pw_two", port=9090))
    assert refused.value.code == "PT409" and "external vault" in str(refused.value)
    assert refused.value.detail["ref"] == "aws-sm://billing/api#key"
    assert refused.value.detail["entry_id"] == str(world.secret_entry_a)
    assert state(conn, a) == before and vault_count(conn) == vault_before and head(conn, a) == version
    # Keeping the bound one (no value) and changing the other is fine.
    save(conn, world["editor"], a, content(None, "pw_two"))
    assert reveal(conn, world["editor"], a, "db_password") == "pw_two"
    assert state(conn, a)["api_key"] == before["api_key"]
