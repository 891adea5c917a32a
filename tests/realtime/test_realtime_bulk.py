"""Broadcasts of a statement that changes many automations (a bulk operation, a multi-row
write): the statement's messages are one insert into realtime.messages, in cursor order,
each on the org's topic then the automation's; a bulk batch is one message on the org's
topic, which tabs open on one automation hear too; a broadcast that fails never fails the
write, and the change log (changes_since) still has every change, gap-free."""

from __future__ import annotations

import json

from sync_service.db import acting_as
from tests.support.act import attempt
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


def bulk_run(conn, who, org_id, ids, action: str, **options) -> dict:
    """A bulk operation driven to its end, as its author's client would."""
    with acting_as(conn, who) as cur:
        op = cur.execute("select cfg.bulk_apply(%s, %s::jsonb, %s, %s::jsonb) as r",
                         (org_id, json.dumps({"ids": [str(i) for i in ids]}), action,
                          json.dumps(options))).fetchone()["r"]
    while op["status"] == "running":
        op = rpc(conn, who, "select cfg.bulk_continue(%s) as r", (op["id"],))["r"]
    return op


def bulk_tag(conn, who, org_id, ids, batch_size: int, action: str = "tag") -> dict:
    return bulk_run(conn, who, org_id, ids, action, tags=["bulk"], batch_size=batch_size)


def on_topics(changes: list[dict]) -> list[tuple[str, dict]]:
    """What Realtime must stream for these changes, in order: each on its org's topic, then
    on its automation's."""
    return [(topic, c) for c in changes
            for topic in (f"org:{c['org_id']}", c["automation_id"] and f"automation:{c['automation_id']}") if topic]


def paged(conn, who, org_id, after, automation_id=None) -> list[dict]:
    """Everything changes_since serves after a cursor, five at a time."""
    served = []
    while True:
        page = rpc(conn, who, "select cfg.changes_since(%s, %s, 5, %s) as r", (org_id, after, automation_id))["r"]
        served += page["changes"]
        after = page["next"]
        if not page["more"]:
            return served


def apply(state: dict, message: dict) -> None:
    """A dashboard's store (docs/realtime.md): automations by id; a tab open on one
    automation holds only that one."""
    data = message["data"]
    if message["type"] in ("automation.created", "automation.updated"):
        state[data["id"]] = {k: data[k] for k in ("status", "tags", "updated_at", "updated_by")}
    elif message["type"] == "automations.bulk_updated":
        for automation_id in (i for i in data["automation_ids"] if i in state):
            row = state[automation_id]
            tags = data["changes"].get("tags", {})
            row["status"] = data["changes"].get("status", row["status"])
            row["tags"] = [t for t in row["tags"] if t not in tags.get("remove", [])]
            row["tags"] += [t for t in tags.get("add", []) if t not in row["tags"]]
            row.update(updated_at=data["updated_at"], updated_by=data["updated_by"])


def snapshot(conn, ids) -> dict:
    """The automations as list_automations would load them."""
    rows = conn.execute("select id::text, to_jsonb(a) as r from cfg.automations as a where id = any(%s)",
                        (ids,)).fetchall()
    conn.commit()
    return {r["id"]: {k: r["r"][k] for k in ("status", "tags", "updated_at", "updated_by")} for r in rows}


