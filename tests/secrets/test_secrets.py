"""Secrets (issue 10): values at rest in Vault only, masked everywhere, revealed on
purpose to the right role (audited, an event), captured by versions without copies,
and gone from Vault once nothing refers to them."""

from __future__ import annotations

import json
import subprocess
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service import local_stack as local
from sync_service.db import CfgError, Identity, acting_as


def call(conn, who: Identity, sql: str, params: tuple = ()):
    with acting_as(conn, who) as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def refused(conn, who, sql, params=()) -> str:
    with pytest.raises(CfgError) as caught:
        call(conn, who, sql, params)
    return caught.value.code


def body(secret: str, port: int = 8080) -> str:
    return json.dumps({"sections": {"http": {"entries": {
        "port": {"value": port}, "api_key": {"value": secret, "secret": True}}}}})


def head(conn, automation_id) -> int:
    row = conn.execute("select coalesce(max(version), 0) as v from cfg.config_versions where automation_id = %s",
                       (automation_id,)).fetchone()
    conn.commit()
    return row["v"]


def save(conn, who, automation_id, secret: str, port: int = 8080) -> dict:
    return call(conn, who, "select cfg.save_config(%s, %s, %s::jsonb) as r",
                (automation_id, head(conn, automation_id), body(secret, port)))["r"]


def reveal(conn, who, automation_id, version=None, section="http", key="api_key"):
    return call(conn, who, "select cfg.reveal_secret(%s, %s, %s, %s) as r",
                (automation_id, section, key, version))["r"]


def vault_ids(conn) -> set:
    ids = {r["id"] for r in conn.execute("select id from vault.secrets")}
    conn.commit()
    return ids


# -- at rest -------------------------------------------------------------------------


def test_a_saved_secret_is_a_vault_id_and_a_token_in_cfg_and_ciphertext_in_vault(conn, world):
    save(conn, world["editor"], world.automation_a, "sk_rest_1")
    row = conn.execute(
        "select s.* from cfg.entry_secrets s where s.id = %s", (world.secret_entry_a,)).fetchone()
    assert set(row) == {"id", "org_id", "secret_id", "member", "token", "value_set_at", "rotate_every",
                        "expires_at", "created_at", "updated_at"}
    stored = conn.execute("select secret, decrypted_secret from vault.decrypted_secrets where id = %s",
                          (row["secret_id"],)).fetchone()
    assert json.loads(stored["decrypted_secret"]) == {row["member"]: "sk_rest_1"}
    assert "sk_rest_1" not in stored["secret"]
    for table in ("cfg.config_entries", "cfg.entry_secrets", "cfg_private.version_secrets",
                  "cfg.config_versions", "cfg.audit_log", "cfg_private.events", "cfg_private.digest_keys",
                  "cfg_private.webhook_secrets"):
        assert conn.execute(f"select count(*) as n from {table} t where t::text like '%%sk_rest_1%%'"  # noqa: S608
                            ).fetchone()["n"] == 0, table


def test_the_digest_key_and_webhook_signing_secrets_are_vault_ids(conn, world):
    columns = {(r["table_name"], r["column_name"]) for r in conn.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema in ('cfg', 'cfg_private') "
        "and table_name in ('digest_keys', 'webhook_secrets', 'entry_secrets', 'version_secrets')")}
    assert ("digest_keys", "key") not in columns and ("digest_keys", "secret_id") in columns
    assert ("webhook_secrets", "secret") not in columns and ("webhook_secrets", "secret_id") in columns
    assert ("entry_secrets", "value") not in columns and ("version_secrets", "value") not in columns


def test_an_unchanged_secret_writes_no_vault_secret_and_a_changed_one_writes_one(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, "sk_one")
    before = vault_ids(conn)
    save(conn, world["editor"], a, "sk_one", port=9090)
    assert vault_ids(conn) == before
    save(conn, world["editor"], a, "sk_two", port=9090)
    assert len(vault_ids(conn) - before) == 1


def three_secrets(values: tuple[str, ...]) -> str:
    return json.dumps({"sections": {"http": {"entries": {
        f"key{i}": {"value": v, "secret": True} for i, v in enumerate(values)}}}})


