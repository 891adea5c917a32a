"""Scheduled rotations of secrets bound by reference to an external vault (issue 16): the
tick dispatches them (state `dispatched`), the sync service's vaults worker has the
backend rotate them and reports the new external version, and the binding's usual sync
imports it. AWS Secrets Manager is a real moto_server driven by the worker's boto3;
HashiCorp Vault is the SCRIPTED KV v2 exchange of tests/support/scripted_vault.py (no
Vault server can run here), driven by the worker's hvac."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service.db import SERVICE, CfgError, acting_as
from tests.schedules.test_schedules import FAR, FAR_UTC, add, occurrences, tick
from tests.support.moto import ANY_KEYS, Moto
from tests.support.vaults import ThreadSync, add_backend, bind
from tests.support.webhooks import wait_until

EXTERNAL = "ext-value-planted-5c2e1"
ROTATE = {"action": "rotate", "section": "http", "key": "api_key", "format": "alphanumeric", "length": 40}


def settled(conn, schedule_id):
    """The occurrence once the worker answered (applied or failed)."""
    def check():
        [occ] = occurrences(conn, schedule_id)
        conn.commit()
        return occ if occ["status"] != "dispatched" else None
    return wait_until(check, timeout=20, what="rotation answered")


def binding_row(conn, binding_id):
    row = conn.execute("select * from cfg.secret_bindings where id = %s", (binding_id,)).fetchone()
    conn.commit()
    return row


def in_step(conn, binding_id):
    """Waits for the binding's first sync: a rotation is then the only work in flight
    (a look at the binding that started before the rotation would record the version
    it saw, and the next look, check_every later, the rotated one)."""
    return wait_until(lambda: (lambda r: r if r["status"] == "ok" else None)(binding_row(conn, binding_id)),
                      timeout=20, what="binding in step")


def sync_versions(conn, automation_id) -> int:
    count = conn.execute("select count(*) from cfg.config_versions where automation_id = %s and kind = 'sync'",
                         (automation_id,)).fetchone()["count"]
    conn.commit()
    return count


def nowhere_in_cfgctl(conn, value):
    for table in ("cfg.schedules", "cfg.schedule_occurrences", "cfg_private.schedule_dispatches",
                  "cfg_private.events", "cfg.audit_log", "cfg.config_versions", "cfg.secret_bindings"):
        assert conn.execute(f"select count(*) from {table} t where t::text like %s",  # noqa: S608
                            (f"%{value}%",)).fetchone()["count"] == 0, table


def aws_bound(conn, world, moto: Moto, secret: str):
    """automation A's http.api_key bound by reference to AWS secret `secret` (a JSON object)."""
    backend = add_backend(conn, world["admin"], world.org_a, "aws", config=moto.config(),
                          credentials=json.dumps(ANY_KEYS))
    moto.client().create_secret(Name=secret, SecretString=json.dumps({"api_key": EXTERNAL, "user": "billing"}))
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], f"aws-sm://{secret}#api_key")
    conn.commit()
    return bound