def test_a_bulk_batch_is_one_message_on_the_org_topic_and_none_on_its_automations(conn, world):
    org, start = world.org_a, head_cursor(conn, world.org_a)
    conn.execute("set synchronous_commit = on")  # the slot reads what is flushed
    conn.execute("select pg_create_logical_replication_slot('bulk_broadcasts', 'wal2json')")
    conn.commit()
    try:
        ids = new_automations(conn, world, 12)
        created = wal_messages(conn, "bulk_broadcasts")
        before = snapshot(conn, ids)
        after_create = head_cursor(conn, org)
        # Three batches of five, five and two: three transactions, three statements.
        op = bulk_tag(conn, world["editor"], org, ids, batch_size=5)
        untag = bulk_tag(conn, world["editor"], org, ids[:2], batch_size=500, action="untag")
        tagged = wal_messages(conn, "bulk_broadcasts")
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('bulk_broadcasts')")
        conn.commit()
    assert (op["status"], op["succeeded"], untag["succeeded"]) == ("completed", 12, 2)

    # The org topic: the 12 creations (a multi-row insert is no bulk operation), then one
    # automations.bulk_updated per batch and the operation's end (a progress bar's last step).
    served = changes_since(conn, world["viewer"], org, start)["changes"]
    assert [c["type"] for c in served] == ["automation.created"] * 12 + [
        "automations.bulk_updated", "automations.bulk_updated", "automations.bulk_updated", "bulk.completed",
        "automations.bulk_updated", "bulk.completed"]
    batches = [c["data"] for c in served[12:] if c["type"] == "automations.bulk_updated"]
    assert [b["automation_ids"] for b in batches] == [
        [str(i) for i in ids[:5]], [str(i) for i in ids[5:10]], [str(i) for i in ids[10:]], [str(i) for i in ids[:2]]]
    assert [(b["operation_id"], b["action"], b["changes"]) for b in batches] == [
        (op["id"], "tag", {"tags": {"add": ["bulk"]}})] * 3 + [(untag["id"], "untag", {"tags": {"remove": ["bulk"]}})]
    assert all(c["automation_id"] is None and c["actor"]["email"] == world["editor"].email for c in served[12:])
    # An automation's catch-up: its creation, then the batches that changed it (the first
    # tag batch and the untag), as its tab heard them on the org's topic; the last
    # automation was in neither of those.
    first = rpc(conn, world["viewer"], "select cfg.changes_since(%s, %s, 100, %s) as r", (org, start, ids[0]))["r"]
    assert first["changes"] == [served[0], served[12], served[16]]
    last = rpc(conn, world["viewer"], "select cfg.changes_since(%s, %s, 100, %s) as r", (org, start, ids[-1]))["r"]
    assert last["changes"] == [served[11], served[14]]
    # What Realtime streamed is what the log serves, topic by topic, in cursor order: no
    # automation.updated, on any topic, for a bulk batch.
    every = conn.execute("select message from cfg_private.changes where org_id = %s and message ->> 'cursor' > %s "
                         "order by xid, seq", (org, start)).fetchall()
    sent = [(m["topic"], m["payload"]) for m in created + tagged]
    assert sent == on_topics([r["message"] for r in every])
    assert not any(m["payload"]["type"] == "automation.updated" for m in tagged)
    assert all(m["event"] == m["payload"]["type"] and m["private"] is True and m["extension"] == "broadcast"
               for m in created + tagged)
    assert [c["cursor"] for c in served] == sorted(c["cursor"] for c in served)
    # The cursors built inline are change_cursor's.
    assert conn.execute(
        "select bool_and(message ->> 'cursor' = cfg_private.change_cursor(xid, seq) and message ->> 'id' = "
        "message ->> 'cursor' and message ->> 'stable' <= message ->> 'cursor') as ok "
        "from cfg_private.changes where org_id = %s and message ->> 'cursor' > %s", (org, start)).fetchone()["ok"]
    conn.commit()

    # A grid tab that loaded the list after the creations and missed everything since
    # catches up (paged, no gap, no repeat) to the state a fresh load gives; so does a tab
    # open on one automation, from that automation's changes.
    grid = dict(before)
    org_changes = paged(conn, world["viewer"], org, after_create)
    assert org_changes == served[12:]
    for message in org_changes:
        apply(grid, message)
    assert grid == snapshot(conn, ids)
    for automation_id in (ids[0], ids[7]):
        tab = {str(automation_id): dict(before[str(automation_id)])}
        for message in paged(conn, world["viewer"], org, after_create, automation_id):
            apply(tab, message)
        assert tab == snapshot(conn, [automation_id])


