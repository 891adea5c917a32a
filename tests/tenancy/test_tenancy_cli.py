"""The org, member, user, automation and audit commands of `cfgctl`, through the real
entry point (the `cfgctl` fixture: tests/support/cli.py) against the per-test database."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cfgctl


@pytest.fixture(autouse=True)
def _autocommit(conn):
    """The superuser connection sees each CLI call's committed rows, and holds no locks."""
    conn.autocommit = True


A = ("--as", "admin@example.test")
E = ("--as", "editor@example.test")
V = ("--as", "viewer@example.test")


# =============================================================================
# org
# =============================================================================


def test_org_create_and_list(cfgctl, world):
    created = cfgctl("org", "create", "Acme Corp", "--slug", "acme", "--as", "outsider@example.test", "--json")
    assert created.code == 0, created.err
    org = created.json()
    assert org["slug"] == "acme" and org["name"] == "Acme Corp"
    listed = cfgctl("org", "list", "--as", "outsider@example.test", "--json")
    assert listed.code == 0
    assert [(o["slug"], o["role"]) for o in listed.json()] == [("acme", "admin")]
    # For people: a table.
    table = cfgctl("org", "list", *V)
    assert table.code == 0 and "org-a" in table.out and "viewer" in table.out and "org-b" not in table.out


def test_org_create_errors(cfgctl, world):
    invalid = cfgctl("org", "create", "Bad", "--slug", "Bad Slug", *A)
    assert invalid.code == 6 and "invalid organisation slug" in invalid.err
    taken = cfgctl("org", "create", "Again", "--slug", "org-a", *A)
    assert taken.code == 5 and "already exists" in taken.err
    service = cfgctl("org", "create", "Nobody", "--slug", "nobody", "--service")
    assert service.code == 4 and "signed-in user" in service.err


def test_missing_identity_is_refused_with_a_hint(cfgctl, world, conn):
    result = cfgctl("org", "create", "Anon", "--slug", "anon-org")
    assert result.code == 1
    assert "--as" in result.err and "no identity" in result.err
    assert conn.execute("select count(*) from cfg.orgs where slug = 'anon-org'").fetchone()["count"] == 0
    both = cfgctl("org", "list", *A, "--service")
    assert both.code == 1 and "not both" in both.err


def test_unknown_user_is_not_found(cfgctl, world):
    result = cfgctl("org", "list", "--as", "ghost@example.test")
    assert result.code == 3 and "ghost@example.test" in result.err


# =============================================================================
# member
# =============================================================================


def test_member_invite_accept_set_role_list_remove(cfgctl, world):
    invited = cfgctl("member", "invite", "org-a", "outsider@example.test", "--role", "editor", *A, "--json")
    assert invited.code == 0, invited.err
    invitation = invited.json()
    assert (invitation["email"], invitation["role"]) == ("outsider@example.test", "editor")
    mine = cfgctl("invite", "list", "--as", "outsider@example.test", "--json")
    assert [i["id"] for i in mine.json()] == [invitation["id"]]
    accepted = cfgctl("invite", "accept", invitation["id"], "--as", "outsider@example.test", "--json")
    assert accepted.code == 0, accepted.err
    assert accepted.json()["role"] == "editor"
    changed = cfgctl("member", "set-role", "org-a", "outsider@example.test", "admin", *A, "--json")
    assert changed.code == 0 and changed.json()["role"] == "admin"
    listed = cfgctl("member", "list", "org-a", *V, "--json")
    assert listed.code == 0
    assert {m["email"]: m["role"] for m in listed.json()} == {
        "admin@example.test": "admin", "editor@example.test": "editor",
        "outsider@example.test": "admin", "viewer@example.test": "viewer"}
    removed = cfgctl("member", "remove", "org-a", "outsider@example.test", *A, "--json")
    assert removed.code == 0 and removed.json()["user_id"] == str(world["outsider"].user_id)
    table = cfgctl("member", "list", str(world.org_a), *V)
    assert table.code == 0 and "outsider" not in table.out and "viewer@example.test" in table.out


def test_member_invitations_and_revoke(cfgctl, world):
    ghost = cfgctl("member", "invite", "org-a", "Ghost@example.test", "--expires-in", "2 days", *A, "--json")
    assert ghost.code == 0, ghost.err
    # Same answer for an address with no account: nothing says whether one exists.
    assert ghost.json().keys() == cfgctl("member", "invite", "org-a", "outsider@example.test", *A,
                                         "--json").json().keys()
    listed = cfgctl("member", "invitations", "org-a", *A, "--json").json()
    assert {i["email"]: i["status"] for i in listed if i["status"] == "pending"} == {
        "ghost@example.test": "pending", "outsider@example.test": "pending"}
    revoked = cfgctl("member", "revoke-invite", ghost.json()["id"], *A, "--json")
    assert revoked.code == 0 and revoked.json()["revoked_at"]
    table = cfgctl("member", "invitations", "org-a", *A)
    assert table.code == 0 and "revoked" in table.out and "ghost@example.test" in table.out
    again = cfgctl("member", "revoke-invite", ghost.json()["id"], *A)
    assert again.code == 5 and "already revoked" in again.err
    not_yours = cfgctl("invite", "accept", ghost.json()["id"], "--as", "outsider@example.test")
    assert not_yours.code == 3 and "invitation not found" in not_yours.err