def test_an_aws_secret_without_rotation_gets_a_new_value_put_and_the_binding_follows(conn, world, db_url, moto):
    name = f"cfgctl-{uuid.uuid4().hex[:8]}/billing"
    bound = aws_bound(conn, world, moto, name)
    s = add(conn, world["editor"], world.automation_a, ROTATE)
    with ThreadSync(db_url):
        in_step(conn, bound["id"])
        syncs = sync_versions(conn, world.automation_a)
        assert tick(conn, FAR_UTC) == {"applied": 0, "failed": 0, "skipped": 0, "dispatched": 1}
        occ = conn.execute("select o.status, o.outcome, s.state from cfg.schedule_occurrences o "
                           "join cfg.schedules s on s.id = o.schedule_id where s.id = %s", (s["id"],)).fetchone()
        conn.commit()
        # Handed over (unless the worker was quicker than this look); the schedule is not done yet.
        assert occ["status"] in ("dispatched", "applied") and occ["outcome"]["ref"] == bound["ref"]
        assert occ["state"] == "active" or occ["status"] == "applied"
        occ = settled(conn, s["id"])
        assert occ["status"] == "applied", occ["error"]
        # The occurrence id is the rotation's ClientRequestToken: AWS's version id.
        assert occ["outcome"]["external_version"] == str(occ["id"])
        assert occ["outcome"]["method"] == "PutSecretValue"
        # The binding's usual sync imports the new version (a version of kind sync).
        wait_until(lambda: binding_row(conn, bound["id"])["external_version"] == str(occ["id"]), timeout=20,
                   what="binding refreshed")
    stored = json.loads(moto.client().get_secret_value(SecretId=name)["SecretString"])
    assert stored["user"] == "billing" and stored["api_key"] != EXTERNAL
    assert len(stored["api_key"]) == 40 and stored["api_key"].isalnum()
    assert sync_versions(conn, world.automation_a) == syncs + 1
    event = conn.execute("select payload, actor_email from cfg_private.events where type = 'schedule.applied'"
                         ).fetchone()
    assert event["payload"]["external_version"] == str(occ["id"]) and event["actor_email"] == "editor@example.test"
    assert conn.execute("select state from cfg.schedules where id = %s", (s["id"],)).fetchone()["state"] == "completed"
    nowhere_in_cfgctl(conn, stored["api_key"])


def test_an_aws_secret_with_rotation_configured_is_rotated_by_rotate_secret(conn, world, db_url, moto):
    name = f"cfgctl-{uuid.uuid4().hex[:8]}/billing"
    bound = aws_bound(conn, world, moto, name)
    sm = moto.client()
    sm.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    assert sm.describe_secret(SecretId=name)["RotationEnabled"]
    s = add(conn, world["editor"], world.automation_a, ROTATE)
    with ThreadSync(db_url):
        in_step(conn, bound["id"])
        tick(conn, FAR_UTC)
        occ = settled(conn, s["id"])
        assert occ["status"] == "applied", occ["error"]
        assert occ["outcome"]["method"] == "RotateSecret"
        staged = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
        assert staged[str(occ["id"])] == ["AWSCURRENT"]
        # What moto really does: with no rotation Lambda to run, it stages the new version
        # AWSCURRENT with no value in it (AWS would have its Lambda write one), so the
        # binding's sync that follows cannot read it, and says so.
        row = wait_until(lambda: (lambda r: r if r["status"] == "error" else None)(binding_row(conn, bound["id"])),
                         timeout=20, what="binding sync failed")
        assert row["error_kind"] == "not_found"


def test_a_hashicorp_rotation_is_a_new_kv_version_and_a_denied_path_fails_it(conn, world, db_url, scripted_vault):
    token = scripted_vault.add_token(paths=("secret/billing/",))
    scripted_vault.put("secret", "billing/api", {"api_key": EXTERNAL, "user": "billing"})
    scripted_vault.put("secret", "elsewhere/api", {"api_key": EXTERNAL})
    backend = add_backend(conn, world["admin"], world.org_a, "hcv", kind="hashicorp",
                          config={"address": scripted_vault.url}, credentials=json.dumps({"token": token}))
    bound = bind(conn, world["admin"], world.automation_a, backend["id"], "vault://secret/billing/api#api_key")
    conn.commit()
    s = add(conn, world["editor"], world.automation_a, ROTATE | {"format": "hex", "length": 16})
    with ThreadSync(db_url):
        in_step(conn, bound["id"])
        tick(conn, FAR_UTC)
        occ = settled(conn, s["id"])
        assert occ["status"] == "applied", occ["error"]
        assert (occ["outcome"]["external_version"], occ["outcome"]["method"]) == ("2", "KV v2 write")
        wait_until(lambda: binding_row(conn, bound["id"])["external_version"] == "2", timeout=20,
                   what="binding refreshed")
        data = scripted_vault.secrets[("secret", "billing/api")][-1].data
        assert data["user"] == "billing" and len(data["api_key"]) == 32 and data["api_key"] != EXTERNAL
        nowhere_in_cfgctl(conn, data["api_key"])

        # The backend refuses: the occurrence fails with its error, at once (denied is not retried).
        with acting_as(conn, world["admin"]) as cur:
            cur.execute("select cfg.unbind_secret(%s)", (bound["id"],))
        bind(conn, world["admin"], world.automation_a, backend["id"], "vault://secret/elsewhere/api#api_key")
        conn.commit()
        denied = add(conn, world["editor"], world.automation_a, ROTATE, at=FAR + timedelta(hours=1))
        tick(conn, FAR_UTC + timedelta(hours=1))
        occ = settled(conn, denied["id"])
    assert occ["status"] == "failed" and occ["outcome"]["error_kind"] == "denied"
    assert occ["error"].startswith("vault://secret/elsewhere/api#api_key did not rotate: Vault denied")
    assert scripted_vault.secrets[("secret", "elsewhere/api")][-1].data == {"api_key": EXTERNAL}
    failed = conn.execute("select payload from cfg_private.events where type = 'schedule.failed'").fetchone()
    assert "Vault denied" in failed["payload"]["error"]


