"""The RLS matrix lines of the analytics RPCs, run by tests/support/rls.py. Analytics adds no
table to cfg (its rollup is in cfg_private, read only through these RPCs): any member of org
A reads its numbers, org B's admin and a user of no org get PT404, anon is refused."""

from __future__ import annotations

from tests.support.rls import DENIED, Rpc, expect, rpc_matrix_test, shared_world

MATRIX: dict = {}
TABLES: dict = {}

MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")


def _rpc(call: str) -> Rpc:
    return Rpc(lambda w: (f"select cfg.{call} as r", {"org": w.org_a, "a": w.automation_a}), expected=MEMBERS)


RPCS = {
    "analytics_changes": _rpc("analytics_changes(%(org)s, automation_id => %(a)s, environment => 'dev')"),
    "analytics_top_automations": _rpc("analytics_top_automations(%(org)s)"),
    "analytics_promotions": _rpc("analytics_promotions(%(org)s)"),
    "analytics_active_users": _rpc("analytics_active_users(%(org)s)"),
    "analytics_validation_failures": _rpc("analytics_validation_failures(%(org)s, bucket => 'hour')"),
}

shared = shared_world("analytics_rls")
test_rpc_matrix = rpc_matrix_test(RPCS)
