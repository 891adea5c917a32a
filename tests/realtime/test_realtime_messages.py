"""Broadcasts from the database: one message per change type, on the org's topic and the
automation's, the same as cfg.changes_since serves; no secret (value or digest) in any;
changes_since paging, refusals and re-sync; and no tenant row on the supabase_realtime
publication (a wal2json slot, as Realtime reads it)."""

from __future__ import annotations

import json

import pytest

from sync_service.db import acting_as
from tests.support.act import attempt
from tests.support.realtime import head_cursor, messages
from tests.support.versioning import content, rpc, save

SECRET = "sk_live_rotated_value"


def changes_since(conn, who, org_id, after, max_rows=100, automation_id=None) -> dict:
    return rpc(conn, who, "select cfg.changes_since(%s, %s, %s, %s) as r",
               (org_id, after, max_rows, automation_id))["r"]


def every_change_type(conn, world) -> None:
    """Org A: a save with a secret, a rollback, promotions (one request rejected, one approved
    and applied), a validation rule that finds fault, an automation created, changed, deleted."""
    a, editor, admin = world.automation_a, world["editor"], world["admin"]
    save(conn, editor, a, 1, content({"http": {"port": 9090, "api_key": ("secret", SECRET)}}), "move port")
    rpc(conn, editor, "select cfg.rollback(%s, 1, 'back') as r", (a,))
    rpc(conn, editor, "select cfg.promote(%s, 'dev', 'staging', false) as r", (a,))
    rpc(conn, editor, "select cfg.promote(%s, 'staging', 'prod', false) as r", (a,))
    request = conn.execute("select id from cfg.promotion_requests where automation_id = %s and status = 'pending'",
                           (a,)).fetchone()["id"]
    conn.commit()
    rpc(conn, admin, "select cfg.reject_promotion(%s, 'not today') as r", (request,))
    again = rpc(conn, editor, "select cfg.promote(%s, 'staging', 'prod', false) as r", (a,))["r"]["request_id"]
    rpc(conn, admin, "select cfg.approve_promotion(%s, 'ship it') as r", (again,))
    service = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                           (world.org_a,)).fetchone()["id"]
    conn.commit()
    rule = {"name": "base_url", "section": "http", "key": "base_url", "required": True, "schema": {"type": "string"}}
    rpc(conn, admin, "select * from cfg.add_validation_rule(%s, %s::jsonb)", (service, json.dumps(rule)))
    made = rpc(conn, editor, "select id from cfg.create_automation(%s, 'Made', 'made')", (world.org_a,))["id"]
    with acting_as(conn, editor) as cur:
        cur.execute("update cfg.automations set description = 'changed' where id = %s", (made,))
    rpc(conn, admin, "select cfg.delete_automation(%s) as r", (made,))


TYPES = {
    "automation.created", "automation.updated", "automation.deleted", "config.saved", "config.rolled_back",
    "deployment.moved", "promotion.requested", "promotion.approved", "promotion.rejected",
    "validation.status_changed",
}


def secret_material(conn) -> list[str]:
    """Every secret value and digest the database holds: none may appear in a message."""
    found = [SECRET, "sk_live_hunter2"]
    for row in conn.execute("select content, content_hash from cfg.config_versions"):
        found.append(row["content_hash"])
        for section in row["content"]["sections"].values():
            for entry in section["entries"].values():
                if entry.get("secret"):
                    found.extend(str(v) for k, v in entry.items() if k not in ("secret", "description"))
    conn.commit()
    return [f for f in found if f]


