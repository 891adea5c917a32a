"""Webhooks in the database: validation, SSRF refusals, secrets, fan-out, retry
controls, retention, privileges. The RLS matrix lines: tests/webhooks/test_webhooks_rls.py."""

from __future__ import annotations

import json

import psycopg
import pytest

from sync_service.db import SERVICE, CfgError, acting_as
from tests.support.act import attempt
from tests.support.webhooks import PUBLIC_URL, allow_host, claim_and_record, create_endpoint, deliveries, emit
from tests.webhooks import test_webhooks_rls as webhooks_rls


@pytest.fixture
def endpoint(conn, world):
    return create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL)


def endpoint_count(conn) -> int:
    with conn.transaction():
        return conn.execute("select count(*) as n from cfg.webhook_endpoints").fetchone()["n"]


# =============================================================================
# Creation, secrets
# =============================================================================


def test_create_returns_secret_once_and_it_stays_private(conn, world, endpoint):
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == [] and endpoint["enabled"] is True
    # Admins read the endpoint but never the secret again.
    with acting_as(conn, world["admin"]) as cur:
        row = cur.execute("select * from cfg.webhook_endpoints where id = %s", (endpoint["id"],)).fetchone()
    assert "secret" not in row
    for name in ("admin", "editor", "viewer", "other_admin", "anon"):
        assert attempt(conn, world[name], "select * from cfg_private.webhook_secrets").status == "42501"
    # The service key (the dispatcher) gets it from Vault by its id, through the one function.
    out = attempt(conn, world["service"], "select w.secret from cfg_private.webhook_secrets s, "
                  "cfg_private.webhook_signing_secrets(array[s.secret_id]) w")
    assert out.ok and out.rows[0]["secret"] == endpoint["secret"]
    for name in ("admin", "editor"):
        assert attempt(conn, world[name], "select * from cfg_private.webhook_signing_secrets(array["
                       "gen_random_uuid()])").status == "42501"
    # Audit rows and events never carry the secret (nor the URL, which may hold a token).
    with conn.transaction():
        dump = json.dumps(conn.execute("select * from cfg.audit_log").fetchall(), default=str)
        dump += json.dumps(conn.execute("select * from cfg_private.events").fetchall(), default=str)
    assert endpoint["secret"] not in dump
    assert endpoint["secret"].removeprefix("whsec_") not in dump
    with conn.transaction():
        audit = conn.execute("select * from cfg.audit_log where table_name = 'webhook_endpoints'").fetchone()
    assert audit["new_values"]["url"] == "[redacted]" and audit["actor_email"] == "admin@example.test"