def test_a_save_writes_its_new_secret_values_into_one_vault_secret(conn, world):
    a = world.automation_a
    before = vault_ids(conn)
    call(conn, world["editor"], "select cfg.save_config(%s, %s, %s::jsonb)",
         (a, head(conn, a), three_secrets(("sk_k0", "sk_k1", "sk_k2"))))
    assert len(vault_ids(conn) - before) == 1
    new = list(vault_ids(conn) - before)
    held = conn.execute("select count(distinct secret_id) as ids, count(distinct member) as members "
                        "from cfg.entry_secrets where secret_id = any(%s)", (new,)).fetchone()
    assert (held["ids"], held["members"]) == (1, 3)
    # Each reveals its own value, now and as the version captured it.
    version = head(conn, a)
    call(conn, world["editor"], "select cfg.save_config(%s, %s, %s::jsonb)",
         (a, version, three_secrets(("sk_k0", "sk_k1b", "sk_k2"))))
    assert [reveal(conn, world["editor"], a, key=f"key{i}")["value"] for i in range(3)] == ["sk_k0", "sk_k1b", "sk_k2"]
    assert reveal(conn, world["editor"], a, version, key="key1")["value"] == "sk_k1"
    # A rollback restores the captured Vault id and member without writing to Vault.
    before = vault_ids(conn)
    call(conn, world["editor"], "select cfg.rollback(%s, %s)", (a, version))
    assert vault_ids(conn) == before
    assert reveal(conn, world["editor"], a, key="key1")["value"] == "sk_k1"


def test_a_value_no_row_holds_any_more_is_taken_out_of_its_saves_vault_secret(conn, world):
    """Versions are kept today; when rows that held one value of a save's Vault secret go
    (here deleted directly, as a retention job would), that value leaves Vault, and the
    values other rows still hold stay."""
    a = world.automation_a
    call(conn, world["editor"], "select cfg.save_config(%s, %s, %s::jsonb)",
         (a, head(conn, a), three_secrets(("sk_keep0", "sk_drop1", "sk_keep2"))))
    call(conn, world["editor"], "select cfg.save_config(%s, %s, %s::jsonb)",
         (a, head(conn, a), json.dumps({"sections": {"http": {"entries": {
             "key0": {"secret": True}, "key2": {"secret": True}}}}})))
    bundle = conn.execute("select distinct secret_id from cfg.entry_secrets where member is not null and "
                          "id in (select id from cfg.config_entries where automation_id = %s)", (a,)).fetchone()
    conn.execute("delete from cfg_private.version_secrets where key = 'key1' and secret_id = %s",
                 (bundle["secret_id"],))
    left = conn.execute("select decrypted_secret from vault.decrypted_secrets where id = %s",
                        (bundle["secret_id"],)).fetchone()["decrypted_secret"]
    conn.commit()
    assert sorted(json.loads(left).values()) == ["sk_keep0", "sk_keep2"]
    assert reveal(conn, world["editor"], a, key="key2")["value"] == "sk_keep2"


def test_a_save_that_leaves_the_value_out_keeps_it_without_reading_it(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, "sk_kept")
    kept = json.dumps({"sections": {"http": {"entries": {
        "port": {"value": 1}, "api_key": {"secret": True, "description": "rotated monthly"}}}}})
    result = call(conn, world["editor"], "select cfg.save_config(%s, %s, %s::jsonb) as r",
                  (a, head(conn, a), kept))["r"]
    assert result["created"] is True
    assert reveal(conn, world["editor"], a)["value"] == "sk_kept"
    changes = conn.execute("select changes from cfg.config_versions where id = %s",
                           (result["version_id"],)).fetchone()["changes"]
    assert {c["key"] for c in changes} == {"port", "api_key"}  # the description changed


def test_api_roles_cannot_write_secret_rows_directly(conn, world):
    for who in ("editor", "admin"):
        code = refused(conn, world[who], "update cfg.entry_secrets set secret_id = gen_random_uuid() returning id")
        assert code == "42501"
        code = refused(conn, world[who], "insert into cfg.entry_secrets (id, org_id, secret_id, token) "
                       "values (%s, %s, gen_random_uuid(), 'x') returning id", (world.entry_a, world.org_a))
        assert code == "42501"


def test_a_direct_write_through_postgrest_stores_the_value_in_vault(conn, world):
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set value = '\"sk_direct\"' where id = %s", (world.secret_entry_a,))
    assert conn.execute("select value from cfg.config_entries where id = %s",
                        (world.secret_entry_a,)).fetchone()["value"] is None
    assert reveal(conn, world["editor"], world.automation_a)["value"] == "sk_direct"


# -- reveal ------------------------------------------------------------------------


