"""The RLS matrix lines of schedules and their occurrences, and of the schedule RPCs, run by
tests/support/rls.py on a world with a schedule (an editor's, of a status change with a
window) in org A."""

from __future__ import annotations

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

#                           select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    # Written only through the schedule RPCs and the tick (cfgctl's definer code).
    "schedules":            ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "schedule_occurrences": ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}

TABLES = {
    "schedules": Table(by_id("schedules", "schedule"), copy_of("schedules"), update=("message", "forged")),
    "schedule_occurrences": Table(
        lambda w: ("select id from cfg.schedule_occurrences where schedule_id = %(s)s limit 1", {"s": w.schedule}),
        copy_of("schedule_occurrences"), update=("status", "applied"),
    ),
}

EDITORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")
MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")
# An approval: an admin other than the author; the service key passes role checks.
ADMINS = expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")
# The service key has no user to act as: it cannot author a schedule.
AUTHORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "PT422")

PAUSE = '{"action": "status", "status": "paused"}'


def _state(w: World):
    return "select state from cfg.schedules where id = %(s)s", {"s": w.schedule}


def _approval(w: World):
    return "select approved_hash from cfg.schedules where id = %(s)s", {"s": w.schedule}


def _paused(conn, w: World) -> None:
    conn.execute("update cfg.schedules set state = 'paused' where id = %s", (w.schedule,))


def _needs_approval(conn, w: World) -> None:
    conn.execute("update cfg.environments set requires_approval = true where org_id = %s and slug = 'dev'",
                 (w.org_a,))
    conn.execute("update cfg.schedules set action = 'patch', change = '{\"set\": {}, \"unset\": {}}' where id = %s",
                 (w.schedule,))


RPCS = {
    "add_schedule": Rpc(
        lambda w: ("select cfg.add_schedule(%(a)s, %(c)s, at => '2030-01-01T00:00')",
                   {"a": w.automation_a, "c": PAUSE}),
        effect=lambda w: (q("select count(*) from cfg.{t} where org_id = %(org)s", t="schedules"), {"org": w.org_a}),
        expected=AUTHORS,
    ),
    "edit_schedule": Rpc(lambda w: ("select cfg.edit_schedule(%(s)s, '{\"message\": \"later\"}')", {"s": w.schedule}),
                         effect=lambda w: ("select message from cfg.schedules where id = %(s)s", {"s": w.schedule}),
                         expected=AUTHORS),
    "pause_schedule": Rpc(lambda w: ("select cfg.pause_schedule(%(s)s)", {"s": w.schedule}), effect=_state,
                          expected=EDITORS),
    "resume_schedule": Rpc(lambda w: ("select cfg.resume_schedule(%(s)s)", {"s": w.schedule}), effect=_state,
                           expected=EDITORS, prepare=_paused),
    "cancel_schedule": Rpc(lambda w: ("select cfg.cancel_schedule(%(s)s)", {"s": w.schedule}), effect=_state,
                           expected=EDITORS),
    "approve_schedule": Rpc(lambda w: ("select cfg.approve_schedule(%(s)s)", {"s": w.schedule}), effect=_approval,
                            expected=ADMINS, prepare=_needs_approval),
    "list_schedules": Rpc(lambda w: ("select * from cfg.list_schedules(%(org)s)", {"org": w.org_a}),
                          expected=MEMBERS),
    "schedule_timeline": Rpc(lambda w: ("select * from cfg.schedule_timeline(%(org)s, '2029-12-31', '2030-01-02')",
                                        {"org": w.org_a}), expected=MEMBERS),
}


def with_a_schedule(conn, world: World) -> None:
    """world.schedule: the editor's, pausing automation A at 2030-01-01 00:00 for an hour."""
    conn.commit()
    with acting_as(conn, world["editor"]) as cur:
        world.schedule = cur.execute(
            "select cfg.add_schedule(%s, %s, at => '2030-01-01T00:00', revert_after => '1 hour') as s",
            (world.automation_a, PAUSE),
        ).fetchone()["s"]["id"]


shared = shared_world("schedules", with_a_schedule)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)