def test_a_bulk_patch_promote_or_delete_batch_is_one_message_too(conn, world):
    """Each item of these runs the single call (a save, a promotion, a delete), which alone
    broadcasts several changes on two topics; in a bulk batch, the batch is one message on
    the org's topic (changes null: a tab reloads what it lists), at any size within
    Realtime's rate. The webhooks still get every item's event from the outbox."""
    org = world.org_a
    ids = new_automations(conn, world, 3)
    for automation_id in ids:
        save(conn, world["editor"], automation_id, 0, content({"http": {"port": 80}}))
    start = head_cursor(conn, org)
    events_before = conn.execute("select count(*) as n from cfg_private.events").fetchone()["n"]
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot('bulk_item_broadcasts', 'wal2json')")
    conn.commit()
    try:
        patch = bulk_run(conn, world["editor"], org, ids, "patch", set={"http.port": 81}, batch_size=2)
        promote = bulk_run(conn, world["editor"], org, ids, "promote", from_env="dev", to_env="staging", batch_size=2)
        delete = bulk_run(conn, world["admin"], org, ids[1:], "delete")
        sent = wal_messages(conn, "bulk_item_broadcasts")
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('bulk_item_broadcasts')")
        conn.commit()
    assert [(op["status"], op["succeeded"]) for op in (patch, promote, delete)] == [
        ("completed", 3), ("completed", 3), ("completed", 2)]

    # Nothing on any automation's topic; on the org's, a message per batch and each end.
    assert {m["topic"] for m in sent} == {f"org:{org}"}
    assert [m["event"] for m in sent] == [
        "automations.bulk_updated", "automations.bulk_updated", "bulk.completed",
        "automations.bulk_updated", "automations.bulk_updated", "bulk.completed",
        "automations.bulk_updated", "bulk.completed"]
    batches = [m["payload"]["data"] for m in sent if m["event"] == "automations.bulk_updated"]
    names = [str(i) for i in ids]
    assert [(b["operation_id"], b["action"], b["automation_ids"]) for b in batches] == [
        (patch["id"], "patch", names[:2]), (patch["id"], "patch", names[2:]),
        (promote["id"], "promote", names[:2]), (promote["id"], "promote", names[2:]),
        (delete["id"], "delete", names[1:])]
    assert all(b["changes"] is None and b["updated_at"] is None and b["updated_by"] is None for b in batches)
    # The log serves what was sent; an automation's catch-up serves the batches naming it.
    served = changes_since(conn, world["viewer"], org, start)["changes"]
    assert served == [m["payload"] for m in sent]
    mine = rpc(conn, world["viewer"], "select cfg.changes_since(%s, %s, 100, %s) as r",
               (org, start, ids[0]))["r"]["changes"]
    assert [c["data"]["action"] for c in mine] == ["patch", "promote"]

    # The outbox (webhooks) has every item's event: 3 saves, 3 promotions, 2 deletions,
    # and each operation's end.
    kinds = conn.execute(
        "select type, count(*)::int as n from (select type from cfg_private.events order by id offset %s) as e "
        "group by type", (events_before,)).fetchall()
    conn.commit()
    assert {k["type"]: k["n"] for k in kinds} == {
        "config.saved": 3, "promotion.applied": 3, "automation.deleted": 2, "bulk.completed": 3}


