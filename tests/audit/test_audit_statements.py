"""Statement-level audit, events, fan-out and broadcasts (issue 12, bulk benchmark (a)):
a statement writing many rows still leaves, for each row, the audit row, event, webhook
delivery and realtime messages a one-row statement leaves; over 100 rows (a query built for
the table, cfg_private.audit_update_query) exactly the audit rows one-row statements leave.
One world per module: org A with three automations bulk-1..3, a webhook endpoint for
automation.updated, a secret binding, and 120 more automations and webhook endpoints; every
case is rolled back."""

from __future__ import annotations

import psycopg

from sync_service.db import acting_as
from tests.support.rls import run_as, shared_world
from tests.support.vaults import add_backend, bind
from tests.support.world import World

SLUGS = ("bulk-1", "bulk-2", "bulk-3")
MANY = 120  # over audit_changes' threshold of 100 rows


def with_bulk_rows(conn, world: World) -> None:
    with acting_as(conn, world["admin"]) as cur:
        world.bulk = [cur.execute("select id from cfg.create_automation(%s, %s, %s)", (world.org_a, s, s))
                      .fetchone()["id"] for s in SLUGS]
        world.endpoint = cur.execute(
            "insert into cfg.webhook_endpoints (org_id, url, event_types) "
            "values (%s, 'https://hooks.example.com/cfg', '{automation.updated}') returning id",
            (world.org_a,)).fetchone()["id"]
    backend = add_backend(conn, world["admin"], world.org_a, "aws")
    world.binding = bind(conn, world["admin"], world.automation_a, backend["id"], "aws-sm://billing-key")["id"]
    world.many = [r["id"] for r in conn.execute(
        "insert into cfg.automations (org_id, name, slug) select %s, 'Many ' || n, 'many-' || n "
        "from generate_series(1, %s) as n returning id", (world.org_a, MANY))]
    world.hooks = [r["id"] for r in conn.execute(
        "insert into cfg.webhook_endpoints (org_id, url, event_types) select %s, 'https://hooks.example.com/' || n, "
        "'{bulk.completed}' from generate_series(1, %s) as n returning id", (world.org_a, MANY))]


shared = shared_world("audit_statements", with_bulk_rows)


def ok(conn, who, query, params=None):
    out = run_as(conn, who, query, params)
    assert out.ok, out
    return out


def audit_of(conn, table: str, ids) -> list[dict]:
    return conn.execute(
        "select * from cfg.audit_log where table_name = %s and row_id = any(%s) order by id", (table, list(ids))
    ).fetchall()


