"""Change streams as Supabase Realtime reads them: a wal2json logical slot limited to the
tables of the supabase_realtime publication."""

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

    def read() -> list[dict]:
        tables = ",".join(
            f"{r['schemaname']}.{r['tablename']}" for r in conn.execute(
                "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'"
            )
        )
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


def test_open_tabs_see_automation_and_entry_changes(conn, world, stream):
    stream()  # skip the world's setup
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.automations set description = 'now streaming' where id = %s",
                    (world.automation_a,))
        cur.execute("update cfg.config_entries set value = '9090' where id = %s", (world.entry_a,))
    changes = stream()
    tables = [(c["table"], c["action"]) for c in changes]
    assert ("automations", "U") in tables
    assert ("config_entries", "U") in tables
    entry = next(c for c in changes if c["table"] == "config_entries")
    assert {"name": "value", "type": "jsonb", "value": "9090"} in entry["columns"]


def test_secret_values_never_reach_the_stream(conn, world, stream):
    stream()
    with acting_as(conn, world["editor"]) as cur:
        cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
            "values (%s, %s, %s, 'db_password', '\"correct horse battery\"', true)",
            (world.org_a, world.automation_a, world.section_a),
        )
        cur.execute("update cfg.config_entries set value = '\"rotated staple\"' where id = %s",
                    (world.secret_entry_a,))
    changes = stream()
    published = json.dumps(changes)
    assert any(c["table"] == "config_entries" and c["action"] == "I" for c in changes)
    assert "correct horse battery" not in published
    assert "rotated staple" not in published
    assert "entry_secrets" not in {c["table"] for c in changes}


def test_delete_events_carry_only_the_primary_key(conn, world, stream):
    """Supabase Realtime cannot apply RLS to DELETE events of postgres_changes: the old
    row's identity reaches every subscriber of the table, other orgs' included (README,
    "Realtime"). What leaks is bounded by the replica identity: the primary key alone,
    never org_id, names or values. A table set to REPLICA IDENTITY FULL would leak rows."""
    full = conn.execute(
        "select c.relname from pg_publication_tables p join pg_class c "
        "on c.relname = p.tablename and c.relnamespace = p.schemaname::regnamespace "
        "where p.pubname = 'supabase_realtime' and c.relreplident <> 'd'"
    ).fetchall()
    conn.commit()
    assert full == []
    stream()
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("delete from cfg.config_entries where id = %s", (world.entry_a,))
    deletes = [c for c in stream() if c["action"] == "D"]
    assert deletes and all([i["name"] for i in c["identity"]] == ["id"] for c in deletes)