def test_editors_admins_and_the_service_reveal_the_current_value(conn, world):
    for who in ("editor", "admin", "service"):
        assert reveal(conn, world[who], world.automation_a) == {
            "automation_id": str(world.automation_a), "section": "http", "key": "api_key",
            "version": None, "value": "sk_live_hunter2"}


@pytest.mark.parametrize("who, code", [("viewer", "PT403"), ("other_admin", "PT404"), ("outsider", "PT404"),
                                       ("anon", "42501")])
def test_others_cannot_reveal(conn, world, who, code):
    assert refused(conn, world[who], "select cfg.reveal_secret(%s, 'http', 'api_key')",
                   (world.automation_a,)) == code


def test_another_orgs_automation_answers_like_a_missing_one(conn, world):
    foreign = refused(conn, world["admin"], "select cfg.reveal_secret(%s, 'http', 'api_key')", (world.automation_b,))
    missing = refused(conn, world["admin"], "select cfg.reveal_secret(%s, 'http', 'api_key')", (uuid.uuid4(),))
    assert foreign == missing == "PT404"


@pytest.mark.parametrize("section, key", [("http", "port"), ("http", "nope"), ("nope", "api_key"),
                                          ("http'; drop table cfg.orgs; --", "api_key"), ("http", "k" * 10000),
                                          (None, "api_key")])
def test_a_plain_or_unknown_entry_is_not_found_and_changes_nothing(conn, world, section, key):
    assert refused(conn, world["editor"], "select cfg.reveal_secret(%s, %s, %s)",
                   (world.automation_a, section, key)) == "PT404"
    assert conn.execute("select count(*) as n from cfg.audit_log where operation = 'REVEAL'").fetchone()["n"] == 0


def test_a_version_reveals_the_value_it_captured(conn, world):
    a = world.automation_a
    first = save(conn, world["editor"], a, "sk_v2")["version"]
    save(conn, world["editor"], a, "sk_v3")
    assert reveal(conn, world["editor"], a, version=first)["value"] == "sk_v2"
    assert reveal(conn, world["editor"], a)["value"] == "sk_v3"
    assert refused(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key', 999)", (a,)) == "PT404"


def test_each_reveal_is_audited_and_emits_an_event_without_the_value(conn, world):
    reveal(conn, world["editor"], world.automation_a, version=1)
    audit = conn.execute("select * from cfg.audit_log where operation = 'REVEAL'").fetchall()
    assert len(audit) == 1
    assert audit[0]["actor_id"] == world["editor"].user_id and audit[0]["table_name"] == "config_versions"
    assert audit[0]["new_values"] == {"section": "http", "key": "api_key", "version": 1}
    event = conn.execute("select * from cfg_private.events where type = 'secret.revealed'").fetchone()
    assert event["automation_id"] == world.automation_a
    assert event["payload"]["revealed_by"] == str(world["editor"].user_id)
    assert "hunter2" not in json.dumps(audit, default=str) + json.dumps(event, default=str)


def test_an_admin_can_require_admin_for_reveals(conn, world):
    assert refused(conn, world["editor"], "select * from cfg.set_secret_reveal_role(%s, 'admin')",
                   (world.org_a,)) == "PT403"
    assert refused(conn, world["admin"], "select * from cfg.set_secret_reveal_role(%s, 'viewer')",
                   (world.org_a,)) == "PT422"
    assert refused(conn, world["other_admin"], "select * from cfg.set_secret_reveal_role(%s, 'admin')",
                   (world.org_a,)) == "PT404"
    call(conn, world["admin"], "select * from cfg.set_secret_reveal_role(%s, 'admin')", (world.org_a,))
    assert refused(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key')",
                   (world.automation_a,)) == "PT403"
    assert reveal(conn, world["admin"], world.automation_a)["value"] == "sk_live_hunter2"


# -- lifecycle ---------------------------------------------------------------------


def test_rollback_restores_the_captured_value(conn, world):
    a = world.automation_a
    old = save(conn, world["editor"], a, "sk_before")["version"]
    save(conn, world["editor"], a, "sk_after")
    call(conn, world["editor"], "select cfg.rollback(%s, %s) as r", (a, old))
    assert reveal(conn, world["editor"], a)["value"] == "sk_before"


def test_a_value_stays_in_vault_while_a_version_refers_to_it(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, "sk_captured")
    captured = conn.execute("select secret_id from cfg.entry_secrets where id = %s",
                            (world.secret_entry_a,)).fetchone()["secret_id"]
    conn.commit()
    save(conn, world["editor"], a, "sk_next")
    assert captured in vault_ids(conn)


def test_deleting_an_automation_deletes_its_vault_secrets(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, "sk_gone_1")
    save(conn, world["editor"], a, "sk_gone_2")
    theirs = {r["secret_id"] for r in conn.execute(
        "select vs.secret_id from cfg_private.version_secrets vs join cfg.config_versions v on v.id = vs.version_id "
        "where v.automation_id = %s", (a,))}
    conn.commit()
    assert len(theirs) == 3 and theirs <= vault_ids(conn)
    call(conn, world["admin"], "select * from cfg.delete_automation(%s)", (a,))
    assert not theirs & vault_ids(conn)


def test_a_secret_made_plain_leaves_vault_once_no_version_refers_to_it(conn, world):
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
                    "values (%s, %s, %s, 'tmp', '\"sk_tmp\"', true) returning id",
                    (world.org_a, world.automation_a, world.section_a))
        entry = cur.fetchone()["id"]
        held = cur.connection.execute("select 1").fetchone()  # same transaction: no version yet
        assert held
        cur.execute("update cfg.config_entries set is_secret = false, value = '1' where id = %s", (entry,))
    leftovers = conn.execute("select count(*) as n from vault.decrypted_secrets where decrypted_secret = '\"sk_tmp\"'"
                             ).fetchone()["n"]
    assert leftovers == 0


