"""The RLS matrix lines of the tenancy tables and RPCs (orgs, members, invitations,
environments, automations, sections, entries, secrets), run by tests/support/rls.py, and
the tenancy rules checked on the same shared world: secrets, the org_id freeze, claims."""

from __future__ import annotations

import json

import psycopg
import pytest

from sync_service.db import Identity
from tests.support.rls import (
    DENIED,
    Rpc,
    Table,
    by_id,
    expect,
    q,
    rpc_matrix_test,
    run_as,
    shared_world,
    superuser_value,
    table_matrix_test,
)
from tests.support.world import World

#                    select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    "orgs":            ("-YYY--Y", "------Y", "---Y--Y", "------Y"),
    # Nobody inserts memberships through the API: they come from invitations (RPCs).
    "org_members":     ("-YYY--Y", "------Y", "---Y--Y", "---Y--Y"),
    # Written only by the invitation RPCs; invitees read theirs (tests/tenancy/test_invitations.py).
    "org_invitations": ("---Y--Y", "------Y", "------Y", "------Y"),
    "environments":    ("-YYY--Y", "---Y--Y", "---Y--Y", "---Y--Y"),
    "automations":     ("-YYY--Y", "--YY--Y", "--YY--Y", "---Y--Y"),
    "config_sections": ("-YYY--Y", "--YY--Y", "--YY--Y", "--YY--Y"),
    "config_entries":  ("-YYY--Y", "--YY--Y", "--YY--Y", "--YY--Y"),
    # Vault ids and tokens: editors read them; only cfgctl's definer code writes them.
    "entry_secrets":   ("--YY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}

# Open invitations: one in org A to someone outside the world, one in org B to the
# outsider. The accepted invitations of build_world are dropped, so that what a member
# sees of org A's invitations is decided by their role alone (invitees see theirs).
PENDING_A = "00000000-0000-4000-8000-00000000a001"
PENDING_B = "00000000-0000-4000-8000-00000000b001"


def add_pending_invitations(conn: psycopg.Connection, world: World) -> None:
    with conn.transaction():
        conn.execute("delete from cfg.org_invitations")
        conn.execute(
            "insert into cfg.org_invitations (id, org_id, email, role, invited_by, expires_at) values "
            "(%s, %s, 'pending@example.test', 'editor', %s, now() + interval '7 days'), "
            "(%s, %s, %s, 'viewer', %s, now() + interval '7 days')",
            (PENDING_A, world.org_a, world["admin"].user_id,
             PENDING_B, world.org_b, world["outsider"].email, world["other_admin"].user_id),
        )


shared = shared_world("tenancy", add_pending_invitations)

# How each table is exercised: a row of org A to update/delete, a valid insert.
TABLES: dict[str, Table] = {
    "orgs": Table(
        by_id("orgs", "org_a"),
        lambda w: ("insert into cfg.orgs (name, slug) values ('New org', 'new-org')", {}),
        update=("name", "Renamed"), org_column="id",
    ),
    "org_members": Table(
        lambda w: ("select id from cfg.org_members where org_id = %(org)s and user_id = %(user)s",
                   {"org": w.org_a, "user": w["viewer"].user_id}),
        lambda w: ("insert into cfg.org_members (org_id, user_id, role) "
                   "values (%(org)s, %(user)s, 'viewer')",
                   {"org": w.org_a, "user": w["outsider"].user_id}),
        update=("role", "editor"),
    ),
    "org_invitations": Table(
        lambda w: ("select id from cfg.org_invitations where id = %(id)s", {"id": PENDING_A}),
        lambda w: ("insert into cfg.org_invitations (org_id, email, role, expires_at) "
                   "values (%(org)s, 'new.person@example.test', 'viewer', now() + interval '1 day')",
                   {"org": w.org_a}),
        update=("role", "admin"),
    ),
    "environments": Table(
        lambda w: ("select id from cfg.environments where org_id = %(org)s and slug = 'dev'",
                   {"org": w.org_a}),
        lambda w: ("insert into cfg.environments (org_id, name, slug, position) "
                   "values (%(org)s, 'QA', 'qa', 3)", {"org": w.org_a}),
        update=("name", "Renamed"),
    ),
    "automations": Table(
        by_id("automations", "automation_a"),
        lambda w: ("insert into cfg.automations (org_id, name, slug) "
                   "values (%(org)s, 'New', 'new-automation')", {"org": w.org_a}),
        update=("description", "Renamed"),
    ),
    "config_sections": Table(
        by_id("config_sections", "section_a"),
        lambda w: ("insert into cfg.config_sections (org_id, automation_id, name) "
                   "values (%(org)s, %(automation)s, 'new_section')",
                   {"org": w.org_a, "automation": w.automation_a}),
        update=("description", "Renamed"),
    ),
    "config_entries": Table(
        by_id("config_entries", "entry_a"),
        lambda w: ("insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
                   "values (%(org)s, %(automation)s, %(section)s, 'new_key', '1')",
                   {"org": w.org_a, "automation": w.automation_a, "section": w.section_a}),
        update=("description", "Renamed"),
    ),
    "entry_secrets": Table(
        by_id("entry_secrets", "secret_entry_a"),
        # A secret row for the plain entry: valid for the FK, so only privileges decide.
        lambda w: ("insert into cfg.entry_secrets (id, org_id, secret_id, token) "
                   "values (%(entry)s, %(org)s, gen_random_uuid(), 'x')", {"entry": w.entry_a, "org": w.org_a}),
        update=("token", "forged"),
    ),
}

MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")

RPCS: dict[str, Rpc] = {
    "create_org": Rpc(
        lambda w: ("select * from cfg.create_org('Fresh', 'fresh-org')", {}),
        effect=lambda w: ("select count(*) from cfg.orgs where slug = 'fresh-org'", {}),
        # The service key is nobody: an org needs a signed-in creator to be its admin.
        expected=expect(DENIED, "ok", "ok", "ok", "ok", "ok", "PT403"),
    ),
    "invite_member": Rpc(
        lambda w: ("select * from cfg.invite_member(%(org)s, %(email)s, 'viewer')",
                   {"org": w.org_a, "email": w["outsider"].email}),
        effect=lambda w: ("select count(*) from cfg.org_invitations where org_id = %(org)s", {"org": w.org_a}),
        expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "list_invitations": Rpc(
        lambda w: ("select * from cfg.list_invitations(%(org)s)", {"org": w.org_a}),
        effect=None,
        expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "revoke_invitation": Rpc(
        lambda w: ("select * from cfg.revoke_invitation(%(id)s)", {"id": PENDING_A}),
        effect=lambda w: ("select revoked_at is not null from cfg.org_invitations where id = %(id)s",
                          {"id": PENDING_A}),
        expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    # Only the account the invitation is addressed to (the outsider, to org B).
    "accept_invitation": Rpc(
        lambda w: ("select * from cfg.accept_invitation(%(id)s)", {"id": PENDING_B}),
        effect=lambda w: ("select count(*) from cfg.org_members where org_id = %(org)s", {"org": w.org_b}),
        expected=expect(DENIED, "PT404", "PT404", "PT404", "PT404", "ok", "PT404"),
    ),
    "set_member_role": Rpc(
        lambda w: ("select * from cfg.set_member_role(%(org)s, %(user)s, 'editor')",
                   {"org": w.org_a, "user": w["viewer"].user_id}),
        effect=lambda w: ("select role::text from cfg.org_members where org_id = %(org)s and user_id = %(user)s",
                          {"org": w.org_a, "user": w["viewer"].user_id}),
        expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    "remove_member": Rpc(
        lambda w: ("select * from cfg.remove_member(%(org)s, %(user)s)",
                   {"org": w.org_a, "user": w["viewer"].user_id}),
        effect=lambda w: ("select count(*) from cfg.org_members where org_id = %(org)s", {"org": w.org_a}),
        expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    # Everyone may ask; each sees only their own orgs (tests/tenancy/test_tenancy.py).
    "my_orgs": Rpc(
        lambda w: ("select count(*) from cfg.my_orgs()", {}),
        effect=None,
        expected=expect(DENIED, "ok", "ok", "ok", "ok", "ok", "ok"),
    ),
    "list_members": Rpc(
        lambda w: ("select * from cfg.list_members(%(org)s)", {"org": w.org_a}),
        effect=None,
        expected=expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok"),
    ),
    "create_automation": Rpc(
        lambda w: ("select * from cfg.create_automation(%(org)s, 'Fresh', 'fresh')", {"org": w.org_a}),
        effect=lambda w: ("select count(*) from cfg.automations where org_id = %(org)s", {"org": w.org_a}),
        expected=expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok"),
    ),
    "delete_automation": Rpc(
        lambda w: ("select * from cfg.delete_automation(%(id)s)", {"id": w.automation_a}),
        effect=lambda w: ("select count(*) from cfg.automations where org_id = %(org)s", {"org": w.org_a}),
        expected=expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok"),
    ),
    # The lookups the CLI and a dashboard share (tests/tenancy/test_lookups.py): the org's members.
    # count(*): an "ok" line must return a row, and an empty list is a fine answer.
    "find_org": Rpc(lambda w: ("select * from cfg.find_org('org-a')", {}), MEMBERS),
    "find_automation": Rpc(lambda w: ("select * from cfg.find_automation('org-a/billing')", {}), MEMBERS),
    "find_environment": Rpc(lambda w: ("select * from cfg.find_environment(%(org)s, 'dev')", {"org": w.org_a}),
                            MEMBERS),
    "list_automations": Rpc(lambda w: ("select count(*) from cfg.list_automations(%(org)s)", {"org": w.org_a}),
                            MEMBERS),
    "select_automations": Rpc(
        lambda w: ("select count(*) from cfg.select_automations(%(org)s, '{\"where\": {}}')", {"org": w.org_a}),
        MEMBERS),
    "list_environments": Rpc(lambda w: ("select count(*) from cfg.list_environments(%(org)s)", {"org": w.org_a}),
                             MEMBERS),
    "list_environment_changes": Rpc(
        lambda w: ("select count(*) from cfg.list_environment_changes(%(org)s)", {"org": w.org_a}), MEMBERS),
    # Every signed-in user asks for their own; the service key is nobody (no email).
    "my_invitations": Rpc(lambda w: ("select count(*) from cfg.my_invitations()", {}),
                          expect(DENIED, "ok", "ok", "ok", "ok", "ok", DENIED)),
}


test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)


def test_rpc_results_are_limited_to_the_org(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        members = run_as(conn, world["viewer"], "select * from cfg.list_members(%s)", (world.org_a,))
        assert sorted(r["email"] for r in members.rows) == [
            "admin@example.test", "editor@example.test", "viewer@example.test"]


# =============================================================================
# Secrets: viewers never read them; config_entries never holds them.
# =============================================================================


@pytest.mark.parametrize("actor", ["viewer", "other_admin", "outsider"])
def test_secret_values_are_invisible_to(shared, actor):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(conn, world[actor], "select * from cfg.entry_secrets")
        assert out.ok and out.rows == []
        out = run_as(conn, world[actor], "select * from cfg.entry_secrets where id = %s",
                     (world.secret_entry_a,))
        assert out.ok and out.rows == []


@pytest.mark.parametrize("actor", ["viewer", "editor", "admin", "service"])
def test_config_entries_value_is_null_for_secrets_for(shared, actor):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(conn, world[actor], "select value, is_secret from cfg.config_entries where id = %s",
                     (world.secret_entry_a,))
        assert out.rows == [{"value": None, "is_secret": True}]
        # Not even a whole-row read of the table mentions the value.
        out = run_as(conn, world[actor], "select t::text as t from cfg.config_entries t")
        assert out.rows and not any("hunter2" in r["t"] for r in out.rows)
        leaked = "select count(*) from cfg.config_entries where value::text like '%%hunter2%%'"
        assert superuser_value(conn, leaked) == 0


@pytest.mark.parametrize("actor", ["editor", "admin"])
def test_editors_read_a_vault_id_and_a_token_never_the_value(shared, actor):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(conn, world[actor], "select t::text as t from cfg.entry_secrets t where id = %s",
                     (world.secret_entry_a,))
        assert len(out.rows) == 1 and "hunter2" not in out.rows[0]["t"]
        out = run_as(conn, world[actor], "select cfg.reveal_secret(%s, 'http', 'api_key') ->> 'value' as v",
                     (world.automation_a,))
        assert out.rows == [{"v": "sk_live_hunter2"}]


def test_viewer_cannot_read_secret_through_a_join(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = run_as(
            conn, world["viewer"],
            "select e.key, coalesce(s.token, e.value::text) as v from cfg.config_entries e "
            "left join cfg.entry_secrets s on s.id = e.id where e.is_secret",
        )
        assert out.rows == [{"key": "api_key", "v": None}]


# =============================================================================
# org_id never changes: a row cannot be moved to another tenant.
# =============================================================================

# (entry_secrets takes no update from any API role at all: its matrix line.)
MOVABLE = ["org_members", "environments", "automations", "config_sections", "config_entries"]


@pytest.mark.parametrize("actor", ["admin_of_both", "service"])
@pytest.mark.parametrize("table", MOVABLE)
def test_org_id_cannot_be_changed(shared, table, actor):
    conn, world = shared
    spec = TABLES[table]
    with conn.transaction(force_rollback=True):
        if actor == "admin_of_both":
            # The strongest authenticated caller: admin in both orgs, so only the rule itself refuses.
            conn.execute("insert into cfg.org_members (org_id, user_id, role) values (%s, %s, 'admin')",
                         (world.org_b, world["admin"].user_id))
            identity = world["admin"]
        else:
            identity = world["service"]
        target = superuser_value(conn, *spec.target(world))
        out = run_as(conn, identity, q("update cfg.{t} set org_id = %s where id = %s", t=table),
                     (world.org_b, target))
        assert not out.ok, f"{table} row moved to org B as {actor}"
        assert out.code in ("PT422", "23503"), (out.code, out.message)
        org = superuser_value(conn, q("select org_id from cfg.{t} where id = %s", t=table), (target,))
        assert org == world.org_a


def test_org_id_cannot_be_changed_even_by_the_superuser(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute("update cfg.automations set org_id = %s where id = %s",
                         (world.org_b, world.automation_a))
        assert info.value.sqlstate == "PT422"
        assert "org_id cannot be changed" in str(info.value)


# =============================================================================
# The access-token hook's org_roles claim is for the UI only: absent or stale, it
# changes nothing. Membership is the truth.
# =============================================================================


def with_claims(identity: Identity, org_roles: object) -> Identity:
    return Identity(identity.role, identity.user_id, identity.email, (("org_roles", org_roles),))


def test_hook_puts_memberships_in_the_claims(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        event = {"user_id": str(world["editor"].user_id), "claims": {"role": "authenticated"}}
        claims = superuser_value(conn, "select cfg_private.custom_access_token_hook(%s::jsonb) -> 'claims' as c",
                                 (json.dumps(event),))
        assert claims == {"role": "authenticated", "org_roles": {str(world.org_a): "editor"}}


@pytest.mark.parametrize("claim", ["absent", "admin-of-b", "admin-of-a", "garbage"])
def test_stale_or_absent_org_roles_claim_changes_nothing(shared, claim):
    conn, world = shared
    viewer = world["viewer"]
    identity = {
        "absent": viewer,
        "admin-of-b": with_claims(viewer, {str(world.org_b): "admin"}),
        "admin-of-a": with_claims(viewer, {str(world.org_a): "admin"}),
        "garbage": with_claims(viewer, "admin"),
    }[claim]
    with conn.transaction(force_rollback=True):
        # Reads: still exactly org A (membership), never org B (claim).
        out = run_as(conn, identity, "select org_id from cfg.automations")
        assert {r["org_id"] for r in out.rows} == {world.org_a}
        # Writes a viewer may not do stay refused, in both orgs.
        for automation in (world.automation_a, world.automation_b):
            out = run_as(conn, identity, "update cfg.automations set description = 'x' where id = %s",
                         (automation,))
            assert out.ok and out.rowcount == 0
        out = run_as(conn, identity, "select * from cfg.invite_member(%s, %s, 'admin')",
                     (world.org_a, world["outsider"].email))
        assert out.code == "PT403"
        out = run_as(conn, identity, "select * from cfg.delete_automation(%s)", (world.automation_b,))
        assert out.code == "PT404"
        out = run_as(conn, identity, "select * from cfg.entry_secrets")
        assert out.rows == []


def test_claim_of_a_removed_member_grants_nothing(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        # The token was minted while the editor was a member; then an admin removed them.
        event = {"user_id": str(world["editor"].user_id), "claims": {}}
        roles = superuser_value(
            conn, "select cfg_private.custom_access_token_hook(%s::jsonb) -> 'claims' -> 'org_roles' as r",
            (json.dumps(event),))
        stale = with_claims(world["editor"], roles)
        out = run_as(conn, world["admin"], "select * from cfg.remove_member(%s, %s)",
                     (world.org_a, world["editor"].user_id))
        assert out.ok
        for table in ("orgs", "automations", "config_entries", "entry_secrets", "audit_log"):
            out = run_as(conn, stale, q("select count(*) from cfg.{t}", t=table))
            assert out.rows[0]["count"] == 0, table
        out = run_as(conn, stale, "update cfg.automations set description = 'x' where id = %s",
                     (world.automation_a,))
        assert out.rowcount == 0
        out = run_as(conn, stale, "select * from cfg.create_automation(%s, 'X', 'x')", (world.org_a,))
        assert out.code == "PT404"