def test_rotation_keeps_previous_secret_for_24_hours(conn, world, endpoint):
    with acting_as(conn, world["admin"]) as cur:
        rotated = cur.execute("select cfg.rotate_webhook_secret(%s) as r", (endpoint["id"],)).fetchone()["r"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    with conn.transaction():
        rows = conn.execute(
            "select v.decrypted_secret as secret, s.expires_at - now() as left from cfg_private.webhook_secrets s "
            "join vault.decrypted_secrets v on v.id = s.secret_id where endpoint_id = %s order by s.created_at",
            (endpoint["id"],)
        ).fetchall()
    assert [r["secret"] for r in rows] == [endpoint["secret"], rotated["secret"]]
    assert rows[0]["left"].total_seconds() == pytest.approx(86400, abs=5) and rows[1]["left"] is None
    # A second rotation ends the oldest secret at once: only one previous secret is valid.
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.rotate_webhook_secret(%s)", (endpoint["id"],))
    with conn.transaction():
        valid = conn.execute(
            "select count(*) as n from cfg_private.webhook_secrets where endpoint_id = %s "
            "and (expires_at is null or expires_at > now())", (endpoint["id"],)
        ).fetchone()["n"]
    assert valid == 2
    with conn.transaction():
        audit = conn.execute("select new_values from cfg.audit_log where table_name = 'webhook_secrets'").fetchall()
    assert audit and all((a["new_values"] or {}).get("secret_id") in (None, "[redacted]") for a in audit)


# =============================================================================
# Bad input: clear error, nothing changed
# =============================================================================


@pytest.mark.parametrize(
    ("url", "event_types", "fragment"),
    [
        ("not a url", [], "invalid webhook URL"),
        ("ftp://example.com/x", [], "invalid webhook URL"),
        ("https://user:pw@example.com/x", [], "invalid webhook URL"),
        ("https://example.com:99999/x", [], "port"),
        ("http://example.com/x", [], "must use https"),
        ("https://127.0.0.1/x", [], "refused"),
        ("https://10.1.2.3/x", [], "refused"),
        ("https://192.168.1.1/x", [], "refused"),
        ("https://169.254.169.254/latest/meta-data", [], "refused"),
        ("https://[::1]/x", [], "refused"),
        ("https://[fd00:ec2::254]/x", [], "refused"),
        ("https://localhost/x", [], "refused"),
        ("https://metadata.google.internal/x", [], "refused"),
        ("https://2130706433/x", [], "refused"),
        (PUBLIC_URL, ["automation.created", "nope.nothing"], "unknown event type"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(conn, world, url, event_types, fragment):
    before = endpoint_count(conn)
    with pytest.raises(CfgError) as error:
        create_endpoint(conn, world["admin"], world.org_a, url, event_types)
    assert error.value.code == "PT422"
    assert fragment in str(error.value)
    assert isinstance(error.value.detail, dict)
    assert endpoint_count(conn) == before


def test_allowlist_admits_private_hosts_and_http(conn, world):
    allow_host(conn, world.org_a, "127.0.0.1")
    created = create_endpoint(conn, world["admin"], world.org_a, "http://127.0.0.1:9/hook")
    assert created["url"] == "http://127.0.0.1:9/hook"
    # The allowlist is per org.
    with pytest.raises(CfgError) as error:
        create_endpoint(conn, world["other_admin"], world.org_b, "http://127.0.0.1:9/hook")
    assert error.value.code == "PT422"
    # A CIDR entry admits a network.
    allow_host(conn, world.org_b, "10.0.0.0/8")
    assert create_endpoint(conn, world["other_admin"], world.org_b, "http://10.1.2.3/x")["enabled"]


def test_filters_must_belong_to_the_org(conn, world):
    with pytest.raises(CfgError) as error:
        create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL, automation_id=world.automation_b)
    assert error.value.code == "PT422" and error.value.detail["field"] == "automation_id"


def test_direct_writes_are_validated_too(conn, world, endpoint):
    out = attempt(conn, world["admin"], "update cfg.webhook_endpoints set url = 'https://10.0.0.1/' "
                  "where id = %s", (endpoint["id"],))
    assert out.status == "PT422"
    out = attempt(conn, world["admin"], "update cfg.webhook_endpoints set event_types = '{x.y}' "
                  "where id = %s", (endpoint["id"],))
    assert out.status == "PT422"


def test_other_orgs_endpoint_is_not_found(conn, world, endpoint):
    for sql in (
        "select cfg.rotate_webhook_secret(%s)",
        "select cfg.set_webhook_endpoint_enabled(%s, false)",
        "select cfg.delete_webhook_endpoint(%s)",
        "select cfg.send_test_webhook(%s)",
        "select * from cfg.webhook_deliveries(%s)",
    ):
        assert attempt(conn, world["other_admin"], sql, (endpoint["id"],)).status == "PT404", sql
    with conn.transaction():
        row = conn.execute("select enabled from cfg.webhook_endpoints where id = %s", (endpoint["id"],)).fetchone()
    assert row["enabled"] is True


# =============================================================================
# Fan-out
# =============================================================================


def test_fan_out_follows_filters(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        prod = cur.execute("select id from cfg.environments where org_id = %s and slug = 'prod'",
                           (world.org_a,)).fetchone()["id"]
    everything = create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL)
    only_created = create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL, ["automation.created"])
    only_prod = create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL, environment_id=prod)
    only_billing = create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL,
                                   automation_id=world.automation_a)
    other_org = create_endpoint(conn, world["other_admin"], world.org_b, PUBLIC_URL)
    disabled = create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL)
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.set_webhook_endpoint_enabled(%s, false)", (disabled["id"],))
        cur.execute("select cfg.create_automation(%s, 'New', 'new-one')", (world.org_a,))
    emit(conn, world.org_a, "promotion.applied", environment_id=prod, automation_id=world.automation_a)

    def types(endpoint):
        return [d["event_type"] for d in deliveries(conn, endpoint["id"])]

    assert types(everything) == ["automation.created", "promotion.applied"]
    assert types(only_created) == ["automation.created"]
    assert types(only_prod) == ["promotion.applied"]
    assert types(only_billing) == ["promotion.applied"]
    assert types(other_org) == [] and types(disabled) == []