def test_webhook_rotation_deletes_expired_signing_secrets_from_vault(conn, world):
    conn.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, 'hooks.example.test')",
                 (world.org_a,))
    conn.commit()
    endpoint = call(conn, world["admin"], "select cfg.create_webhook_endpoint(%s, 'https://hooks.example.test/x') as e",
                    (world.org_a,))["e"]["id"]
    for _ in range(3):
        call(conn, world["admin"], "select cfg.rotate_webhook_secret(%s) as r", (endpoint,))
    kept = conn.execute("select count(*) as n from cfg_private.webhook_secrets where endpoint_id = %s",
                        (endpoint,)).fetchone()["n"]
    in_vault = conn.execute("select count(*) as n from vault.secrets where description like %s",
                            (f"%endpoint {endpoint}",)).fetchone()["n"]
    assert kept == in_vault == 2  # the current one and the previous one (24 hours)


# -- no plaintext anywhere ---------------------------------------------------------


def test_a_planted_secret_is_nowhere_in_plaintext(conn, db_url, world, pg_cluster, cfgctl):
    """pg_dump, a wal2json slot over every table, the audit log, events, webhook bodies,
    versions, diffs, CLI output and the server log: the plaintext is in none of them."""
    planted = f"sk_planted_{uuid.uuid4().hex}"
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot('leak_test', 'wal2json')")
    conn.commit()
    try:
        conn.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, 'hooks.example.test')",
                     (world.org_a,))
        conn.commit()
        call(conn, world["admin"], "select cfg.create_webhook_endpoint(%s, 'https://hooks.example.test/x') as e",
             (world.org_a,))
        a = world.automation_a
        planted_version = save(conn, world["editor"], a, planted)["version"]
        save(conn, world["editor"], a, "sk_rotated")
        call(conn, world["editor"], "select cfg.rollback(%s, %s) as r", (a, planted_version))
        ids = [r["id"] for r in conn.execute(
            "select id from cfg.config_versions where automation_id = %s order by version", (a,))]
        conn.commit()
        diff = call(conn, world["viewer"], "select cfg.diff_versions(%s, %s) as d", (ids[0], ids[-1]))["d"]
        assert reveal(conn, world["editor"], a)["value"] == planted

        changes = conn.execute("select string_agg(data, '') as d from pg_logical_slot_get_changes("
                               "'leak_test', null, null, 'format-version', '2')").fetchone()["d"]
        conn.commit()
        dump = subprocess.run([str(local.PG_BIN / "pg_dump"), "--dbname", db_url],
                              check=True, capture_output=True, text=True).stdout
        shown = "".join(cfgctl(*args, "--as", "editor@example.test").output for args in (
            ["config", "show", "org-a/billing"], ["config", "history", "org-a/billing"],
            ["config", "diff", "org-a/billing", "1", str(len(ids))], ["audit", "list", "org-a", "--json"],
        ))
        with psycopg.connect(db_url, row_factory=dict_row) as c:
            rows = c.execute("select (select json_agg(a) from cfg.audit_log a)::text || "
                             "(select json_agg(e) from cfg_private.events e)::text || "
                             "(select json_agg(v) from cfg.config_versions v)::text as t").fetchone()["t"]
        where = {"wal2json stream": changes, "pg_dump": dump, "audit/events/versions": rows,
                 "diff": json.dumps(diff), "CLI output": shown, "server log": pg_cluster.log_file.read_text()}
        assert [name for name, text in where.items() if planted in text] == []
        assert changes and "vault" in changes  # the stream did see the Vault insert: as ciphertext
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('leak_test')")
        conn.commit()