def dispatched(conn, world, moto):
    aws_bound(conn, world, moto, f"cfgctl-{uuid.uuid4().hex[:8]}/x")
    s = add(conn, world["editor"], world.automation_a, ROTATE)
    tick(conn, FAR_UTC)
    [occ] = occurrences(conn, s["id"])
    conn.commit()
    return occ


def test_a_dispatched_rotation_is_claimed_by_one_worker_and_retried_only_when_transient(conn, world, db_url, moto):
    occ = dispatched(conn, world, moto)
    claim = "select * from cfg_private.claim_schedule_dispatches(10, '1 minute')"
    with psycopg.connect(db_url, row_factory=dict_row) as one, psycopg.connect(db_url, row_factory=dict_row) as two:
        claimed = []
        for c in (one, two):
            c.execute("select set_config('role', 'service_role', false)")
            claimed.append(c.execute(claim).fetchall())
        # The first has not committed: the second skips the row it holds.
        assert ([r["occurrence_id"] for r in claimed[0]], claimed[1]) == ([occ["id"]], [])
        one.commit()
        # Leased: not claimable again until the lease runs out.
        assert two.execute(claim).fetchall() == []
        two.rollback()
    def report():
        conn.commit()
        with acting_as(conn, SERVICE) as cur:
            cur.execute("select cfg_private.report_schedule_dispatch(%s, null, 'unreachable', 'AWS is unreachable')",
                        (occ["id"],))

    for _ in range(4):
        report()
    row = conn.execute("select attempts, next_attempt_at > now() + interval '30 seconds' as later "
                       "from cfg_private.schedule_dispatches").fetchone()
    assert row == {"attempts": 4, "later": True}  # backoff: 5 s doubling
    assert occurrences(conn, occ["schedule_id"])[0]["status"] == "dispatched"
    report()  # the fifth failure is final
    assert occurrences(conn, occ["schedule_id"])[0]["status"] == "failed"
    assert conn.execute("select count(*) from cfg_private.schedule_dispatches").fetchone()["count"] == 0
    # Only the sync service claims and reports.
    conn.commit()
    for who in ("editor", "admin"):
        with pytest.raises(CfgError) as caught, acting_as(conn, world[who]) as cur:
            cur.execute(claim)
        assert caught.value.code == "42501"


def test_a_rotation_whose_secret_was_unbound_meanwhile_fails_saying_so(conn, world, db_url, moto):
    occ = dispatched(conn, world, moto)
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.unbind_secret(%s)", (occ["outcome"]["binding_id"],))
    with acting_as(conn, SERVICE) as cur:
        assert cur.execute("select * from cfg_private.claim_schedule_dispatches(10, '1 minute')").fetchall() == []
    [occ] = occurrences(conn, occ["schedule_id"])
    assert occ["status"] == "failed" and occ["error"] == (
        "the external vault did not rotate: the secret was unbound before its rotation ran")