def test_member_errors_map_to_exit_codes(cfgctl, world):
    forbidden = cfgctl("member", "invite", "org-a", "outsider@example.test", *V)
    assert forbidden.code == 4 and "requires the admin role" in forbidden.err
    invalid = cfgctl("member", "invite", "org-a", "not-an-email", *A)
    assert invalid.code == 6 and "not an email address" in invalid.err
    too_long = cfgctl("member", "invite", "org-a", "x@example.test", "--expires-in", "90 days", *A)
    assert too_long.code == 6 and "30 days" in too_long.err
    duplicate = cfgctl("member", "invite", "org-a", "editor@example.test", *A)
    assert duplicate.code == 5 and "already a member" in duplicate.err
    gone = cfgctl("member", "add", "org-a", "outsider@example.test", *A)
    assert gone.code == 2  # no such command: people join by invitation
    bad_role = cfgctl("member", "set-role", "org-a", "editor@example.test", "owner", *A)
    assert bad_role.code == 6 and "owner" in bad_role.err
    last_admin = cfgctl("member", "remove", "org-a", "admin@example.test", *A)
    assert last_admin.code == 5 and "last admin" in last_admin.err and "hint:" in last_admin.err
    not_member = cfgctl("member", "remove", "org-a", "outsider@example.test", *A)
    assert not_member.code == 3
    other_org = cfgctl("member", "list", "org-b", *A)
    assert other_org.code == 3 and "not found" in other_org.err


def test_user_delete_and_recovering_the_org(cfgctl, world, conn):
    refused = cfgctl("user", "delete", "admin@example.test", input="n\n")
    assert refused.code == 1 and conn.execute(
        "select count(*) from auth.users where email = 'admin@example.test'").fetchone()["count"] == 1
    deleted = cfgctl("user", "delete", "admin@example.test", "--yes", "--json")
    assert deleted.code == 0, deleted.err
    assert deleted.json() == {"id": str(world["admin"].user_id), "email": "admin@example.test"}
    unknown = cfgctl("user", "delete", "admin@example.test", "--yes")
    assert unknown.code == 3 and "no user" in unknown.err
    # Org A has no admin left; the operator names one with the service key.
    promoted = cfgctl("member", "set-role", "org-a", "editor@example.test", "admin", "--service", "--json")
    assert promoted.code == 0, promoted.err
    listed = cfgctl("member", "list", "org-a", *E, "--json").json()
    assert {m["email"]: m["role"] for m in listed} == {
        "editor@example.test": "admin", "viewer@example.test": "viewer"}


# =============================================================================
# user (SQL path on the embedded stack)
# =============================================================================


def test_user_create(cfgctl, conn):
    created = cfgctl("user", "create", "New.User@example.test", "--password", "s3cret-pw", "--json")
    assert created.code == 0, created.err
    assert created.json()["email"] == "new.user@example.test"
    row = conn.execute("select encrypted_password like '$2%%' as bcrypt from auth.users "
                       "where email = 'new.user@example.test'").fetchone()
    assert row == {"bcrypt": True}
    again = cfgctl("user", "create", "new.user@example.test", "--password", "other-pw")
    assert again.code == 5 and "already exists" in again.err
    short = cfgctl("user", "create", "short@example.test", "--password", "123")
    assert short.code == 6 and "6 characters" in short.err
    # And the new user can act at once.
    org = cfgctl("org", "create", "Newco", "--slug", "newco", "--as", "new.user@example.test")
    assert org.code == 0, org.err


# =============================================================================
# automation
# =============================================================================


def test_automation_create_list_show_delete(cfgctl, world, conn):
    created = cfgctl("automation", "create", "org-a", "Mailer", "--slug", "mailer", "--type", "worker",
                     "--tag", "email", "--tag", "prod", "--description", "Sends mail", *E, "--json")
    assert created.code == 0, created.err
    automation = created.json()
    assert (automation["type"], automation["tags"]) == ("worker", ["email", "prod"])
    assert automation["created_by"] == str(world["editor"].user_id)

    listed = cfgctl("automation", "list", "org-a", *V, "--json")
    assert listed.code == 0 and [a["slug"] for a in listed.json()] == ["billing", "mailer"]
    table = cfgctl("automation", "list", "org-a", *V)
    assert "mailer" in table.out and "email, prod" in table.out

    deleted = cfgctl("automation", "delete", "org-a/mailer", "--yes", *A, "--json")
    assert deleted.code == 0 and deleted.json()["id"] == automation["id"]
    assert conn.execute("select count(*) from cfg.automations where slug = 'mailer'").fetchone()["count"] == 0


