"""The RLS matrix lines of the audit log and its RPC, run by tests/support/rls.py."""

from __future__ import annotations

from tests.support.rls import DENIED, Rpc, Table, expect, rpc_matrix_test, run_as, shared_world, table_matrix_test

#                    select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    # Nobody writes the audit log through the API; only triggers do.
    "audit_log":       ("--YY--Y", "-------", "-------", "-------"),
}

TABLES = {
    "audit_log": Table(
        lambda w: ("select min(id) as id from cfg.audit_log where org_id = %(org)s", {"org": w.org_a}),
        lambda w: ("insert into cfg.audit_log (org_id, actor_role, table_name, row_id, operation) "
                   "values (%(org)s, 'forged', 'orgs', %(org)s, 'INSERT')", {"org": w.org_a}),
        update=("actor_email", "forged@example.test"),
        # Audit rows of admin-only tables (readable_by = 'admin') are the admins'.
        readable=(("editor", "readable_by = 'editor'"),),
    ),
}

RPCS = {
    "audit_events": Rpc(
        lambda w: ("select * from cfg.audit_events(%(org)s)", {"org": w.org_a}),
        expected=expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok"),
    ),
}

shared = shared_world("audit")
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)


def test_audit_events_are_limited_to_the_org(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        events = run_as(conn, world["editor"], "select * from cfg.audit_events(%s, max_rows => 10000)",
                        (world.org_a,))
        assert events.rows and {r["org_id"] for r in events.rows} == {world.org_a}
