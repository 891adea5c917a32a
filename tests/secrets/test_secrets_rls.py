"""The RLS matrix lines of the secrets tables and RPCs, run by tests/support/rls.py on a
world with an AWS backend of org A, a reference binding of its http.api_key and an open
conflict; and the sync service's functions, out of reach of every API role. (The table
that holds secrets' Vault ids, entry_secrets, has its line with the tenancy tables.)"""

from __future__ import annotations

import pytest

from tests.support.act import attempt
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
from tests.support.vaults import AWS_CREDENTIALS, add_backend, bind

#                      select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    # Written through the RPCs only (credentials go to Vault; the sync state is the service's).
    "vault_backends":   ("---Y--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "secret_bindings":  ("--YY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "secret_conflicts": ("---Y--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}

TABLES = {
    "vault_backends": Table(by_id("vault_backends", "backend"), copy_of("vault_backends"), update=("name", "x")),
    "secret_bindings": Table(by_id("secret_bindings", "binding"), copy_of("secret_bindings"), update=("ref", "x")),
    "secret_conflicts": Table(by_id("secret_conflicts", "conflict"), copy_of("secret_conflicts"),
                              update=("status", "resolved")),
}

ADMINS = expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")
EDITORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")


def _count(table: str):
    return lambda w: (q("select count(*) from cfg.{t} where org_id = %(org)s", t=table), {"org": w.org_a})

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
    "add_vault_backend": Rpc(
        lambda w: ("select * from cfg.add_vault_backend(%(org)s, 'aws-two', 'aws_sm', "
                   "'{\"region\": \"eu-west-1\"}', %(cred)s)", {"org": w.org_a, "cred": AWS_CREDENTIALS}),
        effect=_count("vault_backends"), expected=ADMINS,
    ),
    "list_vault_backends": Rpc(
        lambda w: ("select * from cfg.list_vault_backends(%(org)s)", {"org": w.org_a}), expected=ADMINS,
    ),
    "test_vault_backend": Rpc(
        lambda w: ("select * from cfg.test_vault_backend(%(b)s)", {"b": w.backend}),
        effect=lambda w: ("select test_requested_at from cfg.vault_backends where id = %(b)s", {"b": w.backend}),
        expected=ADMINS,
    ),
    "remove_vault_backend": Rpc(
        lambda w: ("select cfg.remove_vault_backend(%(b)s)", {"b": w.spare_backend}),
        effect=_count("vault_backends"), expected=ADMINS,
    ),
    "bind_secret": Rpc(
        lambda w: ("select * from cfg.bind_secret(%(a)s, 'http', 'api_key', %(b)s, 'aws-sm://billing/prod', "
                   "'push', %(env)s)", {"a": w.automation_a, "b": w.backend, "env": w.prod}),
        # Its one secret is bound by reference already: a push binding needs it unbound.
        prepare=lambda c, w: c.execute("delete from cfg.secret_bindings where id = %s", (w.binding,)),
        effect=_count("secret_bindings"), expected=ADMINS,
    ),
    "unbind_secret": Rpc(
        lambda w: ("select cfg.unbind_secret(%(id)s)", {"id": w.binding}),
        effect=_count("secret_bindings"), expected=ADMINS,
    ),
    "sync_secret_binding": Rpc(
        lambda w: ("select * from cfg.sync_secret_binding(%(id)s)", {"id": w.binding}),
        effect=lambda w: ("select next_check_at from cfg.secret_bindings where id = %(id)s", {"id": w.binding}),
        expected=EDITORS,
    ),
    "list_secret_bindings": Rpc(
        lambda w: ("select * from cfg.list_secret_bindings(%(a)s)", {"a": w.automation_a}), expected=EDITORS,
    ),
    "list_secret_conflicts": Rpc(
        lambda w: ("select * from cfg.list_secret_conflicts(%(org)s)", {"org": w.org_a}), expected=ADMINS,
    ),
    "resolve_secret_conflict": Rpc(
        lambda w: ("select * from cfg.resolve_secret_conflict(%(id)s, 'keep_local')", {"id": w.conflict}),
        effect=lambda w: ("select status from cfg.secret_conflicts where id = %(id)s", {"id": w.conflict}),
        expected=ADMINS,
    ),
    "collect_revealed_secret": Rpc(
        # Only the member who asked collects: the editor's request.
        lambda w: ("select cfg.collect_revealed_secret(%(id)s)", {"id": w.reveal_request}),
        expected=expect(DENIED, "PT404", "ok", "PT404", "PT404", "PT404", "ok"),
    ),
}


def with_a_binding(conn, world) -> None:
    """world.backend and world.spare_backend (org A's AWS backends), world.binding (http.api_key
    by reference), world.conflict (open), world.reveal_request (the editor's), world.prod."""
    world.backend = add_backend(conn, world["admin"], world.org_a, "aws")["id"]
    world.spare_backend = add_backend(conn, world["admin"], world.org_a, "spare")["id"]
    world.binding = bind(conn, world["admin"], world.automation_a, world.backend, "aws-sm://billing/api")["id"]
    world.prod = conn.execute("select id from cfg.environments where org_id = %s and slug = 'prod'",
                              (world.org_a,)).fetchone()["id"]
    world.conflict = conn.execute(
        "insert into cfg.secret_conflicts (org_id, binding_id, automation_id, external_version) "
        "values (%s, %s, %s, 'v2') returning id", (world.org_a, world.binding, world.automation_a),
    ).fetchone()["id"]
    world.reveal_request = conn.execute(
        "insert into cfg_private.external_reveals (org_id, binding_id, requested_by) values (%s, %s, %s) "
        "returning id", (world.org_a, world.binding, world["editor"].user_id),
    ).fetchone()["id"]


shared = shared_world("secrets", with_a_binding)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)

SYNC_SERVICE = [
    "select * from cfg_private.claim_secret_bindings(10, '1 minute')",
    "select * from cfg_private.vault_sync_secrets('{}')",
    "select cfg_private.report_secret_sync(gen_random_uuid(), 'unchanged')",
    "select * from cfg_private.claim_vault_backend_tests(10)",
    "select cfg_private.report_vault_backend_test(gen_random_uuid(), now(), '{}')",
    "select * from cfg_private.claim_external_reveals(10)",
    "select cfg_private.answer_external_reveal(gen_random_uuid(), 'x', null)",
]


@pytest.mark.parametrize("sql", SYNC_SERVICE)
def test_the_sync_services_functions_are_the_service_keys_alone(shared, sql):
    conn, world = shared
    for who in ("anon", "viewer", "editor", "admin", "other_admin", "outsider"):
        outcome = attempt(conn, world[who], sql)
        assert outcome.code == "42501", (who, sql, outcome)
    assert attempt(conn, world["service"], sql, rollback=True).ok


def test_reveal_requests_are_read_by_no_api_role(shared):
    conn, world = shared
    for who in ("anon", "viewer", "editor", "admin", "other_admin", "outsider", "service"):
        outcome = attempt(conn, world[who], "select * from cfg_private.external_reveals")
        assert outcome.code == "42501", (who, outcome)
