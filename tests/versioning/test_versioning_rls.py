"""The RLS matrix lines of the versioning table and RPCs, run by tests/support/rls.py on a
world with versions in both orgs (tests/support/versioning.py: make_busy). Nobody writes
cfg.config_versions directly: the RPCs and the versioned-write triggers do."""

from __future__ import annotations

import json

import pytest

from tests.support.act import attempt
from tests.support.rls import (
    DENIED,
    Rpc,
    Table,
    copy_of,
    expect,
    rpc_matrix_test,
    shared_world,
    table_matrix_test,
)
from tests.support.versioning import content, make_busy

#                    select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    "config_versions": ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}


def _version_3(w):
    return ("select id from cfg.config_versions where automation_id = %(a)s and version = 3", {"a": w.automation_a})


TABLES = {
    "config_versions": Table(_version_3, copy_of("config_versions"), update=("updated_at", "2030-01-01")),
}

BODY = json.dumps(content({"http": {"port": 1, "api_key": ("secret",)}}))
EDITORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")
MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")


def _versions(w):
    return ("select count(*) from cfg.config_versions where automation_id = %(a)s", {"a": w.automation_a})


RPCS = {
    "save_config": Rpc(
        lambda w: ("select cfg.save_config(%(a)s, 3, %(body)s::jsonb)", {"a": w.automation_a, "body": BODY}),
        EDITORS, effect=_versions),
    "patch_config": Rpc(
        lambda w: ("select cfg.patch_config(%(a)s, 3, '{\"http\": {\"port\": {\"value\": 2}}}')",
                   {"a": w.automation_a}),
        EDITORS, effect=_versions),
    "rollback": Rpc(lambda w: ("select cfg.rollback(%(a)s, 1)", {"a": w.automation_a}), EDITORS, effect=_versions),
    # Stable: computes the merge, the caller saves it.
    "merge_config": Rpc(
        lambda w: ("select cfg.merge_config(%(v1)s, %(v2)s, %(body)s::jsonb)",
                   {"v1": w.v1, "v2": w.v2, "body": BODY}),
        EDITORS),
    "diff_versions": Rpc(lambda w: ("select cfg.diff_versions(%(v1)s, %(v2)s)", {"v1": w.v1, "v2": w.v2}), MEMBERS),
    "config_history": Rpc(lambda w: ("select * from cfg.config_history(%(a)s)", {"a": w.automation_a}), MEMBERS),
    "get_config": Rpc(lambda w: ("select cfg.get_config(%(a)s)", {"a": w.automation_a}), MEMBERS),
}

shared = shared_world("versioning", make_busy)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)

IDENTITIES = ("anon", "viewer", "editor", "admin", "other_admin", "outsider", "service")


@pytest.mark.parametrize("sql", [
    "select * from cfg_private.version_secrets",
    "select * from cfg_private.digest_keys",
    "select * from cfg_private.transaction_marks",
    "insert into cfg_private.transaction_marks (mark) values ('versioned_write')",
    "select cfg_private.secret_token(gen_random_uuid(), '\"guess\"')",
])
def test_version_secrets_and_digest_key_are_out_of_reach(shared, sql):
    conn, world = shared
    for name in IDENTITIES:
        assert attempt(conn, world[name], sql, rollback=True).status == "42501", (name, sql)


def test_foundation_section_and_entry_writes_stay_open_to_editors(shared):
    """Direct writes are versioned, not refused: the foundation's policies are unchanged."""
    conn, world = shared
    insert = ("insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
              "values (%s, %s, %s, 'extra', '1')")
    params = (world.org_a, world.automation_a, world.section_a)
    expected = {"editor": "ok", "service": "ok", "viewer": "42501", "other_admin": "42501"}
    for name, status in expected.items():
        assert attempt(conn, world[name], insert, params, rollback=True).status == status, name
