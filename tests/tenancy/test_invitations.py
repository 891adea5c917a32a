"""Membership by invitation: inviting reveals nothing about accounts, the invitee
accepts (or is accepted at first confirmed sign-in, SSO included), invitations expire
and admins list and revoke them. Provenance (invited_by, created_by) cannot be forged."""

from __future__ import annotations

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.world import create_user


@pytest.fixture(autouse=True)
def _autocommit(conn):
    conn.autocommit = True


def members(conn, org_id) -> dict[str, str]:
    rows = conn.execute(
        "select u.email, m.role::text from cfg.org_members m join auth.users u on u.id = m.user_id "
        "where m.org_id = %s", (org_id,)
    ).fetchall()
    return {r["email"]: r["role"] for r in rows}


def invite(conn, who, org, email, role="viewer", expires_in="7 days") -> dict:
    with acting_as(conn, who) as cur:
        return cur.execute("select * from cfg.invite_member(%s, %s, %s, %s::interval)",
                           (org, email, role, expires_in)).fetchone()


def accept(conn, who, invitation_id):
    with acting_as(conn, who) as cur:
        return cur.execute("select * from cfg.accept_invitation(%s)", (invitation_id,)).fetchone()


def sign_up(conn, email, confirmed=True, sso=False):
    """Insert an account as GoTrue does, as supabase_auth_admin."""
    with conn.transaction():
        conn.execute("set local role supabase_auth_admin")
        row = conn.execute(
            "insert into auth.users (instance_id, aud, role, email, email_confirmed_at, is_sso_user) "
            "values ('00000000-0000-0000-0000-000000000000', 'authenticated', 'authenticated', %s, "
            "case when %s then now() end, %s) returning id", (email, confirmed, sso)
        ).fetchone()
    return row["id"]


def test_invitee_accepts_and_joins_with_the_role(conn, world):
    invitation = invite(conn, world["admin"], world.org_a, " Outsider@Example.test ", "editor")
    assert invitation["email"] == "outsider@example.test"
    assert invitation["invited_by"] == world["admin"].user_id
    assert invitation["invited_by_email"] == "admin@example.test"
    # The invitee sees it (addressed to their JWT email); a viewer of the org sees
    # only the (accepted) invitation that was addressed to them.
    with acting_as(conn, world["outsider"]) as cur:
        assert [r["id"] for r in cur.execute("select id from cfg.org_invitations")] == [invitation["id"]]
    with acting_as(conn, world["viewer"]) as cur:
        assert [r["email"] for r in cur.execute("select email from cfg.org_invitations")] == [
            "viewer@example.test"]
    assert "outsider@example.test" not in members(conn, world.org_a)

    joined = accept(conn, world["outsider"], invitation["id"])
    assert joined["role"] == "editor" and joined["invited_by"] == world["admin"].user_id
    assert members(conn, world.org_a)["outsider@example.test"] == "editor"
    with acting_as(conn, world["admin"]) as cur:
        listed = cur.execute("select * from cfg.list_invitations(%s)", (world.org_a,)).fetchall()
    assert listed[0]["id"] == invitation["id"] and listed[0]["status"] == "accepted"
    # Once only.
    with pytest.raises(CfgError) as info:
        accept(conn, world["outsider"], invitation["id"])
    assert info.value.code == "PT409" and "already accepted" in str(info.value)


def test_inviting_answers_the_same_whether_or_not_an_account_exists(conn, world):
    users_before = conn.execute("select count(*) from auth.users").fetchone()["count"]
    members_before = members(conn, world.org_a)
    existing = invite(conn, world["admin"], world.org_a, world["outsider"].email)
    unknown = invite(conn, world["admin"], world.org_a, "ghost@example.test")
    varying = {"id", "email", "created_at", "updated_at", "expires_at"}
    assert existing.keys() == unknown.keys()
    assert {k: v for k, v in existing.items() if k not in varying} == \
        {k: v for k, v in unknown.items() if k not in varying}
    assert conn.execute("select count(*) from auth.users").fetchone()["count"] == users_before
    assert members(conn, world.org_a) == members_before