def test_known_event_types_include_other_features(conn, world):
    with acting_as(conn, world["viewer"]) as cur:
        known = {r["type"] for r in cur.execute("select * from cfg.webhook_event_types()")}
    assert {"config.saved", "config.rolled_back", "promotion.requested", "promotion.approved",
            "promotion.rejected", "promotion.applied", "member.added", "automation.deleted",
            "webhook.delivery_failed", "webhook.endpoint_disabled", "webhook.test"} <= known


def test_the_outbox_takes_only_registered_types_and_a_registered_type_stays(conn, world):
    """Checked once per statement (no foreign key): one unknown type in a multi-row insert
    refuses the whole insert, with the foreign key's SQLSTATE."""
    count = "select count(*) as n from cfg_private.events"
    before = conn.execute(count).fetchone()["n"]
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="event type 'config.saevd' is not in"):
        conn.execute("insert into cfg_private.events (org_id, type, subject_type, subject_id) "
                     "select %s, t, 'org', %s from unnest(array['config.saved', 'config.saevd']) as t",
                     (world.org_a, world.org_a))
    conn.rollback()
    assert conn.execute(count).fetchone()["n"] == before
    for statement in ("delete from cfg_private.event_types where type = 'config.saved'",
                      "update cfg_private.event_types set type = 'config.stored' where type = 'config.saved'"):
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="registered for good"):
            conn.execute(statement)
        conn.rollback()
    conn.execute("update cfg_private.event_types set description = description where type = 'config.saved'")
    conn.rollback()


# =============================================================================
# Retry controls and the log (dispatcher simulated through its SQL functions)
# =============================================================================


