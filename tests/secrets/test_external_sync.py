"""External vaults end to end (issue 10, item 4): backends, bindings by reference and by
push, rotation detected as versions of kind sync, conflicts an admin resolves, failures
with backoff, reveals through the sync service. AWS is a real moto_server driven by the
real worker's boto3; HashiCorp Vault is the scripted KV v2 exchange
(tests/support/scripted_vault.py), driven by the real worker's hvac."""

from __future__ import annotations

import json
import subprocess

import pytest

from sync_service import local_stack as local
from sync_service.db import CfgError, acting_as
from tests.support.moto import Moto
from tests.support.vaults import ThreadSync, add_backend, bind
from tests.support.webhooks import wait_until

EXTERNAL = "ext-value-planted-7f3a9"


def one(conn, who, sql, params=()):
    with acting_as(conn, who) as cur:
        return cur.execute(sql, params).fetchone()


def binding(conn, binding_id) -> dict:
    row = conn.execute("select * from cfg.secret_bindings where id = %s", (binding_id,)).fetchone()
    conn.commit()
    return row


def settled(conn, binding_id, status="ok"):
    """Waits until the binding's status is `status` and nothing is due (the worker answered)."""
    def check():
        row = binding(conn, binding_id)
        return row if row["status"] == status and row["attempts"] == 0 or status == "error" == row["status"] else None
    return wait_until(check, timeout=20, what=f"binding {status}")


def versions(conn, automation_id) -> list[dict]:
    rows = conn.execute("select version, kind, changes from cfg.config_versions where automation_id = %s "
                        "order by version", (automation_id,)).fetchall()
    conn.commit()
    return rows


def events(conn, event_type) -> list[dict]:
    rows = conn.execute("select payload from cfg_private.events where type = %s order by id", (event_type,)).fetchall()
    conn.commit()
    return [r["payload"] for r in rows]


def save_secret(conn, who, automation_id, value):
    head = conn.execute("select coalesce(max(version), 0) as v from cfg.config_versions where automation_id = %s",
                        (automation_id,)).fetchone()["v"]
    conn.commit()
    content = {"sections": {"http": {"entries": {"port": {"value": 8080},
                                                 "api_key": {"value": value, "secret": True}}}}}
    return one(conn, who, "select cfg.save_config(%s, %s, %s::jsonb) as r", (automation_id, head, json.dumps(content)))


def reveal_through_sync(conn, who, automation_id):
    asked = one(conn, who, "select cfg.reveal_secret(%s, 'http', 'api_key') as r", (automation_id,))["r"]
    assert asked["pending"] is True and asked["value"] is None
    return wait_until(
        lambda: (lambda r: r if r["status"] != "pending" else None)(
            one(conn, who, "select cfg.collect_revealed_secret(%s) as r", (asked["request_id"],))["r"]),
        timeout=20, what="reveal answered")


@pytest.fixture
def aws(conn, world, moto: Moto):
    """Org A's AWS backend on moto_server, a secretsmanager client, and a fresh name prefix."""
    import uuid
    prefix = f"cfgctl-{uuid.uuid4().hex[:8]}"
    backend = add_backend(conn, world["admin"], world.org_a, "aws", config=moto.config(),
                          credentials=json.dumps({"access_key_id": "AKIDEXAMPLE",
                                                  "secret_access_key": "moto-accepts-any-key"}))
    conn.commit()
    return backend, moto.client(), prefix


# -- by reference ---------------------------------------------------------------------