def test_an_admins_decision_on_a_bulk_promotion_is_one_message(conn, world):
    org = world.org_a
    ids = new_automations(conn, world, 3)
    for automation_id in ids:
        save(conn, world["editor"], automation_id, 0, content({"http": {"port": 80}}))
    bulk_run(conn, world["editor"], org, ids, "promote", from_env="dev", to_env="staging")
    prod = bulk_run(conn, world["editor"], org, ids, "promote", from_env="staging", to_env="prod")
    assert [i["request_status"] for i in prod["items"]] == ["pending"] * 3
    rpc(conn, world["admin"], "select cfg.reject_promotion(%s, 'not this one') as r", (prod["items"][0]["request_id"],))
    start = head_cursor(conn, org)
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot('bulk_decision', 'wal2json')")
    conn.commit()
    try:
        decided = rpc(conn, world["admin"], "select cfg.decide_bulk_promotions(%s, true, 'ship') as r",
                      (prod["id"],))["r"]
        sent = wal_messages(conn, "bulk_decision")
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('bulk_decision')")
        conn.commit()
    assert decided["decided"] == 2
    # Two promotions applied (approved, deployed): one message on the org's topic.
    assert [(m["topic"], m["event"]) for m in sent] == [(f"org:{org}", "automations.bulk_updated")]
    data = sent[0]["payload"]["data"]
    assert (data["operation_id"], data["action"], data["automation_ids"], data["changes"]) == (
        prod["id"], "promote", [str(i) for i in ids[1:]], None)
    assert sent[0]["payload"]["actor"]["email"] == world["admin"].email
    assert changes_since(conn, world["viewer"], org, start)["changes"] == [sent[0]["payload"]]
    assert len(conn.execute("select 1 from cfg_private.events where type = 'promotion.approved' "
                            "and automation_id = any(%s)", (ids,)).fetchall()) == 2  # the webhooks' events
    conn.commit()


def test_a_bulk_mark_silences_only_its_own_automations(conn, world):
    """A caller with plain SQL may set the marks themselves (bulk_claim, bulk_decision_mark):
    only admins mark a decision, and neither mark keeps any other automation's change off
    Realtime."""
    org = world.org_a
    ids = new_automations(conn, world, 2)
    for automation_id in ids:
        save(conn, world["editor"], automation_id, 0, content({"http": {"port": 80}}))
    bulk_run(conn, world["editor"], org, ids, "promote", from_env="dev", to_env="staging")
    prod = bulk_run(conn, world["editor"], org, ids[:1], "promote", from_env="staging", to_env="prod")
    for who in ("editor", "viewer", "outsider"):
        refused = attempt(conn, world[who], "select cfg_private.bulk_decision_mark(%s, true)", (prod["id"],))
        assert refused.code in ("PT403", "PT404"), (who, refused)
    start = head_cursor(conn, org)
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg_private.bulk_decision_mark(%s, true)", (prod["id"],))
        cur.execute("select cfg.save_config(%s, 1, %s::jsonb)", (ids[1], json.dumps(content({"http": {"port": 81}}))))
        cur.execute("select cfg.save_config(%s, 1, %s::jsonb)", (ids[0], json.dumps(content({"http": {"port": 82}}))))
    running = rpc(conn, world["editor"], "select cfg.bulk_apply(%s, %s::jsonb, 'tag', %s::jsonb) as r",
                  (org, json.dumps({"ids": [str(i) for i in ids]}), json.dumps({"tags": ["x"], "batch_size": 1})))["r"]
    assert running["status"] == "running"  # the first batch (ids[0]) done, ids[1] next
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("select * from cfg_private.bulk_claim(%s)", (running["id"],))
        cur.execute("select cfg.save_config(%s, 2, %s::jsonb)", (ids[0], json.dumps(content({"http": {"port": 83}}))))
        cur.execute("select cfg.save_config(%s, 2, %s::jsonb)", (ids[1], json.dumps(content({"http": {"port": 84}}))))
    saved = [(c["type"], c["automation_id"], c["data"].get("version"))
             for c in changes_since(conn, world["viewer"], org, start)["changes"] if c["type"] == "config.saved"]
    # ids[0] has a request of the marked decision, ids[1] is the claimed batch: only those
    # saves went unbroadcast.
    assert saved == [("config.saved", str(ids[1]), 2), ("config.saved", str(ids[0]), 3)]


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
    assert [c["type"] for c in served] == [
        "automations.bulk_updated", "bulk.completed", "deployment.moved", "config.saved"]
    assert served[0]["data"]["automation_ids"] == [str(i) for i in ids]
    for automation_id in ids:
        mine = rpc(conn, world["viewer"], "select cfg.changes_since(%s, %s, 100, %s) as r",
                   (org, start, automation_id))["r"]["changes"]
        assert mine == [served[0]]
