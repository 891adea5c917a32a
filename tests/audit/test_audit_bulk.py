"""The audit of a many-row UPDATE (over 100 rows: cfg_private.audit_update_query, a query
built for the table) leaves exactly the rows the general path leaves for the same
changes made one row per statement: each row's changed columns only, left-out columns,
redactions, admin-only tables. One world per module; every case is rolled back."""

from __future__ import annotations

from tests.support.rls import run_as, shared_world
from tests.support.world import World

COUNT = 120  # over audit_changes' threshold of 100 rows


def with_many_rows(conn, world: World) -> None:
    world.many = [r["id"] for r in conn.execute(
        "insert into cfg.automations (org_id, name, slug) select %s, 'Many ' || n, 'many-' || n "
        "from generate_series(1, %s) as n returning id", (world.org_a, COUNT))]
    world.hooks = [r["id"] for r in conn.execute(
        "insert into cfg.webhook_endpoints (org_id, url, event_types) select %s, 'https://hooks.example.com/' || n, "
        "'{automation.updated}' from generate_series(1, %s) as n returning id", (world.org_a, COUNT))]
    conn.commit()


shared = shared_world("audit_bulk", with_many_rows)


def audited(conn, who, table: str, statements: list[tuple[str, tuple]]) -> dict:
    """{row_id: (automation_id, actor, old_values, new_values, readable_by)} of the audit rows
    the statements leave, rolled back."""
    with conn.transaction(force_rollback=True):
        mark = conn.execute("select coalesce(max(id), 0) as m from cfg.audit_log").fetchone()["m"]
        for query, params in statements:
            out = run_as(conn, who, query, params)
            assert out.ok, out
        rows = conn.execute(
            "select row_id, org_id, automation_id, actor_email, operation, old_values, new_values, readable_by "
            "from cfg.audit_log where id > %s and table_name = %s order by id", (mark, table)).fetchall()
    return {r.pop("row_id"): r for r in rows}


def test_a_many_row_update_audits_as_one_row_statements_do(shared):
    conn, world = shared
    ids = world.many
    # Per row: tags (an array), status (an enum), description (text) or nothing at all.
    change = (
        "update cfg.automations as a set "
        "tags = case when a.slug like '%%1' then a.tags else a.tags || '{bulk}' end, "
        "status = case when a.slug like '%%2' then 'paused'::cfg.automation_status else a.status end, "
        "description = case when a.slug like '%%3' then 'three' else a.description end "
        "where a.id = any(%s) and (a.slug <> 'many-11')"
    )
    at_once = audited(conn, world["editor"], "automations", [(change, (ids,))])
    one_by_one = audited(conn, world["editor"], "automations", [(change, ([i],)) for i in ids])
    assert len(at_once) == COUNT - 1 and at_once == one_by_one
    sample = at_once[ids[1]]  # many-2: tags and status; updated_by: editor now, the service before
    assert (sample["automation_id"], sample["operation"], sample["actor_email"]) == (
        ids[1], "UPDATE", world["editor"].email)
    assert sample["old_values"] == {"tags": [], "status": "active", "updated_by": None}
    assert sample["new_values"] == {"tags": ["bulk"], "status": "paused", "updated_by": str(world["editor"].user_id)}


def test_redacted_columns_and_admin_only_tables_stay_so(shared):
    conn, world = shared
    change = (
        "update cfg.webhook_endpoints as w set "
        "url = case when w.url like '%%1' then w.url || '/moved' else w.url end, "
        "description = 'bulk' where w.id = any(%s)"
    )
    at_once = audited(conn, world["admin"], "webhook_endpoints", [(change, (world.hooks,))])
    one_by_one = audited(conn, world["admin"], "webhook_endpoints", [(change, ([i],)) for i in world.hooks])
    assert len(at_once) == COUNT and at_once == one_by_one
    moved = at_once[world.hooks[0]]
    assert moved["old_values"]["url"] == moved["new_values"]["url"] == "[redacted]"
    assert moved["readable_by"] == "admin"
    assert "url" not in at_once[world.hooks[1]]["new_values"]
