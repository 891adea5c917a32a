"""The RLS matrix lines of the secrets RPCs, run by tests/support/rls.py. (The table
that holds secrets' Vault ids, entry_secrets, has its line with the tenancy tables.)"""

from __future__ import annotations

from tests.support.rls import DENIED, Rpc, expect, rpc_matrix_test, shared_world

MATRIX: dict = {}
TABLES: dict = {}

RPCS = {
    "reveal_secret": Rpc(
        lambda w: ("select cfg.reveal_secret(%(a)s, 'http', 'api_key')", {"a": w.automation_a}),
        # Each reveal leaves an audit row.
        effect=lambda w: ("select count(*) from cfg.audit_log where operation = 'REVEAL'", {}),
        expected=expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok"),
    ),
    "set_secret_reveal_role": Rpc(
        lambda w: ("select * from cfg.set_secret_reveal_role(%(org)s, 'admin')", {"org": w.org_a}),
        effect=lambda w: ("select secret_reveal_role::text from cfg.orgs where id = %(org)s", {"org": w.org_a}),
        expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "list_secrets": Rpc(
        lambda w: ("select * from cfg.list_secrets(%(a)s)", {"a": w.automation_a}),
        expected=expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok"),
    ),
    "set_secret_rotation": Rpc(
        lambda w: ("select cfg.set_secret_rotation(%(a)s, 'http', 'api_key', '30 days')", {"a": w.automation_a}),
        effect=lambda w: ("select count(*) from cfg.entry_secrets where rotate_every is not null", {}),
        expected=expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok"),
    ),
}

shared = shared_world("secrets")
test_rpc_matrix = rpc_matrix_test(RPCS)
