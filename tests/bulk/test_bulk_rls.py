"""The RLS matrix lines of bulk operations and their items, and of the bulk RPCs, run by
tests/support/rls.py on a world where org A's editor left an operation running after its
first batch (world.operation)."""

from __future__ import annotations

import json

from sync_service.db import acting_as
from tests.support.rls import (
    DENIED,
    Rpc,
    Table,
    by_id,
    copy_of,
    expect,
    q,
    rpc_matrix_test,
    shared_world,
    table_matrix_test,
)
from tests.support.world import World

#                              select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    # Written only by cfgctl's definer code (functions/86_bulk.sql).
    "bulk_operations":        ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "bulk_operation_items":   ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}

TABLES = {
    "bulk_operations": Table(by_id("bulk_operations", "operation"), copy_of("bulk_operations"),
                             update=("status", "completed")),
    "bulk_operation_items": Table(
        lambda w: ("select id from cfg.bulk_operation_items where operation_id = %(o)s limit 1", {"o": w.operation}),
        copy_of("bulk_operation_items"), update=("result", "failed"),
    ),
}

ADMINS = expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")
EDITORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")
MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")


def _operation(column: str):
    return lambda w: (q("select {c}::text from cfg.bulk_operations where id = %(o)s", c=column), {"o": w.operation})


RPCS = {
    "bulk_apply": Rpc(
        lambda w: ("select cfg.bulk_apply(%(org)s, %(s)s::jsonb, 'tag', '{\"tags\": [\"x\"]}')",
                   {"org": w.org_a, "s": json.dumps({"ids": [str(w.automation_a)]})}),
        effect=lambda w: ("select count(*) from cfg.bulk_operations where org_id = %(org)s", {"org": w.org_a}),
        expected=EDITORS,
    ),
    # Only its author continues an operation (it runs with the author's rights).
    "bulk_continue": Rpc(lambda w: ("select cfg.bulk_continue(%(o)s)", {"o": w.operation}), effect=_operation("done"),
                         expected=expect(DENIED, "PT403", "ok", "PT403", "PT404", "PT404", "PT403")),
    # Its author or an admin.
    "cancel_bulk_operation": Rpc(lambda w: ("select cfg.cancel_bulk_operation(%(o)s)", {"o": w.operation}),
                                 effect=_operation("status"),
                                 expected=expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")),
    "get_bulk_operation": Rpc(lambda w: ("select cfg.get_bulk_operation(%(o)s)", {"o": w.operation}),
                              expected=MEMBERS),
    "list_bulk_operations": Rpc(lambda w: ("select * from cfg.list_bulk_operations(%(org)s)", {"org": w.org_a}),
                                expected=MEMBERS),
    "decide_bulk_promotions": Rpc(
        lambda w: ("select cfg.decide_bulk_promotions(%(o)s, false, 'no')", {"o": w.operation}), expected=ADMINS,
    ),
}


def with_a_running_operation(conn, world: World) -> None:
    """world.operation: the editor's status change of two automations, in batches of one,
    left running after its first batch."""
    with acting_as(conn, world["admin"]) as cur:
        second = cur.execute("select id from cfg.create_automation(%s, 'Second', 'second')",
                             (world.org_a,)).fetchone()["id"]
    with acting_as(conn, world["editor"]) as cur:
        world.operation = cur.execute(
            "select cfg.bulk_apply(%s, %s::jsonb, 'status', '{\"status\": \"paused\", \"batch_size\": 1}') ->> 'id' r",
            (world.org_a, json.dumps({"ids": [str(world.automation_a), str(second)]})),
        ).fetchone()["r"]


shared = shared_world("bulk", with_a_running_operation)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)
