"""The dispatcher against a real local HTTP receiver: Standard Webhooks signatures
checked by the `standardwebhooks` package, retries, Retry-After, 410, rotation,
SSRF at send time, kill -9, two workers, a Postgres restart, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import time

import psycopg
import pytest
from psycopg.rows import dict_row
from standardwebhooks.webhooks import Webhook

from sync_service.db import SERVICE, acting_as
from tests.support.webhooks import (
    Receiver,
    Reply,
    ThreadDispatcher,
    allow_host,
    attempts,
    create_endpoint,
    deliveries,
    emit,
    fast_settings,
    start_serve,
    stop_serve,
    wait_until,
)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def hook(conn, world, receiver):
    """An endpoint of org A on the local receiver (127.0.0.1 allowlisted, as in the issue)."""
    allow_host(conn, world.org_a, "127.0.0.1")
    return create_endpoint(conn, world["admin"], world.org_a, receiver.url("/hook"))


def settled(conn, endpoint_id, count=1, status="succeeded", timeout=10.0):
    return wait_until(
        lambda: (rows := deliveries(conn, endpoint_id)) and len(rows) >= count
        and all(r["status"] == status for r in rows) and rows,
        timeout=timeout, what=f"{count} deliveries {status}",
    )


def verify(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


def test_delivery_is_signed_and_verifies_with_standardwebhooks(conn, world, receiver, hook, db_url):
    with ThreadDispatcher(db_url):
        with acting_as(conn, world["editor"]) as cur:
            cur.execute("select cfg.create_automation(%s, 'Payments', 'payments')", (world.org_a,))
        (request,) = receiver.wait_for(1)
        (delivery,) = settled(conn, hook["id"])
    body = verify(hook["secret"], request)
    assert body["type"] == "automation.created"
    assert body["data"]["payload"]["automation"]["slug"] == "payments"
    assert body["data"]["actor"]["email"] == "editor@example.test"
    assert request.headers["webhook-id"] == body["id"] == f"evt_{delivery['event_id']}"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert request.headers["content-type"] == "application/json"
    (logged,) = attempts(conn, delivery["id"])
    assert logged["status_code"] == 200 and logged["response_excerpt"] == "ok" and logged["latency_ms"] >= 0
    # A wrong secret does not verify.
    with pytest.raises(Exception):  # noqa: B017
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)


def test_retries_on_500_and_timeout_then_succeeds(conn, world, receiver, hook, db_url):
    receiver.script("/hook", Reply(500, body=b"boom"), Reply(200, delay=1.6), Reply(200))
    with ThreadDispatcher(db_url):
        emit(conn, world.org_a)
        requests = receiver.wait_for(3)
        (delivery,) = settled(conn, hook["id"])
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    for r in requests:
        verify(hook["secret"], r)
    log = attempts(conn, delivery["id"])
    assert [a["status_code"] for a in log] == [500, None, 200]
    assert log[0]["response_excerpt"] == "boom" and "timed out" in log[1]["error"]
    assert requests[1].at - requests[0].at >= 0.18  # the schedule's 0.2 s (no jitter in tests)
    assert delivery["attempt_count"] == 3


def test_retry_after_is_honoured(conn, world, receiver, hook, db_url):
    receiver.script("/hook", Reply(503, headers={"Retry-After": "1"}))
    with ThreadDispatcher(db_url):
        emit(conn, world.org_a)
        first, second = receiver.wait_for(2)
        settled(conn, hook["id"])
    assert second.at - first.at >= 0.95  # not the schedule's 0.2 s


def test_exhausted_retries_fail_and_raise_an_event(conn, world, receiver, hook, db_url):
    watcher = create_endpoint(conn, world["admin"], world.org_a, receiver.url("/watch"), ["webhook.delivery_failed"])
    receiver.script("/hook", *[Reply(500)] * 4)
    with ThreadDispatcher(db_url):
        emit(conn, world.org_a)
        (notice,) = receiver.wait_for(1, "/watch")
        (delivery,) = settled(conn, hook["id"], status="failed")
    assert len(receiver.on("/hook")) == 4
    body = verify(watcher["secret"], notice)
    assert body["type"] == "webhook.delivery_failed"
    assert body["data"]["payload"]["delivery_id"] == delivery["id"]
    assert body["data"]["payload"]["attempts"] == 4
    with conn.transaction():
        health = conn.execute("select failing_since from cfg_private.webhook_endpoint_health").fetchone()
    assert health["failing_since"] is not None


def test_410_disables_the_endpoint(conn, world, receiver, hook, db_url):
    receiver.script("/hook", Reply(410))
    with ThreadDispatcher(db_url):
        emit(conn, world.org_a)
        settled(conn, hook["id"], status="failed")
        emit(conn, world.org_a)
        time.sleep(0.3)
    assert len(receiver.on("/hook")) == 1
    with conn.transaction():
        endpoint = conn.execute("select * from cfg.webhook_endpoints where id = %s", (hook["id"],)).fetchone()
        event = conn.execute("select * from cfg_private.events where type = 'webhook.endpoint_disabled'").fetchone()
        audit = conn.execute("select * from cfg.audit_log where table_name = 'webhook_endpoints' "
                             "and operation = 'UPDATE'").fetchone()
    assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"]
    assert event["payload"]["endpoint_id"] == hook["id"]
    assert audit["new_values"]["enabled"] is False and audit["actor_role"] == "service_role"


def test_rotation_signs_with_both_secrets(conn, world, receiver, hook, db_url):
    with acting_as(conn, world["admin"]) as cur:
        new_secret = cur.execute("select cfg.rotate_webhook_secret(%s) as r", (hook["id"],)).fetchone()["r"]["secret"]
        cur.execute("select cfg.send_test_webhook(%s, '{\"ping\": true}')", (hook["id"],))
    with ThreadDispatcher(db_url):
        (request,) = receiver.wait_for(1)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert verify(new_secret, request)["type"] == "webhook.test"
    assert verify(hook["secret"], request)["data"]["payload"]["ping"] is True


def test_send_time_ssrf_refusal(conn, world, receiver, hook, db_url):
    # The operator withdraws the allowlist entry after the endpoint was created.
    with acting_as(conn, SERVICE) as cur:
        cur.execute("delete from cfg.webhook_allowed_hosts")
    with ThreadDispatcher(db_url, fast_settings(retry_schedule="0")):
        emit(conn, world.org_a)
        (delivery,) = settled(conn, hook["id"], status="failed")
    assert receiver.on("/hook") == []
    (logged,) = attempts(conn, delivery["id"])
    assert logged["status_code"] is None and logged["error"].startswith("refused")


def test_oversized_payload_is_replaced_by_a_marker(conn, world, receiver, hook, db_url):
    emit(conn, world.org_a, payload={"blob": "x" * 300_000})
    with ThreadDispatcher(db_url):
        (request,) = receiver.wait_for(1)
    body = verify(hook["secret"], request)
    assert body["data"]["payload"]["truncated"] is True and len(request.body) < 10_000


def test_kill_9_mid_delivery_is_delivered_again_after_the_lease(conn, world, receiver, hook, db_url, tmp_path):
    receiver.script("/hook", Reply(200, delay=5))
    proc = start_serve(db_url, tmp_path / "serve.log")
    try:
        emit(conn, world.org_a)
        receiver.wait_for(1, timeout=20)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        (pending,) = deliveries(conn, hook["id"])
        assert pending["status"] == "pending" and pending["attempt_count"] == 1
    finally:
        stop_serve(proc)
    with ThreadDispatcher(db_url):
        requests = receiver.wait_for(2, timeout=15)
        (delivery,) = settled(conn, hook["id"])
    assert requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"]
    assert delivery["attempt_count"] == 2
    # Attempt 1 died with its worker; attempt 2 is logged.
    assert [a["attempt"] for a in attempts(conn, delivery["id"])] == [2]


def test_two_workers_never_send_the_same_attempt(conn, world, receiver, hook, db_url, tmp_path):
    procs = [start_serve(db_url, tmp_path / f"serve{i}.log", CFGCTL_WEBHOOK_BATCH_SIZE=5,
                         CFGCTL_WEBHOOK_TIMEOUT=10, CFGCTL_WEBHOOK_LEASE=30) for i in range(2)]
    try:
        def connected() -> bool:
            with conn.transaction():  # pg_stat_activity is a per-transaction snapshot
                return conn.execute(
                    "select count(distinct application_name) as n from pg_stat_activity "
                    "where application_name like 'cfgctl-webhooks%%'").fetchone()["n"] == 2

        wait_until(connected, timeout=20, what="two workers connected")
        with conn.transaction():
            conn.execute("select cfg_private.emit_event(%s, 'automation.updated', 'automation', null, null, "
                         "jsonb_build_object('i', i)) from generate_series(1, 300) as i", (world.org_a,))
        receiver.wait_for(300, timeout=30)
        settled(conn, hook["id"], count=300, timeout=20)
    finally:
        for proc in procs:
            stop_serve(proc)
    ids = [r.headers["webhook-id"] for r in receiver.on("/hook")]
    assert len(ids) == len(set(ids)) == 300
    with conn.transaction():
        workers = conn.execute(
            "select count(distinct split_part(worker, '/', 1)) as n, count(*) as attempts, "
            "count(distinct (delivery_id, attempt)) as distinct_attempts from cfg_private.webhook_attempts"
        ).fetchone()
    assert workers["attempts"] == workers["distinct_attempts"] == 300 and workers["n"] == 2


def test_dispatcher_rides_out_a_postgres_restart(pg_cluster, conn, world, receiver, hook, db_url):
    with ThreadDispatcher(db_url) as dispatcher:
        emit(conn, world.org_a)
        receiver.wait_for(1)
        conn.close()
        try:
            pg_cluster.stop()
            time.sleep(0.5)
        finally:
            pg_cluster.start()
        with psycopg.connect(db_url, row_factory=dict_row) as fresh:
            emit(fresh, world.org_a)
            receiver.wait_for(2, timeout=20)
            settled(fresh, hook["id"], count=2)
        assert dispatcher.health.reconnects >= 1


def test_cli_webhook_commands(conn, world, receiver, db_url, cfgctl):
    allow_host(conn, world.org_a, "127.0.0.1")
    admin = ["--as", "admin@example.test", "--json"]
    added = cfgctl("webhook", "add", "org-a", receiver.url("/cli"), "--event", "webhook.test", *admin)
    assert added.code == 0, added.err
    endpoint = json.loads(added.out)
    assert endpoint["secret"].startswith("whsec_")
    listed = json.loads(cfgctl("webhook", "list", "org-a", *admin).out)
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    tested = json.loads(cfgctl("webhook", "test", endpoint["id"], *admin).out)
    with ThreadDispatcher(db_url):
        (request,) = receiver.wait_for(1, "/cli")
        settled(conn, endpoint["id"])
    verify(endpoint["secret"], request)
    shown = json.loads(cfgctl("webhook", "deliveries", endpoint["id"], *admin).out)
    assert [d["id"] for d in shown] == [tested["delivery_id"]] and shown[0]["status"] == "succeeded"
    log = json.loads(cfgctl("webhook", "deliveries", endpoint["id"], "--attempts",
                            str(tested["delivery_id"]), *admin).out)
    assert log[0]["status_code"] == 200
    rotated = json.loads(cfgctl("webhook", "rotate-secret", endpoint["id"], *admin).out)
    assert rotated["secret"] != endpoint["secret"]
    # Bad input: exit code 6 (invalid), 4 (forbidden); nothing changed.
    bad = cfgctl("webhook", "add", "org-a", "https://10.0.0.1/x", *admin)
    assert bad.code == 6 and "refused" in bad.err
    viewer = cfgctl("webhook", "rotate-secret", endpoint["id"], "--as", "viewer@example.test")
    assert viewer.code == 4
    assert cfgctl("webhook", "retry", *admin).code == 6
    assert cfgctl("serve", "--worker", "nope").code == 6
    removed = cfgctl("webhook", "rm", endpoint["id"], "--yes", "--as", "admin@example.test")
    assert removed.code == 0, removed.err
    assert json.loads(cfgctl("webhook", "list", "org-a", *admin).out) == []


def test_endpoint_failing_continuously_is_disabled(conn, world, receiver, hook, db_url):
    receiver.script("/hook", *[Reply(500)] * 10)
    with ThreadDispatcher(db_url, fast_settings(disable_after=0.3)):
        emit(conn, world.org_a)
        wait_until(lambda: not outcome_enabled(conn, hook["id"]), what="endpoint disabled")
    with conn.transaction():
        endpoint = conn.execute("select * from cfg.webhook_endpoints where id = %s", (hook["id"],)).fetchone()
        events = conn.execute("select type from cfg_private.events where type like 'webhook.%%' order by id").fetchall()
    assert endpoint["disabled_reason"].startswith("failing continuously since")
    assert {"type": "webhook.endpoint_disabled"} in events
    # Disabling cancelled what was still queued; the attempts so far are logged.
    (delivery,) = deliveries(conn, hook["id"])
    assert delivery["status"] in ("cancelled", "failed") and 2 <= len(attempts(conn, delivery["id"])) <= 4


def outcome_enabled(conn, endpoint_id) -> bool:
    with conn.transaction():
        return conn.execute("select enabled from cfg.webhook_endpoints where id = %s", (endpoint_id,)).fetchone()[
            "enabled"]
