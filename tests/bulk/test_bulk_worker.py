"""The continuation worker (sync_service/workers/bulk.py): an operation its client left
running is finished by the worker, as its author; one whose author can no longer act fails."""

from __future__ import annotations

import json
import time

from sync_service.db import acting_as
from sync_service.workers.bulk import BulkContinuation, BulkSettings
from tests.support.workers import WorkerThread


def start_paused_operation(conn, world, who="editor", count=5):
    """An operation of `count` status changes in batches of 2, abandoned after its first batch."""
    with acting_as(conn, world["admin"]) as cur:
        ids = [cur.execute("select id from cfg.create_automation(%s, %s, %s)", (world.org_a, f"A{n}", f"a{n}"))
               .fetchone()["id"] for n in range(count)]
    with acting_as(conn, world[who]) as cur:
        op = cur.execute("select cfg.bulk_apply(%s, %s::jsonb, 'status', %s::jsonb) r", (
            world.org_a, json.dumps({"ids": [str(i) for i in ids]}), json.dumps({"status": "paused", "batch_size": 2}),
        )).fetchone()["r"]
    assert op["status"] == "running" and op["done"] == 2
    abandon(conn, op["id"])
    return op["id"], ids


def abandon(conn, operation_id) -> None:
    """No progress for an hour: its client went away."""
    conn.execute("update cfg.bulk_operations set heartbeat_at = now() - interval '1 hour' where id = %s",
                 (operation_id,))
    conn.commit()


def run_worker_until(conn, db_url, operation_id, wanted: str) -> dict:
    settings = BulkSettings(poll_interval=0.05, stale_after=30.0)
    with WorkerThread(BulkContinuation(db_url, settings, instance="test")):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            row = conn.execute("select * from cfg.bulk_operations where id = %s", (operation_id,)).fetchone()
            conn.commit()
            if row["status"] == wanted:
                return row
            time.sleep(0.05)
    raise AssertionError(f"operation still {row['status']}")


def test_the_worker_finishes_an_abandoned_operation_as_its_author(conn, db_url, world):
    operation_id, ids = start_paused_operation(conn, world)
    # Recent progress: not the worker's business yet.
    conn.execute("update cfg.bulk_operations set heartbeat_at = now() where id = %s", (operation_id,))
    conn.commit()
    settings = BulkSettings(poll_interval=0.05, stale_after=30.0)
    with WorkerThread(BulkContinuation(db_url, settings, instance="test")):
        time.sleep(0.5)
    assert conn.execute("select done from cfg.bulk_operations where id = %s", (operation_id,)).fetchone()["done"] == 2
    abandon(conn, operation_id)

    row = run_worker_until(conn, db_url, operation_id, "completed")
    assert (row["done"], row["succeeded"]) == (5, 5)
    actors = conn.execute(
        "select distinct actor_id, actor_email, actor_role from cfg.audit_log "
        "where table_name = 'automations' and operation = 'UPDATE' and row_id = any(%s)", (ids,)).fetchall()
    assert actors == [{"actor_id": world["editor"].user_id, "actor_email": "editor@example.test",
                       "actor_role": "authenticated"}]
    summaries = conn.execute("select count(*) from cfg_private.events where type = 'bulk.completed'").fetchone()
    assert summaries["count"] == 1


def test_an_author_who_left_the_org_fails_the_operation(conn, db_url, world):
    operation_id, ids = start_paused_operation(conn, world)
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.remove_member(%s, %s)", (world.org_a, world["editor"].user_id))
    row = run_worker_until(conn, db_url, operation_id, "failed")
    assert row["done"] == 2 and row["error"]["code"] == "PT404"
    assert conn.execute("select count(*) from cfg.automations where id = any(%s) and status = 'paused'",
                        (ids,)).fetchone()["count"] == 2
