"""Broadcasts of a statement that changes many automations (a bulk operation, a multi-row
write): the statement's messages are one insert into realtime.messages, in cursor order,
each on the org's topic then the automation's; a broadcast that fails never fails the
write, and the change log (changes_since) still has every change, gap-free."""

from __future__ import annotations

import json

from sync_service.db import acting_as
from tests.support.realtime import head_cursor, messages, wal_messages
from tests.support.versioning import content, rpc, save


def changes_since(conn, who, org_id, after, max_rows=1000) -> dict:
    return rpc(conn, who, "select cfg.changes_since(%s, %s, %s) as r", (org_id, after, max_rows))["r"]


def new_automations(conn, world, count: int) -> list:
    """count automations of org A made by one multi-row insert (itself a bulk statement)."""
    with acting_as(conn, world["editor"]) as cur:
        return [r["id"] for r in cur.execute(
            "insert into cfg.automations (org_id, name, slug) select %s, 'Bulk ' || n, 'bulk-' || n "
            "from generate_series(1, %s) as n returning id", (world.org_a, count))]


def bulk_tag(conn, who, org_id, ids, batch_size: int) -> dict:
    with acting_as(conn, who) as cur:
        op = cur.execute("select cfg.bulk_apply(%s, %s::jsonb, 'tag', %s::jsonb) as r",
                         (org_id, json.dumps({"ids": [str(i) for i in ids]}),
                          json.dumps({"tags": ["bulk"], "batch_size": batch_size}))).fetchone()["r"]
    while op["status"] == "running":
        op = rpc(conn, who, "select cfg.bulk_continue(%s) as r", (op["id"],))["r"]
    return op


def on_both_topics(changes: list[dict]) -> list[tuple[str, dict]]:
    """What Realtime must stream for these changes, in order: each on its org's topic, then
    on its automation's."""
    return [(topic, c) for c in changes
            for topic in (f"org:{c['org_id']}", c["automation_id"] and f"automation:{c['automation_id']}") if topic]


def test_a_bulk_statements_messages_all_arrive_in_cursor_order_on_both_topics(conn, world):
    org, start = world.org_a, head_cursor(conn, world.org_a)
    conn.execute("set synchronous_commit = on")  # the slot reads what is flushed
    conn.execute("select pg_create_logical_replication_slot('bulk_broadcasts', 'wal2json')")
    conn.commit()
    try:
        ids = new_automations(conn, world, 12)
        created = wal_messages(conn, "bulk_broadcasts")
        # Three batches of five, four and three: three transactions, three statements.
        op = bulk_tag(conn, world["editor"], org, ids, batch_size=5)
        tagged = wal_messages(conn, "bulk_broadcasts")
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('bulk_broadcasts')")
        conn.commit()
    assert (op["status"], op["succeeded"]) == ("completed", 12)

    served = changes_since(conn, world["viewer"], org, start)["changes"]
    # The operation's end reaches the org topic too (a progress bar's last step), once.
    done = served.pop()
    assert (done["type"], done["automation_id"], done["data"]["succeeded"]) == ("bulk.completed", None, 12)
    assert [c["type"] for c in served] == ["automation.created"] * 12 + ["automation.updated"] * 12
    for made in (served[:12], served[12:]):
        assert sorted(c["automation_id"] for c in made) == sorted(str(i) for i in ids)
    assert all("bulk" in c["data"]["tags"] and c["actor"]["email"] == world["editor"].email for c in served[12:])
    # Every change reached both topics once, in cursor order, as the log serves it.
    for sent, changes in ((created, served[:12]), (tagged, served[12:] + [done])):
        assert [(m["topic"], m["payload"]) for m in sent] == on_both_topics(changes)
        assert all(m["event"] == m["payload"]["type"] and m["private"] is True and m["extension"] == "broadcast"
                   for m in sent)
    assert [c["cursor"] for c in served] == sorted(c["cursor"] for c in served)
    # The cursors built inline are change_cursor's.
    assert conn.execute(
        "select bool_and(message ->> 'cursor' = cfg_private.change_cursor(xid, seq) and message ->> 'id' = "
        "message ->> 'cursor' and message ->> 'stable' <= message ->> 'cursor') as ok "
        "from cfg_private.changes where org_id = %s and message ->> 'cursor' > %s", (org, start)).fetchone()["ok"]
    conn.commit()
    # Paged, the log gives the same changes: no gap, no repeat.
    paged, after = [], start
    while True:
        page = changes_since(conn, world["viewer"], org, after, 5)
        paged += page["changes"]
        after = page["next"]
        if not page["more"]:
            break
    assert paged == served + [done]


def test_a_broadcast_that_fails_never_fails_the_write_and_the_log_keeps_every_change(conn, world):
    org = world.org_a
    ids = new_automations(conn, world, 3)
    start = head_cursor(conn, org)
    # Realtime's daily partitions are missing (its janitor has not run): every insert into
    # realtime.messages fails, as it would on a hosted project.
    for row in conn.execute("select inhrelid::regclass::text as p from pg_inherits "
                            "where inhparent = 'realtime.messages'::regclass").fetchall():
        conn.execute(f"alter table realtime.messages detach partition {row['p']}")
    conn.commit()
    warnings: list[str] = []
    conn.add_notice_handler(lambda d: warnings.append(d.message_primary or "") if d.severity_nonlocalized == "WARNING"
                            else None)

    op = bulk_tag(conn, world["editor"], org, ids, batch_size=500)
    saved = save(conn, world["editor"], world.automation_a, 1, content({"http": {"port": 9191}}), "while down")

    assert (op["status"], op["succeeded"]) == ("completed", 3)
    assert saved["version"] == 2
    assert conn.execute("select count(*) as n from cfg.automations where id = any(%s) and 'bulk' = any(tags)",
                        (ids,)).fetchone()["n"] == 3
    assert any(w.startswith("ErrorSendingBroadcastMessage: no partition") for w in warnings)
    assert messages(conn) == []
    served = changes_since(conn, world["viewer"], org, start)["changes"]
    assert [c["type"] for c in served] == ["automation.updated"] * 3 + [
        "bulk.completed", "deployment.moved", "config.saved"]
    assert sorted(c["automation_id"] for c in served[:3]) == sorted(str(i) for i in ids)