def test_retry_controls(conn, world, endpoint):
    emit(conn, world.org_a)
    emit(conn, world.org_a)
    claim_and_record(conn, "failed")
    failed = deliveries(conn, endpoint["id"])
    assert [d["status"] for d in failed] == ["failed", "failed"]
    with conn.transaction():
        events = conn.execute(
            "select payload from cfg_private.events where type = 'webhook.delivery_failed'"
        ).fetchall()
    assert len(events) == 2 and events[0]["payload"]["endpoint_id"] == endpoint["id"]
    # An endpoint never receives news of its own failures.
    assert [d["event_type"] for d in deliveries(conn, endpoint["id"])].count("webhook.delivery_failed") == 0

    with acting_as(conn, world["admin"]) as cur:
        retried = cur.execute("select * from cfg.retry_webhook_delivery(%s)", (failed[0]["id"],)).fetchone()
    assert retried["status"] == "pending"
    assert attempt(conn, world["admin"], "select * from cfg.retry_webhook_delivery(%s)",
                   (failed[0]["id"],)).status == "PT409"
    with acting_as(conn, world["admin"]) as cur:
        n = cur.execute("select cfg.retry_failed_webhook_deliveries(%s, now() - interval '1 hour') as n",
                        (endpoint["id"],)).fetchone()["n"]
    assert n == 1
    assert attempt(conn, world["admin"], "select cfg.retry_failed_webhook_deliveries(%s, null)",
                   (endpoint["id"],)).status == "PT422"
    rows = claim_and_record(conn, "succeeded", 200)
    assert {r["attempt"] for r in rows} == {2} and {r["run_attempt"] for r in rows} == {1}
    with acting_as(conn, world["admin"]) as cur:
        listed = cur.execute("select * from cfg.webhook_deliveries(%s, 'succeeded')", (endpoint["id"],)).fetchall()
        log = cur.execute("select * from cfg.webhook_delivery_attempts(%s)", (failed[0]["id"],)).fetchall()
    assert len(listed) == 2
    assert [(a["attempt"], a["status_code"]) for a in log] == [(1, 500), (2, 200)]
    assert attempt(conn, world["admin"], "select * from cfg.webhook_deliveries(%s, 'bogus')",
                   (endpoint["id"],)).status == "PT422"


def test_send_test_event_goes_to_one_endpoint(conn, world, endpoint):
    other = create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL)
    with acting_as(conn, world["admin"]) as cur:
        delivery_id = cur.execute("select cfg.send_test_webhook(%s, '{\"hello\": 1}') as id",
                                  (endpoint["id"],)).fetchone()["id"]
    assert [d["id"] for d in deliveries(conn, endpoint["id"])] == [delivery_id]
    assert deliveries(conn, other["id"]) == []
    big = json.dumps({"x": "y" * 300000})
    assert attempt(conn, world["admin"], "select cfg.send_test_webhook(%s, %s)",
                   (endpoint["id"], big)).status == "PT422"


def test_disabling_cancels_pending_and_refuses_retries(conn, world, endpoint):
    emit(conn, world.org_a)
    with acting_as(conn, world["admin"]) as cur:
        row = cur.execute("select * from cfg.set_webhook_endpoint_enabled(%s, false)", (endpoint["id"],)).fetchone()
    assert row["disabled_reason"] == "disabled by admin@example.test"
    assert [d["status"] for d in deliveries(conn, endpoint["id"])] == ["cancelled"]
    assert attempt(conn, world["admin"], "select cfg.send_test_webhook(%s)", (endpoint["id"],)).status == "PT409"
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.set_webhook_endpoint_enabled(%s, true)", (endpoint["id"],))
        n = cur.execute("select cfg.retry_failed_webhook_deliveries(%s, now() - interval '1 day') as n",
                        (endpoint["id"],)).fetchone()["n"]
    assert n == 1


def test_endpoint_failing_for_days_is_disabled_with_event_and_audit(conn, world, endpoint):
    emit(conn, world.org_a)
    claim_and_record(conn, "retry")
    with conn.transaction():
        conn.execute("update cfg_private.webhook_endpoint_health set failing_since = now() - interval '6 days'")
        conn.execute("update cfg_private.webhook_deliveries set next_attempt_at = now()")
    claim_and_record(conn, "retry")
    with conn.transaction():
        ep = conn.execute("select * from cfg.webhook_endpoints where id = %s", (endpoint["id"],)).fetchone()
        event = conn.execute("select * from cfg_private.events where type = 'webhook.endpoint_disabled'").fetchone()
        audit = conn.execute("select * from cfg.audit_log where table_name = 'webhook_endpoints' "
                             "and operation = 'UPDATE'").fetchone()
    assert ep["enabled"] is False and ep["disabled_reason"].startswith("failing continuously since")
    assert event["payload"]["endpoint_id"] == endpoint["id"]
    assert audit["actor_role"] == "service_role" and audit["new_values"]["enabled"] is False


