"""The RLS matrix lines of realtime: no table in cfg (the change log is cfg_private's, read
through changes_since), one RPC. Who may join which channel (RLS on realtime.messages) is
tests/realtime/test_realtime_authorization.py, run as Realtime runs its checks."""

from __future__ import annotations

from tests.support.rls import DENIED, Rpc, expect, rpc_matrix_test, shared_world

MATRIX: dict = {}
TABLES: dict = {}

RPCS = {
    "changes_since": Rpc(
        lambda w: ("select cfg.changes_since(%(org)s, %(after)s, 10)",
                   {"org": w.org_a, "after": "0000000000000000-0000000000000000"}),
        expected=expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok"),
    ),
}

shared = shared_world("realtime")
test_rpc_matrix = rpc_matrix_test(RPCS)