def test_a_reference_keeps_the_value_outside_and_rotation_becomes_a_sync_version(conn, world, db_url, aws):
    backend, sm, prefix = aws
    sm.create_secret(Name=f"{prefix}/billing", SecretString=json.dumps({"api_key": EXTERNAL, "other": "x"}))
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{prefix}/billing#api_key")
    conn.commit()
    before = len(versions(conn, world.automation_a))
    with ThreadSync(db_url):
        row = settled(conn, bound["id"])
        # The value cfgctl held is let go of: the entry keeps a token, Vault nothing.
        held = conn.execute("select secret_id, token from cfg.entry_secrets where id = %s",
                            (world.secret_entry_a,)).fetchone()
        conn.commit()
        assert held["secret_id"] is None and row["fingerprint"] == held["token"][:12]
        assert row["external_version"] and row["last_success_at"] is not None
        after = versions(conn, world.automation_a)
        assert len(after) == before + 1 and after[-1]["kind"] == "sync"
        assert after[-1]["changes"] == [{"section": "http", "key": "api_key", "change": "changed", "secret": True}]

        # Rotated in AWS: found on the next look, recorded as a version, with an event.
        rotated = json.dumps({"api_key": "rotated-9d1", "other": "x"})
        sm.put_secret_value(SecretId=f"{prefix}/billing", SecretString=rotated)
        one(conn, world["editor"], "select * from cfg.sync_secret_binding(%s)", (bound["id"],))
        wait_until(lambda: len(versions(conn, world.automation_a)) == before + 2, timeout=20, what="sync version")
        assert versions(conn, world.automation_a)[-1]["kind"] == "sync"
        assert binding(conn, bound["id"])["external_version"] != row["external_version"]
        assert [e["ref"] for e in events(conn, "secret.synced")] == [bound["ref"]] * 2

        # Revealed through the sync service, to the member who asked, once; audited.
        answer = reveal_through_sync(conn, world["editor"], world.automation_a)
        assert answer == {"status": "ready", "request_id": answer["request_id"], "error": None, "value": "rotated-9d1"}
        with pytest.raises(CfgError) as again:
            one(conn, world["editor"], "select cfg.collect_revealed_secret(%s)", (answer["request_id"],))
        assert again.value.code == "PT404"
    assert conn.execute("select count(*) as n from cfg.audit_log where operation = 'REVEAL'").fetchone()["n"] == 1
    # The binding was made once; the sync service's checks are its state, not audit rows.
    assert [r["operation"] for r in conn.execute(
        "select operation from cfg.audit_log where table_name = 'secret_bindings'")] == ["INSERT"]
    conn.commit()

    # cfgctl takes no value for it: it changes in AWS.
    with pytest.raises(CfgError) as refused:
        save_secret(conn, world["editor"], world.automation_a, "local-attempt")
    assert refused.value.code == "PT409" and "external vault" in str(refused.value)


def test_a_reveal_by_someone_else_is_not_theirs_to_collect(conn, world, db_url, aws):
    backend, sm, prefix = aws
    sm.create_secret(Name=f"{prefix}/r", SecretString=EXTERNAL)
    bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{prefix}/r")
    conn.commit()
    asked = one(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r",
                (world.automation_a,))["r"]
    for who in ("admin", "viewer", "other_admin"):
        with pytest.raises(CfgError) as caught:
            one(conn, world[who], "select cfg.collect_revealed_secret(%s)", (asked["request_id"],))
        assert caught.value.code == "PT404", who


# -- by push ---------------------------------------------------------------------------


def test_push_writes_each_save_out_and_imports_an_outside_rotation(conn, world, db_url, aws):
    backend, sm, prefix = aws
    name = f"{prefix}/push"
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{name}", mode="push")
    conn.commit()
    with ThreadSync(db_url):
        settled(conn, bound["id"])
        assert sm.get_secret_value(SecretId=name)["SecretString"] == "sk_live_hunter2"  # created by the push

        save_secret(conn, world["editor"], world.automation_a, "second-value-31")
        wait_until(lambda: sm.get_secret_value(SecretId=name)["SecretString"] == "second-value-31", timeout=20,
                   what="pushed")
        assert events(conn, "secret.pushed")

        sm.put_secret_value(SecretId=name, SecretString="rotated-outside-77")
        one(conn, world["editor"], "select * from cfg.sync_secret_binding(%s)", (bound["id"],))
        wait_until(lambda: versions(conn, world.automation_a)[-1]["kind"] == "sync", timeout=20, what="import")
        settled(conn, bound["id"])
    revealed = one(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r",
                   (world.automation_a,))["r"]
    assert revealed["value"] == "rotated-outside-77"