def test_retention_purges_old_log(conn, world, endpoint):
    emit(conn, world.org_a)
    claim_and_record(conn, "succeeded", 200)
    emit(conn, world.org_a)
    with conn.transaction():
        conn.execute("update cfg_private.webhook_attempts set created_at = now() - interval '31 days'")
        conn.execute("update cfg_private.webhook_deliveries set completed_at = now() - interval '31 days' "
                     "where status = 'succeeded'")
    with acting_as(conn, SERVICE) as cur:
        removed = cur.execute("select cfg_private.purge_webhook_log() as n").fetchone()["n"]
    assert removed == 2
    assert [d["status"] for d in deliveries(conn, endpoint["id"])] == ["pending"]
    assert attempt(conn, SERVICE, "select cfg_private.purge_webhook_log('1 hour')").status == "PT422"
    assert attempt(conn, world["admin"], "select cfg_private.purge_webhook_log()").status == "42501"


def test_retention_job_is_scheduled_where_pg_cron_lives(pg_cluster, template_url):
    from sync_service import local_stack as local

    local.provision(pg_cluster.db_url, seed=False)
    with psycopg.connect(pg_cluster.db_url) as c:
        job = c.execute("select schedule, command from cron.job where jobname = 'cfgctl-webhook-log-retention'"
                        ).fetchone()
    assert job is not None and "purge_webhook_log" in job[1]


# =============================================================================
# Privileges: cfg RPCs are SECURITY INVOKER; no function of the area is executable
# by PUBLIC; trigger functions by nobody (they cannot be attached elsewhere)
# =============================================================================

WEBHOOK_RPCS = [name.split(":")[0] for name in webhooks_rls.RPCS]
TRIGGER_FUNCTIONS = ("fan_out_event", "webhook_endpoint_changed", "check_webhook_endpoint",
                     "automation_event", "member_event")


def test_webhook_rpcs_are_security_invoker(conn):
    with conn.transaction():
        definer = conn.execute(
            "select p.proname from pg_proc as p where p.pronamespace = 'cfg'::regnamespace "
            "and p.prosecdef and p.proname = any(%s)", (list(WEBHOOK_RPCS),)).fetchall()
    assert definer == []


def test_no_webhook_function_is_executable_by_public(conn):
    with conn.transaction():
        rows = conn.execute(
            """
            select p.oid::regprocedure::text as name, p.prorettype = 'trigger'::regtype as is_trigger,
                   array(select a.grantee::regrole::text
                         from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) as a
                         where a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner) as grantees
            from pg_proc as p
            where p.pronamespace in ('cfg'::regnamespace, 'cfg_private'::regnamespace)
              and (p.proname like '%%webhook%%' or p.proname = any(%s) or p.proname = 'emit_event')
            """, (list(TRIGGER_FUNCTIONS),)).fetchall()
    assert len(rows) > 20
    public = [r["name"] for r in rows if "-" in r["grantees"]]  # aclexplode's grantee 0 is PUBLIC
    assert public == []
    assert {r["name"]: r["grantees"] for r in rows if r["is_trigger"]} == {
        f"cfg_private.{name}()": [] for name in TRIGGER_FUNCTIONS}


@pytest.mark.parametrize("who", ["editor", "admin"])
@pytest.mark.parametrize(
    ("function", "columns"),
    [
        # Would copy another org's events (any org_id) into deliveries to its endpoints.
        ("fan_out_event", "id bigint, org_id uuid, type text, environment_id uuid, automation_id uuid, payload jsonb"),
        # Would cancel any endpoint's pending deliveries.
        ("webhook_endpoint_changed", "id uuid, org_id uuid, enabled boolean"),
        ("automation_event", "id uuid, org_id uuid"),
        ("member_event", "user_id uuid, org_id uuid, role text"),
        ("check_webhook_endpoint", "org_id uuid, url text"),
    ],
)
def test_trigger_functions_cannot_be_attached_to_a_temp_table(conn, world, who, function, columns):
    create = (f"create temp table forged ({columns}) on commit drop; "
              "create trigger forge after insert or update on forged for each row execute function {}()")
    # The user can create the temp table and attach a trigger function of their own...
    own = "create function pg_temp.noop() returns trigger language plpgsql as $$ begin return null; end $$; "
    assert attempt(conn, world[who], own + create.format("pg_temp.noop")).ok
    # ...but not ours.
    assert attempt(conn, world[who], create.format(f"cfg_private.{function}")).status == "42501"