def test_a_new_account_joins_at_its_first_confirmed_sign_in(conn, world):
    invitation = invite(conn, world["admin"], world.org_a, "newcomer@example.test", "editor")
    expired = invite(conn, world["other_admin"], world.org_b, "newcomer@example.test")
    conn.execute("update cfg.org_invitations set created_at = now() - interval '8 days', "
                 "expires_at = now() - interval '1 day' where id = %s", (expired["id"],))
    # Signed up but not confirmed yet: nothing happens.
    user_id = sign_up(conn, "NewComer@example.test", confirmed=False)
    assert "newcomer@example.test" not in {e.lower() for e in members(conn, world.org_a)}
    with conn.transaction():
        conn.execute("set local role supabase_auth_admin")
        conn.execute("update auth.users set email_confirmed_at = now() where id = %s", (user_id,))
    assert members(conn, world.org_a)["NewComer@example.test"] == "editor"
    assert members(conn, world.org_b) == {"other_admin@example.test": "admin"}
    row = conn.execute("select accepted_by, invited_by from cfg.org_invitations where id = %s",
                       (invitation["id"],)).fetchone()
    assert row == {"accepted_by": user_id, "invited_by": world["admin"].user_id}


def test_an_sso_account_joins_at_creation(conn, world):
    invite(conn, world["admin"], world.org_a, "sso.user@corp.test", "viewer")
    sign_up(conn, "sso.user@corp.test", confirmed=True, sso=True)
    assert members(conn, world.org_a)["sso.user@corp.test"] == "viewer"


def test_an_existing_account_must_accept_explicitly(conn, world):
    invite(conn, world["admin"], world.org_a, world["outsider"].email)
    # Signing in again (last_sign_in_at) changes nothing: consent is the accept call.
    conn.execute("update auth.users set last_sign_in_at = now() where id = %s", (world["outsider"].user_id,))
    assert world["outsider"].email not in members(conn, world.org_a)


def test_someone_else_cannot_accept_an_invitation(conn, world):
    invitation = invite(conn, world["admin"], world.org_a, "ghost@example.test", "admin")
    for actor in ("outsider", "other_admin", "viewer", "service"):
        with pytest.raises(CfgError) as info:
            accept(conn, world[actor], invitation["id"])
        assert info.value.code == "PT404" and str(info.value) == "invitation not found", actor
    # Exactly like an id that does not exist.
    with pytest.raises(CfgError) as unknown:
        accept(conn, world["outsider"], "00000000-0000-4000-8000-000000000000")
    assert (unknown.value.code, str(unknown.value)) == ("PT404", "invitation not found")
    with acting_as(conn, world["outsider"]) as cur:
        assert cur.execute("select count(*) from cfg.org_invitations").fetchone()["count"] == 0


def test_an_unconfirmed_account_cannot_accept(conn, world):
    invitation = invite(conn, world["admin"], world.org_a, "unconfirmed@example.test")
    user_id = sign_up(conn, "unconfirmed@example.test", confirmed=False)
    from sync_service.db import Identity
    who = Identity(role="authenticated", user_id=user_id, email="unconfirmed@example.test")
    with pytest.raises(CfgError) as info:
        accept(conn, who, invitation["id"])
    assert info.value.code == "PT403" and "confirm your email" in str(info.value)