def test_changed_on_both_sides_is_a_conflict_an_admin_resolves(conn, world, db_url, aws):
    backend, sm, prefix = aws
    name = f"{prefix}/both"
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{name}", mode="push")
    conn.commit()
    with ThreadSync(db_url):
        settled(conn, bound["id"])
    # The worker is away: both sides change.
    sm.put_secret_value(SecretId=name, SecretString="theirs-1")
    save_secret(conn, world["editor"], world.automation_a, "ours-1")
    with ThreadSync(db_url):
        settled(conn, bound["id"], "conflict")
        assert sm.get_secret_value(SecretId=name)["SecretString"] == "theirs-1"  # not overwritten
        conflict = one(conn, world["admin"], "select * from cfg.list_secret_conflicts(%s)", (world.org_a,))
        assert conflict["binding_id"] == bound["id"] and events(conn, "secret.sync_conflict")
        with pytest.raises(CfgError) as caught:
            one(conn, world["editor"], "select * from cfg.resolve_secret_conflict(%s, 'keep_local')", (conflict["id"],))
        assert caught.value.code == "PT403"
        one(conn, world["admin"], "select * from cfg.resolve_secret_conflict(%s, 'keep_local')", (conflict["id"],))
        wait_until(lambda: sm.get_secret_value(SecretId=name)["SecretString"] == "ours-1", timeout=20, what="kept")
        settled(conn, bound["id"])

        # Again (the binding held back meanwhile), and this time the external side wins.
        conn.execute("update cfg.secret_bindings set next_check_at = now() + interval '1 hour' where id = %s",
                     (bound["id"],))
        conn.commit()
        sm.put_secret_value(SecretId=name, SecretString="theirs-2")
        save_secret(conn, world["editor"], world.automation_a, "ours-2")
        conn.execute("update cfg.secret_bindings set next_check_at = now() where id = %s", (bound["id"],))
        conn.commit()
        settled(conn, bound["id"], "conflict")
        conflict = one(conn, world["admin"], "select * from cfg.list_secret_conflicts(%s)", (world.org_a,))
        one(conn, world["admin"], "select * from cfg.resolve_secret_conflict(%s, 'take_external')", (conflict["id"],))
        settled(conn, bound["id"])
    assert versions(conn, world.automation_a)[-1]["kind"] == "sync"
    revealed = one(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r",
                   (world.automation_a,))["r"]
    assert revealed["value"] == "theirs-2" and sm.get_secret_value(SecretId=name)["SecretString"] == "theirs-2"


def test_a_push_to_an_environment_follows_its_deployments(conn, world, db_url, aws):
    backend, sm, prefix = aws
    name = f"{prefix}/staging"
    staging = conn.execute("select id from cfg.environments where org_id = %s and slug = 'staging'",
                           (world.org_a,)).fetchone()["id"]
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{name}", mode="push",
                 environment_id=staging)
    conn.commit()
    with ThreadSync(db_url):
        settled(conn, bound["id"])
        assert _value(sm, name) is None  # nothing runs in staging yet: nothing to push
        save_secret(conn, world["editor"], world.automation_a, "for-staging-5")
        settled(conn, bound["id"])
        assert _value(sm, name) is None  # a save lands in dev, not staging
        one(conn, world["editor"], "select cfg.promote(%s, 'dev', 'staging', false) as r", (world.automation_a,))
        wait_until(lambda: _value(sm, name) == "for-staging-5", timeout=20, what="pushed to staging")


def _value(sm, name):
    try:
        return sm.get_secret_value(SecretId=name)["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        return None


# -- failures, tests, leaks ------------------------------------------------------------


def test_an_unreachable_backend_is_shown_per_binding_and_retried_with_backoff(conn, world, db_url):
    from tests.support.cluster import free_port
    backend = add_backend(conn, world["admin"], world.org_a, "down",
                          config={"region": "eu-west-1", "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], "aws-sm://billing/api#key")
    conn.commit()
    with ThreadSync(db_url):
        row = settled(conn, bound["id"], "error")
        tested = wait_until(lambda: binding_backend(conn, backend["id"])["test_result"], timeout=20, what="tested")
    assert row["error_kind"] == "unreachable" and row["attempts"] >= 1 and row["last_success_at"] is None
    assert row["next_check_at"] > conn.execute("select now() as t").fetchone()["t"]
    conn.commit()
    assert tested == {"ok": False, "error_kind": "unreachable", "error": tested["error"]}
    assert len(events(conn, "secret.sync_failed")) == 1  # the first failure, not every retry


def test_an_external_change_the_rules_refuse_is_shown_on_the_binding(conn, world, db_url, aws):
    backend, sm, prefix = aws
    sm.create_secret(Name=f"{prefix}/ruled", SecretString=EXTERNAL)
    service_type = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                                (world.org_a,)).fetchone()["id"]
    conn.commit()
    one(conn, world["admin"], "select cfg.add_validation_rule(%s, %s::jsonb)", (service_type, json.dumps(
        {"name": "port is text", "section": "http", "key": "port", "schema": {"type": "string"}})))
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{prefix}/ruled")
    conn.commit()
    with ThreadSync(db_url):
        row = settled(conn, bound["id"], "error")
    assert row["error_kind"] == "invalid" and "http.port" in row["last_error"]
    assert versions(conn, world.automation_a)[-1]["kind"] != "sync"


def binding_backend(conn, backend_id):
    row = conn.execute("select * from cfg.vault_backends where id = %s", (backend_id,)).fetchone()
    conn.commit()
    return row


def test_hashicorp_vault_by_approle_reference_and_a_denied_path(conn, world, db_url, scripted_vault):
    creds = scripted_vault.add_approle(paths=("secret/billing/",))
    scripted_vault.put("secret", "billing/api", {"api_key": EXTERNAL})
    scripted_vault.put("secret", "elsewhere/api", {"api_key": "not-yours"})
    backend = add_backend(conn, world["admin"], world.org_a, "hcv", kind="hashicorp",
                          config={"address": scripted_vault.url, "auth": "approle"}, credentials=json.dumps(creds))
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], "vault://secret/billing/api#api_key")
    conn.commit()
    with ThreadSync(db_url):
        assert settled(conn, bound["id"])["external_version"] == "1"
        assert wait_until(lambda: binding_backend(conn, backend["id"])["test_result"], timeout=20,
                          what="tested")["ok"] is True
        assert reveal_through_sync(conn, world["admin"], world.automation_a)["value"] == EXTERNAL
        scripted_vault.put("secret", "billing/api", {"api_key": "v2"})
        one(conn, world["editor"], "select * from cfg.sync_secret_binding(%s)", (bound["id"],))
        wait_until(lambda: binding(conn, bound["id"])["external_version"] == "2", timeout=20, what="version 2")
        # Outside the AppRole's paths: denied, shown on the binding.
        one(conn, world["admin"], "select cfg.unbind_secret(%s)", (bound["id"],))
        other = bind(conn, world["admin"], world.automation_a, backend["id"], "vault://secret/elsewhere/api#api_key")
        conn.commit()
        assert settled(conn, other["id"], "error")["error_kind"] == "denied"
    assert scripted_vault.seen("POST", "/v1/auth/approle/login")


