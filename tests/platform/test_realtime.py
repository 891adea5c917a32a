"""Change streams as Supabase Realtime reads them: wal2json logical slots. Tenant data no
longer travels by postgres_changes (the supabase_realtime publication, whose DELETEs
Realtime cannot filter by RLS); it travels as broadcasts, rows of realtime.messages that
Realtime reads from the WAL and sends only to clients its RLS check let join the topic
(tests/realtime/)."""

from __future__ import annotations

import json

import pytest

from sync_service.db import acting_as


@pytest.fixture
def stream(conn):
    # Decoding stops at the flushed WAL; the test cluster commits asynchronously, so this
    # connection's commits must be flushed to be visible to the slot at once.
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot('realtime_test', 'wal2json')")
    conn.commit()

    def read(tables: str) -> list[dict]:
        rows = conn.execute(
            "select data from pg_logical_slot_get_changes('realtime_test', null, null, "
            "'format-version', '2', 'add-tables', %s)",
            (tables,),
        ).fetchall()
        conn.commit()
        return [json.loads(r["data"]) for r in rows if json.loads(r["data"])["action"] in "IUD"]

    yield read
    conn.rollback()
    conn.execute("select pg_drop_replication_slot('realtime_test')")
    conn.commit()


def test_open_tabs_see_automation_and_entry_changes_as_broadcasts(conn, world, stream):
    stream("realtime.*")  # skip the world's setup
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.automations set description = 'now streaming' where id = %s",
                    (world.automation_a,))
        cur.execute("update cfg.config_entries set value = '9090' where id = %s", (world.entry_a,))
    messages = [{c["name"]: c["value"] for c in m["columns"]} for m in stream("realtime.*")]
    events = {(m["topic"], m["event"]) for m in messages}
    assert (f"org:{world.org_a}", "automation.updated") in events
    assert (f"automation:{world.automation_a}", "config.saved") in events
    saved = next(json.loads(m["payload"]) for m in messages if m["event"] == "config.saved")
    assert {"key": "port", "change": "changed", "secret": False, "section": "http"} in saved["data"]["changes"]


def test_secret_values_never_reach_any_stream(conn, world, stream):
    stream("realtime.*")
    with acting_as(conn, world["editor"]) as cur:
        cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
            "values (%s, %s, %s, 'db_password', '\"correct horse battery\"', true)",
            (world.org_a, world.automation_a, world.section_a),
        )
        cur.execute("update cfg.config_entries set value = '\"rotated staple\"' where id = %s",
                    (world.secret_entry_a,))
    published = json.dumps(stream("realtime.*"))
    assert "config.saved" in published
    assert "correct horse battery" not in published
    assert "rotated staple" not in published
    assert "entry_secrets" not in published


def test_no_tenant_table_is_published(conn):
    """Upgrading took every cfg table out of supabase_realtime (docs/realtime.md): nothing of
    a tenant's, a deleted row's key included, reaches postgres_changes subscribers."""
    published = conn.execute(
        "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'"
    ).fetchall()
    assert [p for p in published if p["schemaname"] in ("cfg", "cfg_private")] == []
