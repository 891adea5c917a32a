"""The RLS matrix lines of the dependency graph: version references and the graph RPCs,
run by tests/support/rls.py on a world where org A's `web` references `billing`."""

from __future__ import annotations

import json

from sync_service.db import acting_as
from tests.support.rls import DENIED, Rpc, Table, copy_of, expect, rpc_matrix_test, shared_world, table_matrix_test
from tests.support.world import World

#                           select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    # Written only by the definer trigger that extracts them from each new version.
    "version_references":   ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}

TABLES = {
    "version_references": Table(
        lambda w: ("select id from cfg.version_references where from_automation_id = %(a)s", {"a": w.web}),
        copy_of("version_references"), update=("path", "forged"),
    ),
}

MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")

RPCS = {
    "impact": Rpc(lambda w: ("select cfg.impact(%(a)s)", {"a": w.automation_a}), expected=MEMBERS),
    "resolve_config": Rpc(lambda w: ("select cfg.resolve_config(%(a)s, 'dev')", {"a": w.web}), expected=MEMBERS),
    "dependency_graph": Rpc(lambda w: ("select cfg.dependency_graph(%(org)s)", {"org": w.org_a}), expected=MEMBERS),
}


def with_a_reference(conn, world: World) -> None:
    """world.web: org A's automation whose http.upstream references billing's http.port."""
    with acting_as(conn, world["admin"]) as cur:
        world.web = cur.execute("select id from cfg.create_automation(%s, 'Web', 'web')",
                                (world.org_a,)).fetchone()["id"]
        cur.execute("select cfg.save_config(%s, 0, %s::jsonb)", (world.web, json.dumps(
            {"sections": {"http": {"entries": {"upstream": {"value": {"ref": "billing/http.port"}}}}}})))


shared = shared_world("graph", with_a_reference)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)