def test_bad_backends_and_bindings_are_refused_and_change_nothing(conn, world, aws):
    backend, _, _ = aws
    cases = [
        ("select cfg.add_vault_backend(%s, 'x', 'gcp', '{}', '{}')", (world.org_a,), "PT422"),
        ("select cfg.add_vault_backend(%s, 'x', 'aws_sm', '{}', '{}')", (world.org_a,), "PT422"),
        ("select cfg.add_vault_backend(%s, 'x', 'aws_sm', '{\"region\": \"x\", \"evil\": 1}', "
         "'{\"access_key_id\": \"a\", \"secret_access_key\": \"b\"}')", (world.org_a,), "PT422"),
        ("select cfg.add_vault_backend(%s, 'x', 'hashicorp', '{\"address\": \"file:///etc\"}', '{\"token\": \"t\"}')",
         (world.org_a,), "PT422"),
        ("select cfg.add_vault_backend(%s, 'Bad Name', 'hashicorp', '{\"address\": \"http://v\"}', "
         "'{\"token\": \"t\"}')", (world.org_a,), "23514"),
        ("select cfg.add_vault_backend(%s, 'aws', 'hashicorp', '{\"address\": \"http://v\"}', '{\"token\": \"t\"}')",
         (world.org_a,), "PT409"),
        ("select cfg.bind_secret(%s, 'http', 'api_key', %s, 'vault://secret/x#f')", (world.automation_a, backend["id"]),
         "PT422"),
        ("select cfg.bind_secret(%s, 'http', 'api_key', %s, 'aws-sm://a/../b')", (world.automation_a, backend["id"]),
         "PT422"),
        ("select cfg.bind_secret(%s, 'http', 'api_key', %s, 'aws-sm://x''; drop table cfg.orgs; --')",
         (world.automation_a, backend["id"]), "PT422"),
        ("select cfg.bind_secret(%s, 'http', 'api_key', %s, %s)", (world.automation_a, backend["id"],
                                                                   "aws-sm://" + "a" * 600), "PT422"),
        ("select cfg.bind_secret(%s, 'http', 'port', %s, 'aws-sm://x')", (world.automation_a, backend["id"]), "PT404"),
        ("select cfg.bind_secret(%s, 'http', 'api_key', gen_random_uuid(), 'aws-sm://x')", (world.automation_a,),
         "PT404"),
        ("select cfg.bind_secret(%s, 'http', 'api_key', %s, 'aws-sm://x', 'mirror')", (world.automation_a,
                                                                                     backend["id"]), "PT422"),
        ("select cfg.bind_secret(%s, 'http', 'api_key', %s, 'aws-sm://x', 'reference', "
         "(select id from cfg.environments where slug = 'prod' limit 1))", (world.automation_a, backend["id"]),
         "PT422"),
        ("select cfg.resolve_secret_conflict(gen_random_uuid(), 'keep_local')", (), "PT404"),
        ("select cfg.collect_revealed_secret(gen_random_uuid())", (), "PT404"),
    ]
    counts = "select (select count(*) from cfg.vault_backends) + (select count(*) from cfg.secret_bindings) as n"
    before = conn.execute(counts).fetchone()["n"]
    vault_before = conn.execute("select count(*) as n from vault.secrets").fetchone()["n"]
    conn.commit()
    for sql, params, code in cases:
        with pytest.raises(CfgError) as caught:
            one(conn, world["admin"], sql, params)
        assert caught.value.code == code, (sql, caught.value)
        assert "moto-accepts-any-key" not in str(caught.value) + str(caught.value.detail)
    assert conn.execute(counts).fetchone()["n"] == before
    assert conn.execute("select count(*) as n from vault.secrets").fetchone()["n"] == vault_before