def test_expired_and_revoked_invitations_cannot_be_accepted(conn, world):
    revoked = invite(conn, world["admin"], world.org_a, world["outsider"].email)
    with acting_as(conn, world["admin"]) as cur:
        row = cur.execute("select * from cfg.revoke_invitation(%s)", (revoked["id"],)).fetchone()
    assert row["revoked_by"] == world["admin"].user_id and row["revoked_at"] is not None
    with pytest.raises(CfgError) as info:
        accept(conn, world["outsider"], revoked["id"])
    assert info.value.code == "PT409" and "revoked" in str(info.value)
    expired = invite(conn, world["admin"], world.org_a, world["outsider"].email)
    conn.execute("update cfg.org_invitations set created_at = now() - interval '8 days', "
                 "expires_at = now() - interval '1 day' where id = %s", (expired["id"],))
    with pytest.raises(CfgError) as info:
        accept(conn, world["outsider"], expired["id"])
    assert info.value.code == "PT409" and "expired" in str(info.value)
    assert "new invitation" in info.value.hint

    assert world["outsider"].email not in members(conn, world.org_a)
    with acting_as(conn, world["admin"]) as cur:
        statuses = {r["id"]: r["status"] for r in cur.execute(
            "select * from cfg.list_invitations(%s)", (world.org_a,))}
    assert statuses[expired["id"]] == "expired" and statuses[revoked["id"]] == "revoked"


def test_only_admins_of_the_org_revoke(conn, world):
    invitation = invite(conn, world["admin"], world.org_a, "ghost@example.test")
    with pytest.raises(CfgError) as info, acting_as(conn, world["viewer"]) as cur:
        cur.execute("select cfg.revoke_invitation(%s)", (invitation["id"],))
    assert info.value.code == "PT403"
    for actor in ("other_admin", "outsider"):
        with pytest.raises(CfgError) as info, acting_as(conn, world[actor]) as cur:
            cur.execute("select cfg.revoke_invitation(%s)", (invitation["id"],))
        assert (info.value.code, str(info.value)) == ("PT404", "invitation not found")
    assert conn.execute("select revoked_at from cfg.org_invitations where id = %s",
                        (invitation["id"],)).fetchone()["revoked_at"] is None


def test_inviting_again_replaces_the_open_invitation(conn, world):
    first = invite(conn, world["admin"], world.org_a, "ghost@example.test", "viewer")
    second = invite(conn, world["admin"], world.org_a, "GHOST@example.test", "editor")
    rows = conn.execute("select id, role::text, revoked_at is not null as revoked from cfg.org_invitations "
                        "where email = 'ghost@example.test' order by created_at, revoked_at nulls last"
                        ).fetchall()
    assert {(r["id"], r["role"], r["revoked"]) for r in rows} == {
        (first["id"], "viewer", True), (second["id"], "editor", False)}


def test_inviting_a_member_is_a_conflict(conn, world):
    with pytest.raises(CfgError) as info:
        invite(conn, world["admin"], world.org_a, "Editor@Example.test", "admin")
    assert info.value.code == "PT409" and "already a member" in str(info.value)


@pytest.mark.parametrize("email, role, expires_in, field", [
    ("not-an-email", "viewer", "7 days", "email"),
    ("", "viewer", "7 days", "email"),
    ("a b@example.test", "viewer", "7 days", "email"),
    ("x@example.test", "viewer", "31 days", "expires_in"),
    ("x@example.test", "viewer", "1 minute", "expires_in"),
    ("x@example.test", "viewer", "-1 day", "expires_in"),
])
def test_bad_invitations_are_refused_and_change_nothing(conn, world, email, role, expires_in, field):
    before = conn.execute("select count(*) from cfg.org_invitations").fetchone()["count"]
    with pytest.raises(CfgError) as info:
        invite(conn, world["admin"], world.org_a, email, role, expires_in)
    assert info.value.code == "PT422" and info.value.detail["field"] == field
    assert conn.execute("select count(*) from cfg.org_invitations").fetchone()["count"] == before


def test_invitation_events(conn, world):
    mark = conn.execute("select coalesce(max(id), 0) as m from cfg_private.events").fetchone()["m"]
    invitation = invite(conn, world["admin"], world.org_a, world["outsider"].email, "editor")
    accept(conn, world["outsider"], invitation["id"])
    revoked = invite(conn, world["admin"], world.org_a, "ghost@example.test")
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.revoke_invitation(%s)", (revoked["id"],))
    events = conn.execute("select type, actor_email, subject_id from cfg_private.events where id > %s "
                          "order by id", (mark,)).fetchall()
    assert [(e["type"], e["actor_email"]) for e in events] == [
        ("member.invited", "admin@example.test"),
        ("member.added", "outsider@example.test"),
        ("member.invited", "admin@example.test"),
        ("member.invitation_revoked", "admin@example.test"),
    ]