def test_a_multi_row_update_audits_each_row_with_only_its_changed_columns(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        mark = conn.execute("select coalesce(max(id), 0) as m from cfg.audit_log").fetchone()["m"]
        # As their author (admin): updated_by does not change either.
        out = ok(conn, world["admin"],
                 "update cfg.automations set "
                 "tags = case when slug = 'bulk-3' then tags else '{t}' end, "
                 "description = case when slug = 'bulk-1' then 'one' else description end "
                 "where id = any(%s)", (world.bulk,))
        assert out.rowcount == 3
        rows = [r for r in audit_of(conn, "automations", world.bulk) if r["id"] > mark]
    # bulk-3 changed nothing but updated_at: no row. The others: their own changes only.
    assert {r["row_id"]: (r["operation"], r["old_values"], r["new_values"]) for r in rows} == {
        world.bulk[0]: ("UPDATE", {"description": "", "tags": []}, {"description": "one", "tags": ["t"]}),
        world.bulk[1]: ("UPDATE", {"tags": []}, {"tags": ["t"]}),
    }
    assert len(rows) == 2
    assert {(r["actor_id"], r["actor_role"], r["org_id"], r["automation_id"], r["readable_by"]) for r in rows} == {
        (world["admin"].user_id, "authenticated", world.org_a, r["row_id"], "editor") for r in rows}


def test_a_statement_that_changes_nothing_but_updated_at_writes_no_audit_row(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        before = conn.execute("select count(*) as n from cfg.audit_log").fetchone()["n"]
        assert ok(conn, world["admin"], "update cfg.automations set name = name where id = any(%s)",
                  (world.bulk,)).rowcount == 3
        assert conn.execute("select count(*) as n from cfg.audit_log").fetchone()["n"] == before


def test_a_multi_row_insert_and_delete_audit_every_row_whole(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        made = ok(conn, world["admin"],
                  "insert into cfg.automations (org_id, name, slug) values (%(o)s, 'M1', 'm-1'), (%(o)s, 'M2', 'm-2') "
                  "returning id", {"o": world.org_a}).rows
        ids = [r["id"] for r in made]
        ok(conn, world["admin"], "delete from cfg.automations where id = any(%s)", (ids,))
        rows = audit_of(conn, "automations", ids)
        events = conn.execute("select type, subject_id from cfg_private.events where subject_id = any(%s) order by id",
                              (ids,)).fetchall()
    assert [r["operation"] for r in rows] == ["INSERT", "INSERT", "DELETE", "DELETE"]
    inserts, deletes = rows[:2], rows[2:]
    assert [(r["row_id"], r["new_values"]["slug"]) for r in inserts] == [(ids[0], "m-1"), (ids[1], "m-2")]
    assert all(r["old_values"] is None and "updated_at" in r["new_values"] for r in inserts)
    assert {r["row_id"]: r["old_values"]["slug"] for r in deletes} == {ids[0]: "m-1", ids[1]: "m-2"}
    assert all(r["new_values"] is None for r in deletes)
    assert [(e["type"], e["subject_id"]) for e in events[:2]] == [
        ("automation.created", ids[0]), ("automation.created", ids[1])]
    assert sorted((e["type"], e["subject_id"]) for e in events[2:]) == sorted(
        [("automation.deleted", ids[0]), ("automation.deleted", ids[1])])


def test_a_cascaded_delete_of_many_automations_audits_every_child_row(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        sections = [ok(conn, world["admin"],
                       "insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, 'main') "
                       "returning id", (world.org_a, a)).rows[0]["id"] for a in world.bulk[:2]]
        ok(conn, world["admin"], "delete from cfg.automations where id = any(%s)", (world.bulk[:2],))
        rows = audit_of(conn, "config_sections", sections)
    assert sorted((r["row_id"], r["automation_id"]) for r in rows if r["operation"] == "DELETE") == sorted(
        [(sections[0], world.bulk[0]), (sections[1], world.bulk[1])])


def test_redacted_columns_stay_redacted_in_a_multi_row_write(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        made = ok(conn, world["admin"],
                  "insert into cfg.webhook_endpoints (org_id, url) values "
                  "(%(o)s, 'https://hooks.example.com/T0K3N-1'), (%(o)s, 'https://hooks.example.com/T0K3N-2') "
                  "returning id", {"o": world.org_a}).rows
        ids = [r["id"] for r in made]
        ok(conn, world["admin"], "update cfg.webhook_endpoints set url = url || '/v2', description = 'moved' "
                                 "where id = any(%s)", (ids,))
        rows = audit_of(conn, "webhook_endpoints", ids)
        secrets = conn.execute("select * from cfg.audit_log where table_name = 'webhook_secrets' "
                               "and new_values ->> 'endpoint_id' = any(%s)", ([str(i) for i in ids],)).fetchall()
    assert [r["operation"] for r in rows] == ["INSERT", "INSERT", "UPDATE", "UPDATE"]
    assert {r["row_id"] for r in rows[2:]} == set(ids)
    assert all(r["new_values"]["url"] == "[redacted]" and r["readable_by"] == "admin" for r in rows)
    assert [(r["old_values"], r["new_values"]) for r in rows[2:]] == [
        ({"url": "[redacted]", "description": ""}, {"url": "[redacted]", "description": "moved"})] * 2
    assert len(secrets) == 2 and all(s["new_values"]["secret_id"] == "[redacted]" for s in secrets)
    assert "T0K3N" not in str([r["old_values"] for r in rows] + [r["new_values"] for r in rows])


def test_secret_binding_bookkeeping_is_not_audited_but_a_changed_binding_is(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        before = len(audit_of(conn, "secret_bindings", [world.binding]))
        # What the sync service records after a check (through its definer functions).
        conn.execute("update cfg.secret_bindings set status = 'ok', next_check_at = now(), "
                     "last_error = 'checked' where id = %s", (world.binding,))
        assert len(audit_of(conn, "secret_bindings", [world.binding])) == before
        conn.execute("update cfg.secret_bindings set ref = 'aws-sm://billing-key-2', "
                     "status = 'pending' where id = %s", (world.binding,))
        rows = audit_of(conn, "secret_bindings", [world.binding])[before:]
    assert [(r["operation"], r["old_values"]["ref"], r["new_values"]["ref"], r["readable_by"]) for r in rows] == [
        ("UPDATE", "aws-sm://billing-key", "aws-sm://billing-key-2", "admin")]
    assert rows[0]["new_values"]["status"] == "pending"


def test_a_multi_row_update_gives_one_event_delivery_and_broadcast_per_row(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        mark = conn.execute("select coalesce(max(id), 0) as m from cfg_private.events").fetchone()["m"]
        ok(conn, world["editor"], "update cfg.automations set status = 'paused' where id = any(%s)", (world.bulk,))
        events = conn.execute("select * from cfg_private.events where id > %s order by id", (mark,)).fetchall()
        deliveries = conn.execute("select event_id, endpoint_id, event_type from cfg_private.webhook_deliveries "
                                  "where event_id > %s order by id", (mark,)).fetchall()
        changes = conn.execute("select * from cfg_private.changes where xid = pg_current_xact_id() order by seq"
                               ).fetchall()
        messages = conn.execute("select topic, event, payload from realtime.messages "
                                "where payload ->> 'cursor' = any(%s)",
                                ([c["message"]["cursor"] for c in changes],)).fetchall()
    assert sorted((e["type"], e["subject_id"], e["payload"]["automation"]["status"], e["actor_email"])
                  for e in events) == sorted(("automation.updated", a, "paused", world["editor"].email)
                                             for a in world.bulk)
    assert [(d["event_id"], d["endpoint_id"], d["event_type"]) for d in deliveries] == [
        (e["id"], world.endpoint, "automation.updated") for e in events]
    # One change per event, in event order.
    assert [(c["type"], c["automation_id"], c["message"]["data"]["status"]) for c in changes] == [
        ("automation.updated", e["subject_id"], "paused") for e in events]
    assert [c["message"]["cursor"] for c in changes] == sorted({c["message"]["cursor"] for c in changes})
    # Each change on the org's topic and its automation's, as logged.
    assert sorted((m["topic"], m["payload"]["cursor"]) for m in messages) == sorted(
        [(f"org:{world.org_a}", c["message"]["cursor"]) for c in changes]
        + [(f"automation:{c['automation_id']}", c["message"]["cursor"]) for c in changes])
    assert all(m["payload"] == next(c["message"] for c in changes if c["message"]["cursor"] == m["payload"]["cursor"])
               and m["event"] == "automation.updated" for m in messages)


def test_every_event_of_a_multi_row_statement_notifies_its_id_on_commit(conn, world, db_url):
    conn.autocommit = True
    with acting_as(conn, world["admin"]) as cur:
        ids = [r["id"] for r in cur.execute(
            "insert into cfg.automations (org_id, name, slug) values (%(o)s, 'N1', 'n-1'), (%(o)s, 'N2', 'n-2') "
            "returning id", {"o": world.org_a})]
    mark = conn.execute("select max(id) as m from cfg_private.events").fetchone()["m"]
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen cfgctl_events")
        with acting_as(conn, world["editor"]) as cur:
            cur.execute("update cfg.automations set status = 'paused' where id = any(%s)", (ids,))
        received = list(listener.notifies(timeout=5, stop_after=2))
    events = conn.execute("select id from cfg_private.events where id > %s order by id", (mark,)).fetchall()
    assert [(n.channel, n.payload) for n in received] == [("cfgctl_events", str(e["id"])) for e in events]
    assert len(events) == 2


# =============================================================================
# Over 100 rows: the query built for the table (cfg_private.audit_update_query)
# =============================================================================


def audited(conn, who, table: str, change: str, ids: list, one_by_one: bool) -> dict:
    """{row_id: audit row} that change (an UPDATE whose `{ids}` is the id predicate) leaves, in
    one statement or one statement per row (in one DO block: the general path), rolled back."""
    with conn.transaction(force_rollback=True):
        mark = conn.execute("select coalesce(max(id), 0) as m from cfg.audit_log").fetchone()["m"]
        if one_by_one:
            array = "array[" + ",".join(f"'{i}'" for i in ids) + "]::uuid[]"
            ok(conn, who, "do $$ declare i uuid; begin foreach i in array " + array + " loop "
               + change.format(ids="array[i]") + "; end loop; end $$")
        else:
            ok(conn, who, change.format(ids="%s"), (ids,))
        rows = conn.execute(
            "select row_id, org_id, automation_id, actor_email, operation, old_values, new_values, readable_by "
            "from cfg.audit_log where id > %s and table_name = %s order by id", (mark, table)).fetchall()
    return {r.pop("row_id"): r for r in rows}


def test_a_many_row_update_audits_as_one_row_statements_do(shared):
    conn, world = shared
    # Per row: tags (an array), status (an enum), description (text), or only updated_by.
    change = ("update cfg.automations as a set "
              "tags = case when right(a.slug, 1) = '1' then a.tags else a.tags || '{{bulk}}' end, "
              "status = case when right(a.slug, 1) = '2' then 'paused'::cfg.automation_status else a.status end, "
              "description = case when right(a.slug, 1) = '3' then 'three' else a.description end "
              "where a.id = any({ids}) and a.slug <> 'many-11'")
    at_once = audited(conn, world["editor"], "automations", change, world.many, one_by_one=False)
    one_by_one = audited(conn, world["editor"], "automations", change, world.many, one_by_one=True)
    assert len(at_once) == MANY - 1 and at_once == one_by_one
    sample = at_once[world.many[1]]  # many-2: tags and status; updated_by: the editor, none before
    assert (sample["automation_id"], sample["operation"], sample["actor_email"]) == (
        world.many[1], "UPDATE", world["editor"].email)
    assert sample["old_values"] == {"tags": [], "status": "active", "updated_by": None}
    assert sample["new_values"] == {"tags": ["bulk"], "status": "paused", "updated_by": str(world["editor"].user_id)}


def test_a_many_row_update_keeps_redactions_and_admin_only_rows(shared):
    conn, world = shared
    change = ("update cfg.webhook_endpoints as w set "
              "url = case when right(w.url, 1) = '1' then w.url || '/moved' else w.url end, "
              "description = 'bulk' where w.id = any({ids})")
    at_once = audited(conn, world["admin"], "webhook_endpoints", change, world.hooks, one_by_one=False)
    one_by_one = audited(conn, world["admin"], "webhook_endpoints", change, world.hooks, one_by_one=True)
    assert len(at_once) == MANY and at_once == one_by_one
    moved = at_once[world.hooks[0]]
    assert moved["old_values"]["url"] == moved["new_values"]["url"] == "[redacted]"
    assert moved["readable_by"] == "admin" and "url" not in at_once[world.hooks[1]]["new_values"]