# -- rotation policy ---------------------------------------------------------------


def test_a_rotation_policy_makes_a_secret_due_and_a_daily_job_flags_it(conn, world):
    a = world.automation_a
    listed = call(conn, world["editor"], "select cfg.set_secret_rotation(%s, 'http', 'api_key', '30 days') as r",
                  (a,))["r"]
    assert listed["rotate_every"] == "30 days" and listed["rotation_due"] is False
    conn.execute("update cfg.entry_secrets set value_set_at = now() - interval '31 days'")
    conn.commit()
    flagged = conn.execute("select cfg_private.flag_due_secret_rotations() as n").fetchone()["n"]
    conn.commit()
    assert flagged == 1
    event = conn.execute("select * from cfg_private.events where type = 'secret.rotation_due'").fetchone()
    assert event["payload"]["section"] == "http" and event["payload"]["key"] == "api_key"
    assert "hunter2" not in json.dumps(event, default=str)
    with acting_as(conn, world["editor"]) as cur:
        rows = cur.execute("select * from cfg.list_secrets(%s)", (a,)).fetchall()
    assert [(r["section"], r["key"], r["rotation_due"]) for r in rows] == [("http", "api_key", True)]
    save(conn, world["editor"], a, "sk_rotated_now")  # a new value resets the clock
    with acting_as(conn, world["editor"]) as cur:
        assert cur.execute("select rotation_due from cfg.list_secrets(%s)", (a,)).fetchone()["rotation_due"] is False


@pytest.mark.parametrize("who, code", [("viewer", "PT403"), ("other_admin", "PT404"), ("anon", "42501")])
def test_others_cannot_list_or_set_rotation(conn, world, who, code):
    assert refused(conn, world[who], "select * from cfg.list_secrets(%s)", (world.automation_a,)) == code
    assert refused(conn, world[who], "select cfg.set_secret_rotation(%s, 'http', 'api_key', '30 days')",
                   (world.automation_a,)) == code


@pytest.mark.parametrize("section, key, every", [("http", "api_key", "1 hour"), ("http", "port", "30 days"),
                                                 ("nope", "api_key", "30 days")])
def test_bad_rotation_input_is_refused_and_changes_nothing(conn, world, section, key, every):
    code = refused(conn, world["editor"], "select cfg.set_secret_rotation(%s, %s, %s, %s::interval)",
                   (world.automation_a, section, key, every))
    assert code == ("PT422" if every == "1 hour" else "PT404")
    assert conn.execute("select count(*) as n from cfg.entry_secrets where rotate_every is not null"
                        ).fetchone()["n"] == 0


def test_cli_reveal_asks_first_then_prints_and_lists_masked(cfgctl, world):
    editor = ("--as", "editor@example.test")
    declined = cfgctl("secret", "reveal", "org-a/billing", "http.api_key", *editor, input="n\n")
    assert declined.code == 1 and "hunter2" not in declined.output
    shown = cfgctl("secret", "reveal", "org-a/billing", "http.api_key", "--yes", *editor)
    assert shown.code == 0 and shown.out.strip() == '"sk_live_hunter2"'
    listed = cfgctl("secret", "list", "org-a/billing", "--json", *editor)
    assert listed.code == 0 and "hunter2" not in listed.output
    assert listed.json()[0]["value"] == "********"
    viewer = cfgctl("secret", "reveal", "org-a/billing", "http.api_key", "--yes", "--as", "viewer@example.test")
    assert viewer.code == 4 and "hunter2" not in viewer.output
    bad = cfgctl("secret", "reveal", "org-a/billing", "api_key", "--yes", *editor)
    assert bad.code == 6
    rotation = cfgctl("secret", "rotation", "org-a/billing", "http.api_key", "--every", "90 days", "--json", *editor)
    assert rotation.code == 0 and rotation.json()["rotate_every"] == "90 days"
    role = cfgctl("secret", "reveal-role", "org-a", "admin", "--as", "admin@example.test")
    assert role.code == 0
    assert cfgctl("secret", "reveal", "org-a/billing", "http.api_key", "--yes", *editor).code == 4