def test_one_message_per_change_type_on_both_topics_and_no_secret(conn, world):
    start = head_cursor(conn, world.org_a)
    every_change_type(conn, world)
    served = changes_since(conn, world["viewer"], world.org_a, start, 1000)
    assert not served["more"] and not served["resync"]
    changes = served["changes"]
    assert {c["type"] for c in changes} == TYPES
    # The log and the broadcasts are the same messages, on the org's topic and the automation's.
    on_org = {m["payload"]["cursor"]: m for m in messages(conn, f"org:{world.org_a}")}
    for change in changes:
        broadcast = on_org[change["cursor"]]
        assert broadcast["payload"] == change and broadcast["event"] == change["type"] and broadcast["private"]
        if change["automation_id"]:
            topic = f"automation:{change['automation_id']}"
            assert [m["payload"] for m in messages(conn, topic) if m["payload"]["cursor"] == change["cursor"]] == [
                change]
    assert [c["cursor"] for c in changes] == sorted(c["cursor"] for c in changes)

    by_type = {c["type"]: c for c in changes}
    saved = by_type["config.saved"]
    assert saved["actor"]["email"] == world["editor"].email
    assert saved["data"]["version"] == 2 and saved["data"]["parent_version"] == 1
    assert {"key": "api_key", "change": "changed", "secret": True, "section": "http"} in saved["data"]["changes"]
    rolled = by_type["config.rolled_back"]["data"]
    assert rolled["version"] == 3 and rolled["restored_from"] == 1
    moved = [c["data"] for c in changes if c["type"] == "deployment.moved"]
    assert {(m["environment"], m["version"]) for m in moved} >= {("dev", 2), ("staging", 3), ("prod", 3)}
    assert by_type["promotion.rejected"]["data"]["reason"] == "not today"
    assert by_type["promotion.approved"]["data"]["comment"] == "ship it"
    assert by_type["validation.status_changed"]["data"]["to"] == "errors"
    assert by_type["automation.deleted"]["data"]["slug"] == "made"

    published = json.dumps([m["payload"] for m in messages(conn)])
    assert "content_hash" not in published and "digest" not in published
    assert [s for s in secret_material(conn) if s in published] == []


def test_no_message_reaches_another_org(conn, world):
    start_b = head_cursor(conn, world.org_b)
    every_change_type(conn, world)
    assert {m["topic"] for m in messages(conn)} <= {
        f"org:{world.org_a}", f"automation:{world.automation_a}", f"org:{world.org_b}",
        f"automation:{world.automation_b}",
    } | {f"automation:{r['automation_id']}" for r in conn.execute(
        "select distinct automation_id from cfg_private.changes where org_id = %s and automation_id is not null",
        (world.org_a,))}
    assert changes_since(conn, world["other_admin"], world.org_b, start_b)["changes"] == []
    assert all(m["payload"]["org_id"] == str(world.org_b) for m in messages(conn, f"org:{world.org_b}"))


def test_changes_since_pages_in_cursor_order(conn, world):
    start = head_cursor(conn, world.org_a)
    for version in range(1, 6):
        save(conn, world["editor"], world.automation_a, version, content({"http": {"port": 9000 + version}}))
    every_page, after = [], start
    while True:
        page = changes_since(conn, world["viewer"], world.org_a, after, 3)
        every_page.append(len(page["changes"]))
        after = page["next"]
        if not page["more"]:
            break
        assert page["next"] == page["changes"][-1]["cursor"]
    assert every_page == [3, 3, 3, 1]  # five saves: config.saved and deployment.moved each
    everything = changes_since(conn, world["viewer"], world.org_a, start, 1000)["changes"]
    assert len(everything) == 10
    # The automation's own changes only.
    only_a = changes_since(conn, world["viewer"], world.org_a, start, 1000, world.automation_a)["changes"]
    assert only_a == everything
    # Caught up: nothing new, and the cursor does not go back.
    again = changes_since(conn, world["viewer"], world.org_a, after)
    assert again["changes"] == [] and again["next"] >= after and not again["more"]


def test_a_new_tab_starts_at_the_frontier(conn, world):
    fresh = changes_since(conn, world["viewer"], world.org_a, None)
    assert fresh["changes"] == [] and not fresh["resync"]
    save(conn, world["editor"], world.automation_a, 1, content({"http": {"port": 1}}))
    later = changes_since(conn, world["viewer"], world.org_a, fresh["next"])
    # One transaction: the save deploys to dev, then records the version.
    assert [c["type"] for c in later["changes"]] == ["deployment.moved", "config.saved"]


def test_an_expired_or_foreign_cursor_says_resync(conn, world):
    start = head_cursor(conn, world.org_a)
    save(conn, world["editor"], world.automation_a, 1, content({"http": {"port": 1}}))
    conn.execute("update cfg_private.changes set created_at = now() - interval '4 days'")
    assert conn.execute("select cfg_private.trim_changes(interval '72 hours') as n").fetchone()["n"] > 0
    conn.commit()
    expired = changes_since(conn, world["viewer"], world.org_a, start)
    assert expired["resync"] and expired["reason"] == "expired_cursor" and expired["changes"] == []
    # A cursor from beyond this database's transactions (a restore, another project).
    unknown = changes_since(conn, world["viewer"], world.org_a, "7fffffffffffffff-0000000000000001")
    assert unknown["resync"] and unknown["reason"] == "unknown_cursor"
    # From the frontier on, all is well again.
    assert not changes_since(conn, world["viewer"], world.org_a, expired["next"])["resync"]