@pytest.mark.parametrize("who", [A, E, V], ids=["admin", "editor", "viewer"])
def test_automation_show_masks_secrets(cfgctl, world, who):
    shown = cfgctl("automation", "show", "org-a/billing", *who, "--json")
    assert shown.code == 0, shown.err
    data = shown.json()
    assert data["slug"] == "billing"
    assert {(e["section"], e["key"]): e["value"] for e in data["entries"]} == {
        ("http", "api_key"): "********", ("http", "port"): 8080}
    assert "hunter2" not in shown.out
    table = cfgctl("automation", "show", str(world.automation_a), *who)
    assert table.code == 0 and "********" in table.out and "8080" in table.out
    assert "hunter2" not in table.out + table.err


def test_automation_errors_map_to_exit_codes(cfgctl, world, conn):
    assert cfgctl("automation", "create", "org-a", "X", "--slug", "Bad_Slug", *E).code == 6
    assert cfgctl("automation", "create", "org-a", "X", "--slug", "billing", *E).code == 5
    assert cfgctl("automation", "create", "org-a", "X", "--slug", "x", "--type", "lambda", *E).code == 6
    forbidden = cfgctl("automation", "create", "org-a", "X", "--slug", "x", *V)
    assert forbidden.code == 4 and "requires the editor role" in forbidden.err
    assert cfgctl("automation", "show", "org-a/nope", *V).code == 3
    assert cfgctl("automation", "show", "org-b/other", *A).code == 3
    assert cfgctl("automation", "show", str(world.automation_b), *A).code == 3
    unnamed = cfgctl("automation", "show", "billing", *A)
    assert unnamed.code == 6 and "ORG/SLUG" in unnamed.err
    denied = cfgctl("automation", "delete", "org-a/billing", "--yes", *E)
    assert denied.code == 4 and "requires the admin role" in denied.err
    # Without --yes a person is asked; answering no deletes nothing.
    declined = cfgctl("automation", "delete", "org-a/billing", *A, input="n\n")
    assert declined.code == 1 and "Delete automation billing" in declined.out
    assert conn.execute("select count(*) from cfg.automations where slug = 'billing'").fetchone()["count"] == 1
    assert conn.execute("select count(*) from cfg.automations").fetchone()["count"] == 2


# =============================================================================
# audit
# =============================================================================


def test_audit_log_with_filters(cfgctl, world, conn):
    assert cfgctl("automation", "create", "org-a", "Mailer", "--slug", "mailer", *E).code == 0
    everything = cfgctl("audit", "log", "org-a", *A, "--json", "--limit", "10000")
    assert everything.code == 0, everything.err
    rows = everything.json()
    assert len(rows) == conn.execute("select count(*) from cfg.audit_log where org_id = %s",
                                     (world.org_a,)).fetchone()["count"]
    mailer = cfgctl("audit", "log", "org-a", "--automation", "mailer", *E, "--json").json()
    assert [(r["table_name"], r["operation"], r["actor_email"]) for r in mailer] == [
        ("automations", "INSERT", "editor@example.test")]
    by_editor = cfgctl("audit", "log", "org-a", "--actor", "editor@example.test", *A, "--json").json()
    assert by_editor and {r["actor_email"] for r in by_editor} == {"editor@example.test"}
    one = cfgctl("audit", "log", "org-a", "--limit", "1", *A, "--json").json()
    assert len(one) == 1 and one[0]["id"] == max(r["id"] for r in rows)
    future = cfgctl("audit", "log", "org-a", "--since", "2999-01-01", *A, "--json")
    assert future.code == 0 and future.json() == []
    past = cfgctl("audit", "log", "org-a", "--until", "2000-01-01T00:00:00", *A, "--json")
    assert past.json() == []
    table = cfgctl("audit", "log", "org-a", "--automation", "billing", *A)
    assert table.code == 0 and "config_entries" in table.out and "hunter2" not in table.out


def test_audit_log_errors(cfgctl, world):
    viewer = cfgctl("audit", "log", "org-a", *V)
    assert viewer.code == 4 and "requires the editor role" in viewer.err
    assert cfgctl("audit", "log", "org-b", *A).code == 3
    assert cfgctl("audit", "log", "org-a", "--automation", "nope", *A).code == 3
    # Out-of-range limits are refused by the CLI itself (click usage error: exit 2).
    assert cfgctl("audit", "log", "org-a", "--limit", "0", *A).code == 2
    assert cfgctl("audit", "log", "org-a", "--since", "yesterday", *A).code == 2


def test_service_identity_sees_every_org(cfgctl, world):
    listed = cfgctl("org", "list", "--service", "--json")
    assert listed.code == 0 and {o["slug"] for o in listed.json()} == {"org-a", "org-b"}
    log = cfgctl("audit", "log", "org-b", "--service", "--json")
    assert log.code == 0 and {r["org_id"] for r in log.json()} == {str(world.org_b)}


def test_unreachable_database_says_so():
    result = run_cfgctl("org", "list", *A, env={"CFGCTL_DB_URL": "postgresql://postgres@127.0.0.1:1/nowhere"})
    assert result.code == 1
    assert "cannot connect" in result.err and "cfgctl local start" in result.err