def test_another_orgs_backend_cannot_be_bound_or_used(conn, world, aws):
    backend, _, _ = aws
    for sql, params in (
        ("select cfg.bind_secret(%s, 'http', 'api_key', %s, 'aws-sm://x')", (world.automation_b, backend["id"])),
        ("select cfg.test_vault_backend(%s)", (backend["id"],)),
        ("select cfg.remove_vault_backend(%s)", (backend["id"],)),
    ):
        with pytest.raises(CfgError) as caught:
            one(conn, world["other_admin"], sql, params)
        assert caught.value.code == "PT404", sql


def test_removing_a_backend_or_the_automation_leaves_nothing_in_vault(conn, world, aws):
    backend, _, prefix = aws
    vault_before = conn.execute("select count(*) as n from vault.secrets").fetchone()["n"]
    conn.commit()
    bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{prefix}/gone", mode="push")
    with pytest.raises(CfgError) as caught:
        one(conn, world["admin"], "select cfg.remove_vault_backend(%s)", (backend["id"],))
    assert caught.value.code == "PT409" and caught.value.detail["bindings"] == 1
    one(conn, world["admin"], "select cfg.delete_automation(%s)", (world.automation_a,))
    one(conn, world["admin"], "select cfg.remove_vault_backend(%s)", (backend["id"],))
    # The automation's secret value and the backend's credentials are gone.
    assert conn.execute("select count(*) as n from vault.secrets").fetchone()["n"] == vault_before - 2


def test_no_plaintext_of_credentials_or_external_values_anywhere(conn, world, db_url, aws, pg_cluster, cfgctl):
    """The external value (synced, revealed) and the backend's credentials: in no pg_dump,
    wal2json stream, audit row, event, version, CLI output or server log."""
    backend, sm, prefix = aws
    sm.create_secret(Name=f"{prefix}/leak", SecretString=EXTERNAL)
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot('external_leak', 'wal2json')")
    conn.commit()
    try:
        bound = bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{prefix}/leak")
        conn.commit()
        with ThreadSync(db_url):
            settled(conn, bound["id"])
            assert reveal_through_sync(conn, world["editor"], world.automation_a)["value"] == EXTERNAL
        changes = conn.execute("select string_agg(data, '') as d from pg_logical_slot_get_changes("
                               "'external_leak', null, null, 'format-version', '2')").fetchone()["d"]
        conn.commit()
        dump = subprocess.run([str(local.PG_BIN / "pg_dump"), "--dbname", db_url], capture_output=True, text=True,
                              check=True).stdout
        rows = conn.execute(
            "select (select json_agg(a) from cfg.audit_log a)::text"
            " || (select json_agg(e) from cfg_private.events e)::text"
            " || (select json_agg(v) from cfg.config_versions v)::text as t").fetchone()["t"]
        conn.commit()
        shown = "".join(cfgctl(*args, "--as", "admin@example.test").output for args in (
            ["secret", "status", "org-a/billing"], ["vault", "backend", "list", "org-a", "--json"],
            ["audit", "list", "org-a", "--json"]))
        where = {"pg_dump": dump, "wal2json stream": changes, "audit/events/versions": rows, "CLI output": shown,
                 "server log": pg_cluster.log_file.read_text()}
        for planted in (EXTERNAL, "moto-accepts-any-key"):
            assert [name for name, text in where.items() if planted in text] == [], planted
        assert changes and "vault" in changes  # the stream saw the Vault writes: as ciphertext
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('external_leak')")
        conn.commit()


def test_the_sync_worker_reads_only_what_bindings_and_backends_need(conn, world):
    """vault_sync_secrets hands out backend credentials and pushed values, not any Vault secret."""
    with acting_as(conn, world["service"]) as cur:
        any_secret = cur.execute("select secret_id from cfg.entry_secrets limit 1").fetchone()["secret_id"]
        assert cur.execute("select * from cfg_private.vault_sync_secrets(%s::uuid[])", ([any_secret],)).fetchall() == []