@pytest.mark.parametrize("after, max_rows, path", [
    ("not-a-cursor", 10, "after"), ("0000000000000000-0000000000000000", 0, "max_rows"),
    ("0000000000000000-0000000000000000", 1001, "max_rows"),
])
def test_bad_input_is_refused(conn, world, after, max_rows, path):
    outcome = attempt(conn, world["viewer"], "select cfg.changes_since(%s, %s, %s)", (world.org_a, after, max_rows))
    assert outcome.code == "PT422" and outcome.detail["errors"][0]["path"] == path


def test_changes_since_answers_only_members(conn, world):
    for who, code in (("outsider", "PT404"), ("other_admin", "PT404"), ("anon", "42501")):
        outcome = attempt(conn, world[who], "select cfg.changes_since(%s)", (world.org_a,))
        assert outcome.code == code
    # Another org's automation answers like a missing one.
    outcome = attempt(conn, world["viewer"], "select cfg.changes_since(%s, null, 10, %s)",
                      (world.org_a, world.automation_b))
    assert outcome.code == "PT404" and outcome.message == "automation not found"


def test_no_tenant_row_reaches_the_publication(conn, world):
    """postgres_changes streams the tables of supabase_realtime to every subscriber, a DELETE's
    key unfiltered by RLS: no cfg table is published any more, so a wal2json slot over the
    publication (what Realtime reads) carries nothing of a tenant's, deletes included."""
    published = conn.execute("select schemaname, tablename from pg_publication_tables "
                             "where pubname = 'supabase_realtime'").fetchall()
    assert [p for p in published if p["schemaname"] in ("cfg", "cfg_private")] == []
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot('realtime_deletes', 'wal2json')")
    conn.commit()
    try:
        with acting_as(conn, world["admin"]) as cur:
            cur.execute("delete from cfg.config_entries where id = %s", (world.entry_a,))
            cur.execute("select cfg.delete_automation(%s)", (world.automation_a,))
        read = ("select data from pg_logical_slot_{how}_changes('realtime_deletes', null, null, "
                "'format-version', '2', 'add-tables', %s)")
        # The deletes are in the WAL: had the tables stayed published, every subscriber got them.
        cfg_tables = conn.execute(read.format(how="peek"), ("cfg.*",)).fetchall()
        deleted = [json.loads(r["data"]) for r in cfg_tables if json.loads(r["data"])["action"] == "D"]
        assert {d["table"] for d in deleted} >= {"config_entries", "automations"}
        # Through the publication, as Realtime reads it: nothing of a tenant's.
        tables = ",".join(f"{p['schemaname']}.{p['tablename']}" for p in published) or "none.none"
        streamed = [json.loads(r["data"]) for r in conn.execute(read.format(how="get"), (tables,)).fetchall()]
        conn.commit()
        assert [c for c in streamed if c["action"] in "IUD"] == []
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('realtime_deletes')")
        conn.commit()


def test_a_save_by_someone_else_is_known_at_once_and_merged(conn, world):
    """The editor's presence says base_version 1 (docs/realtime.md, Presence); a config.saved
    on the automation's topic from another author with a newer version means a concurrent
    save: the dialog merges with merge_config(base, theirs = the message's version_id, mine)."""
    a, topic = world.automation_a, f"automation:{world.automation_a}"
    presence = {"user_id": str(world["editor"].user_id), "email": world["editor"].email, "avatar_url": None,
                "mode": "editing", "section": "http", "key": "port", "base_version": 1}
    base_id = conn.execute("select id from cfg.config_versions where automation_id = %s and version = 1",
                           (a,)).fetchone()["id"]
    conn.commit()
    save(conn, world["admin"], a, 1, content({"http": {"port": 9000, "tls": True, "api_key": ("secret",)}}))
    theirs = [m["payload"] for m in messages(conn, topic) if m["event"] == "config.saved"][-1]
    assert theirs["data"]["version"] > presence["base_version"]
    assert theirs["actor"]["id"] != presence["user_id"]
    mine = content({"http": {"port": 8443, "api_key": ("secret",)}})
    merged = rpc(conn, world["editor"], "select cfg.merge_config(%s, %s, %s::jsonb) as r",
                 (base_id, theirs["data"]["version_id"], json.dumps(mine)))["r"]
    assert merged["merged"]["sections"]["http"]["entries"]["tls"]["value"] is True  # theirs kept
    assert [c["key"] for c in merged["conflicts"]] == ["port"]
    assert save(conn, world["editor"], a, theirs["data"]["version"], merged["merged"])["version"] == 3