def test_secret_is_handed_out_once(conn, world, endpoint):
    # The helper behind create_webhook_endpoint gives nothing a second time, to anyone.
    for who in ("admin", "service"):
        assert attempt(conn, world[who], "select cfg_private.reveal_webhook_secret(%s) as s",
                       (endpoint["id"],)).rows == [{"s": None}], who
    assert attempt(conn, world["other_admin"], "select cfg_private.reveal_webhook_secret(%s)",
                   (endpoint["id"],)).status == "PT404"
    assert attempt(conn, world["editor"], "select cfg_private.reveal_webhook_secret(%s)",
                   (endpoint["id"],)).status == "PT403"
    # A rotation's secret is returned by the rotation and never again either.
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.rotate_webhook_secret(%s)", (endpoint["id"],))
    assert attempt(conn, world["admin"], "select cfg_private.reveal_webhook_secret(%s) as s",
                   (endpoint["id"],)).rows == [{"s": None}]


def test_privileged_helpers_check_the_caller_themselves(conn, world, endpoint):
    """Called directly (SQL access), the definer helpers behind the RPCs refuse exactly
    as the RPCs do, and keep the RPCs' own checks."""
    emit(conn, world.org_a)
    claim_and_record(conn, "failed")
    delivery_id = deliveries(conn, endpoint["id"])[0]["id"]
    calls = [
        ("select cfg_private.replace_webhook_secret(%s)", (endpoint["id"],)),
        ("select cfg_private.queue_test_webhook(%s, null)", (endpoint["id"],)),
        ("select * from cfg_private.webhook_delivery_log(%s, null, null, 10)", (endpoint["id"],)),
        ("select * from cfg_private.webhook_attempt_log(%s)", (delivery_id,)),
        ("select cfg_private.webhook_delivery_endpoint(%s, 'x')", (delivery_id,)),
        ("select * from cfg_private.requeue_webhook_deliveries(%s, %s, null)", (endpoint["id"], delivery_id)),
    ]
    expected = {"anon": "42501", "viewer": "PT403", "editor": "PT403", "other_admin": "PT404"}
    for sql, params in calls:
        for who, code in expected.items():
            assert attempt(conn, world[who], sql, params).status == code, (who, sql)
    # An admin of another org cannot reach this org's delivery through their own endpoint.
    theirs = create_endpoint(conn, world["other_admin"], world.org_b, PUBLIC_URL)
    assert attempt(conn, world["other_admin"], "select * from cfg_private.requeue_webhook_deliveries(%s, %s, null)",
                   (theirs["id"], delivery_id)).rows == []
    assert deliveries(conn, endpoint["id"])[0]["status"] == "failed"
    # The helpers keep the RPCs' checks: nothing is queued for a disabled endpoint.
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.set_webhook_endpoint_enabled(%s, false)", (endpoint["id"],))
    for sql, params in calls[1:2] + calls[5:]:
        assert attempt(conn, world["admin"], sql, params).status == "PT409", sql


def test_an_event_type_no_migration_registered_cannot_be_emitted(conn, world):
    """The outbox references the type catalogue: a typo in a trigger fails loudly
    instead of emitting events no webhook filter can name."""
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("select cfg_private.emit_event(%s, 'config.savde', 'config_version', null, null, '{}', null)",
                     (world.org_a,))
    conn.rollback()
