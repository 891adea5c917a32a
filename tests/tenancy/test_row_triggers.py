"""The row triggers every write of cfg.automations pays. Stamps (cfg_private.register_table):
updated_at on every write, org_id frozen, created_by/updated_by from the JWT, whatever the
client writes. touch_row and stamp_author fire only for a row they would change (their WHEN
clauses), so each case writes what a clause could mistake for "nothing to do": a value the
trigger itself would set, a second write in the same transaction (now() unchanged) by
another user. Events: the row as to_jsonb gives it. One world, every case rolled back."""

from __future__ import annotations

import pytest

from tests.support.rls import run_as, shared_world, superuser_value

shared = shared_world("row_stamps")

PAST = "2000-01-01T00:00:00Z"


def stamps(conn, automation_id) -> dict:
    return conn.execute(
        "select org_id, created_by, updated_by, updated_at, updated_at = now() as now "
        "from cfg.automations where id = %s", (automation_id,)).fetchone()


def write(conn, who, query, params=None):
    out = run_as(conn, who, query, params)
    assert out.ok, out
    return out


@pytest.mark.parametrize("written", ["insert", "update"])
def test_updated_at_cannot_be_backdated(shared, written):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        if written == "insert":
            target = write(conn, world["editor"], "insert into cfg.automations (org_id, name, slug, updated_at) "
                           "values (%s, 'Old', 'old', %s) returning id", (world.org_a, PAST)).rows[0]["id"]
        else:
            target = world.automation_a
            write(conn, world["editor"], "update cfg.automations set description = 'x', updated_at = %s "
                  "where id = %s", (PAST, target))
        assert stamps(conn, target)["now"]


def test_authors_cannot_be_forged_on_insert_even_when_one_is_right(shared):
    conn, world = shared
    editor, admin = world["editor"], world["admin"]
    with conn.transaction(force_rollback=True):
        # updated_by already the editor's: created_by must be corrected all the same.
        target = write(conn, editor, "insert into cfg.automations (org_id, name, slug, created_by, updated_by) "
                       "values (%s, 'F', 'f', %s, %s) returning id", (world.org_a, admin.user_id, editor.user_id)
                       ).rows[0]["id"]
        row = stamps(conn, target)
    assert (row["created_by"], row["updated_by"]) == (editor.user_id, editor.user_id)


def test_authors_cannot_be_forged_on_update(shared):
    conn, world = shared
    editor, admin = world["editor"], world["admin"]
    with conn.transaction(force_rollback=True):
        before = stamps(conn, world.automation_a)
        write(conn, editor, "update cfg.automations set created_by = %s, updated_by = %s where id = %s",
              (editor.user_id, admin.user_id, world.automation_a))
        row = stamps(conn, world.automation_a)
    assert (row["created_by"], row["updated_by"]) == (before["created_by"], editor.user_id)


def test_a_second_writer_in_the_same_transaction_is_the_author(shared):
    # The second update leaves updated_at as it is (now()): updated_by must still move.
    conn, world = shared
    with conn.transaction(force_rollback=True):
        for who in ("admin", "editor"):
            write(conn, world[who], "update cfg.automations set description = %s where id = %s",
                  (who, world.automation_a))
        row = stamps(conn, world.automation_a)
    assert row["updated_by"] == world["editor"].user_id and row["now"]


def test_the_service_key_keeps_the_author_it_is_given(shared):
    # No user in the JWT: stamp_author leaves updated_by as written (a worker acting for one).
    conn, world = shared
    with conn.transaction(force_rollback=True):
        write(conn, world["service"], "update cfg.automations set updated_by = %s where id = %s",
              (world["viewer"].user_id, world.automation_a))
        row = stamps(conn, world.automation_a)
    assert row["updated_by"] == world["viewer"].user_id and row["now"]


def test_org_id_is_frozen_even_with_updated_at_already_now(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        write(conn, world["admin"], "update cfg.automations set description = 'x' where id = %s",
              (world.automation_a,))
        out = run_as(conn, world["admin"], "update cfg.automations set org_id = %s, updated_at = now() where id = %s",
                     (world.org_b, world.automation_a))
        assert (out.ok, out.code) == (False, "PT422") and "org_id cannot be changed" in out.message
        assert stamps(conn, world.automation_a)["org_id"] == world.org_a


@pytest.mark.parametrize("table", ["orgs", "config_entries"])
def test_tables_without_authors_and_versioned_tables_stamp_updated_at(shared, table):
    # orgs: touch_updated_at (no org_id); config_entries: the versioned-write condition too.
    conn, world = shared
    target = world.org_a if table == "orgs" else world.entry_a
    with conn.transaction(force_rollback=True):
        conn.execute(f"update cfg.{table} set updated_at = %s where id = %s", (PAST, target))  # noqa: S608
        assert superuser_value(conn, f"select updated_at = now() from cfg.{table} where id = %s",  # noqa: S608
                               (target,))


def test_automation_events_carry_the_row_as_written(shared):
    # automation.created/updated/deleted: {"automation": the row}, as to_jsonb gives it,
    # for one row and for a statement of many.
    conn, world = shared
    with conn.transaction(force_rollback=True):
        mark = superuser_value(conn, "select max(id) from cfg_private.events")
        ids = [r["id"] for r in write(
            conn, world["editor"], "insert into cfg.automations (org_id, name, slug, tags) select %s, 'E' || n, "
            "'e-' || n, '{a}' from generate_series(1, 3) as n returning id", (world.org_a,)).rows]
        write(conn, world["editor"], "update cfg.automations set status = 'paused' where id = any(%s)", (ids,))
        rows = {r["id"]: r["row"] for r in conn.execute(
            "select id, to_jsonb(a) as row from cfg.automations as a where id = any(%s)", (ids,))}
        write(conn, world["admin"], "delete from cfg.automations where id = %s", (ids[0],))
        events = conn.execute("select type, subject_id, payload from cfg_private.events "
                              "where id > %s and type like 'automation.%%' order by id", (mark,)).fetchall()
    assert [e["type"] for e in events] == ["automation.created"] * 3 + ["automation.updated"] * 3 + [
        "automation.deleted"]
    assert all(e["payload"] == {"automation": rows[e["subject_id"]]} for e in events[3:])
    # One transaction: the same updated_at; created before the update.
    assert all(e["payload"]["automation"] | {"status": "paused"} == rows[e["subject_id"]] for e in events[:3])