# =============================================================================
# Provenance is stamped from the JWT and frozen
# =============================================================================


def test_admins_cannot_rewrite_provenance(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("update cfg.orgs set created_by = %s, name = 'Renamed' where id = %s",
                    (world["viewer"].user_id, world.org_a))
        cur.execute("update cfg.org_members set invited_by = %s, role = 'editor' "
                    "where org_id = %s and user_id = %s",
                    (world["viewer"].user_id, world.org_a, world["viewer"].user_id))
    org = conn.execute("select name, created_by from cfg.orgs where id = %s", (world.org_a,)).fetchone()
    assert org == {"name": "Renamed", "created_by": world["admin"].user_id}
    member = conn.execute("select role::text, invited_by from cfg.org_members where org_id = %s "
                          "and user_id = %s", (world.org_a, world["viewer"].user_id)).fetchone()
    assert member == {"role": "editor", "invited_by": world["admin"].user_id}


def test_a_membership_cannot_be_given_to_another_user(conn, world):
    with pytest.raises(CfgError) as info, acting_as(conn, world["admin"]) as cur:
        cur.execute("update cfg.org_members set user_id = %s where org_id = %s and user_id = %s",
                    (world["outsider"].user_id, world.org_a, world["viewer"].user_id))
    assert info.value.code == "PT422" and "invite them instead" in str(info.value)
    assert world["outsider"].email not in members(conn, world.org_a)


def test_admins_cannot_insert_memberships(conn, world):
    with pytest.raises(CfgError) as info, acting_as(conn, world["admin"]) as cur:
        cur.execute("insert into cfg.org_members (org_id, user_id, role) values (%s, %s, 'admin')",
                    (world.org_a, world["outsider"].user_id))
    assert info.value.code == "42501"
    assert world["outsider"].email not in members(conn, world.org_a)


def test_a_user_created_later_with_an_invited_email_is_someone_new(conn, world):
    # create_user writes a confirmed account like GoTrue with autoconfirm: it joins.
    invite(conn, world["admin"], world.org_a, "late@example.test", "viewer")
    create_user(conn, "late@example.test")
    assert members(conn, world.org_a)["late@example.test"] == "viewer"


def test_tenancy_rpcs_are_security_invoker_and_trigger_functions_not_executable(conn):
    rows = conn.execute(
        "select p.proname, p.prosecdef from pg_proc p where p.pronamespace = 'cfg'::regnamespace "
        "and p.proname = any(%s)",
        (["create_org", "list_members", "set_member_role", "remove_member", "create_automation",
          "delete_automation", "invite_member", "list_invitations", "revoke_invitation", "accept_invitation"],),
    ).fetchall()
    assert len(rows) == 10 and not any(r["prosecdef"] for r in rows), rows
    triggers = ["touch_row", "touch_updated_at", "stamp_author", "stamp_org_creator", "guard_membership",
                "divert_secret_value", "keep_one_admin", "accept_invitations_on_sign_in", "invitation_event"]
    granted = conn.execute(
        "select p.proname, r.rolname from pg_proc p cross join pg_roles r "
        "where p.pronamespace = 'cfg_private'::regnamespace and p.proname = any(%s) "
        "and r.rolname in ('public', 'anon', 'authenticated', 'service_role') "
        "and has_function_privilege(r.oid, p.oid, 'execute')", (triggers,)
    ).fetchall()
    assert granted == []
    hook = conn.execute(
        "select r.rolname from pg_roles r where has_function_privilege(r.oid, "
        "'cfg_private.custom_access_token_hook(jsonb)', 'execute') and not r.rolsuper "
        "and r.rolname in ('anon', 'authenticated', 'service_role', 'supabase_auth_admin')"
    ).fetchall()
    assert [h["rolname"] for h in hook] == ["supabase_auth_admin"]
