"""Users: SQL path on the embedded stack; Supabase Auth's admin API on a hosted project.
GoTrue cannot run here, so the hosted path is exercised against a scripted HTTP exchange
(a local server answering like GoTrue's POST /auth/v1/admin/users, POST /auth/v1/invite
and DELETE /auth/v1/admin/users/{id}) — not live. Deleting users is tested as GoTrue
does it in the database: DELETE FROM auth.users as supabase_auth_admin."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import psycopg
import pytest

from sync_service.db import CfgError, acting_as, user_identity
from sync_service.users import SqlUserDirectory, SupabaseUserDirectory, user_directory
from tests.support.world import create_user


def test_sql_path_creates_a_user_who_can_sign_in(db_url):
    user = SqlUserDirectory(db_url).create_user("New.Person@Example.test", "s3cret-pass")
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select email, encrypted_password = extensions.crypt('s3cret-pass', encrypted_password) as ok "
            "from auth.users where id = %s", (user["id"],)
        ).fetchone()
        assert row == ("new.person@example.test", True)
        assert user_identity(conn, "new.person@example.test").user_id is not None


@pytest.mark.parametrize("email,password,message", [
    ("not-an-email", "s3cret-pass", "not an email"),
    ("a@example.test", "123", "at least 6"),
])
def test_sql_path_rejects_bad_input(db_url, email, password, message):
    with pytest.raises(CfgError, match=message):
        SqlUserDirectory(db_url).create_user(email, password)


def test_sql_path_refuses_duplicates(db_url):
    SqlUserDirectory(db_url).create_user("dup@example.test", "s3cret-pass")
    with pytest.raises(CfgError, match="already exists") as caught:
        SqlUserDirectory(db_url).create_user("DUP@example.test", "s3cret-pass")
    assert caught.value.code == "PT409"


class ScriptedGoTrue(BaseHTTPRequestHandler):
    """Answers like GoTrue's admin API; records what it was sent."""

    requests: list = []

    def do_DELETE(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ScriptedGoTrue.requests.append((self.path, dict(self.headers), body))
        self._answer(200, {})

    def _answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ScriptedGoTrue.requests.append((self.path, dict(self.headers), body))
        if body["email"] == "taken@example.test":
            status, payload = 422, {"code": 422, "error_code": "email_exists",
                                    "msg": "A user with this email address has already been registered"}
        else:
            status, payload = 200, {
                "id": "11111111-2222-4333-8444-555555555555", "aud": "authenticated",
                "role": "authenticated", "email": body["email"], "app_metadata": {"provider": "email"},
                "user_metadata": {}, "created_at": "2026-11-25T00:00:00Z",
            }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def gotrue(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), ScriptedGoTrue)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ScriptedGoTrue.requests = []
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("CFGCTL_SUPABASE_URL", url)
    monkeypatch.setenv("CFGCTL_SUPABASE_SERVICE_KEY", "service-key-for-test")
    yield url
    server.shutdown()


def test_hosted_path_calls_supabase_auth_admin_api(gotrue):
    directory = user_directory("postgresql://unused")
    assert isinstance(directory, SupabaseUserDirectory)
    user = directory.create_user("hosted@example.test", "s3cret-pass")
    assert user == {"id": "11111111-2222-4333-8444-555555555555", "email": "hosted@example.test"}
    path, headers, body = ScriptedGoTrue.requests[0]
    assert path == "/auth/v1/admin/users"
    assert headers["Authorization"] == "Bearer service-key-for-test"
    assert body == {"email": "hosted@example.test", "password": "s3cret-pass", "email_confirm": True}


def test_hosted_path_sends_supabase_auths_invite(gotrue):
    directory = user_directory("postgresql://unused")
    new = directory.invite_user(" New@Example.test ", redirect_to="http://127.0.0.1:3000/welcome")
    # An address with an account gets no email (GoTrue answers 422) and the same answer.
    existing = directory.invite_user("taken@example.test")
    assert new == {"email": "new@example.test"} and existing == {"email": "taken@example.test"}
    (path, headers, body), (path2, _, body2) = ScriptedGoTrue.requests
    assert path == "/auth/v1/invite?redirect_to=http%3A%2F%2F127.0.0.1%3A3000%2Fwelcome"
    assert headers["Authorization"] == "Bearer service-key-for-test"
    assert body == {"email": "new@example.test", "data": None}
    assert (path2, body2) == ("/auth/v1/invite", {"email": "taken@example.test", "data": None})


def test_hosted_path_deletes_through_supabase_auths_admin_api(gotrue, conn, db_url):
    user = create_user(conn, "leaving@example.test")
    directory = user_directory(db_url)
    assert isinstance(directory, SupabaseUserDirectory)
    assert directory.delete_user("Leaving@example.test") == {"id": str(user.user_id),
                                                             "email": "leaving@example.test"}
    [(path, headers, body)] = ScriptedGoTrue.requests
    assert path == f"/auth/v1/admin/users/{user.user_id}"
    assert headers["Authorization"] == "Bearer service-key-for-test"
    assert body == {"should_soft_delete": False}
    with pytest.raises(CfgError) as caught:
        directory.delete_user("nobody@example.test")
    assert caught.value.code == "PT404" and len(ScriptedGoTrue.requests) == 1


def test_hosted_path_maps_duplicate_to_conflict(gotrue):
    with pytest.raises(CfgError, match="already been registered") as caught:
        user_directory("postgresql://unused").create_user("taken@example.test", "s3cret-pass")
    assert caught.value.code == "PT409"


# =============================================================================
# Deleting users: Supabase Auth runs DELETE FROM auth.users as supabase_auth_admin.
# Nothing of ours may make that fail (it would be a 500 "Database error deleting user").
# =============================================================================


def gotrue_delete(conn, user_id) -> None:
    """What GoTrue's admin delete does in the database."""
    with conn.transaction():
        conn.execute("set local role supabase_auth_admin")
        deleted = conn.execute("delete from auth.users where id = %s", (user_id,)).rowcount
    assert deleted == 1


def latest_version(conn, automation_id) -> int:
    return conn.execute("select coalesce(max(version), 0) as v from cfg.config_versions "
                        "where automation_id = %s", (automation_id,)).fetchone()["v"]


def test_deleting_an_author_of_versions_keeps_their_id_and_email(conn, world):
    conn.autocommit = True
    editor = world["editor"]
    body = json.dumps({"sections": {"http": {"entries": {"port": {"value": 9090}}}}})
    with acting_as(conn, editor) as cur:
        cur.execute("select cfg.save_config(%s, %s, %s::jsonb)",
                    (world.automation_a, latest_version(conn, world.automation_a), body))
    before = conn.execute("select id, author_id, author_email from cfg.config_versions "
                          "where author_id = %s", (editor.user_id,)).fetchall()
    assert before and all(r["author_email"] == "editor@example.test" for r in before)
    gotrue_delete(conn, editor.user_id)
    after = conn.execute("select id, author_id, author_email from cfg.config_versions "
                         "where id = any(%s)", ([r["id"] for r in before],)).fetchall()
    assert sorted(after, key=str) == sorted(before, key=str)
    history = conn.execute("select count(*) from cfg.deployment_history where actor_id = %s",
                           (editor.user_id,)).fetchone()["count"]
    assert history > 0  # who deployed stays too
    assert conn.execute("select count(*) from cfg.org_members where user_id = %s",
                        (editor.user_id,)).fetchone()["count"] == 0


def test_deleting_the_last_admin_leaves_the_org_for_an_operator_to_recover(conn, world, db_url):
    conn.autocommit = True
    admin = world["admin"]
    mark = conn.execute("select coalesce(max(id), 0) as m from cfg_private.events").fetchone()["m"]
    # The admin authored versions too (build_world wrote entries) and invited people.
    assert conn.execute("select count(*) from cfg.config_versions where author_id = %s",
                        (admin.user_id,)).fetchone()["count"] > 0
    SqlUserDirectory(db_url).delete_user("ADMIN@example.test")
    assert conn.execute("select count(*) from auth.users where id = %s", (admin.user_id,)
                        ).fetchone()["count"] == 0
    roles = conn.execute("select role::text from cfg.org_members where org_id = %s", (world.org_a,)
                         ).fetchall()
    assert sorted(r["role"] for r in roles) == ["editor", "viewer"]
    lost = conn.execute("select org_id, payload from cfg_private.events "
                        "where id > %s and type = 'org.admin_lost'", (mark,)).fetchall()
    assert [(e["org_id"], e["payload"]) for e in lost] == [(world.org_a, {"user_id": str(admin.user_id)})]
    audit = conn.execute("select actor_role from cfg.audit_log where table_name = 'org_members' "
                         "and operation = 'DELETE' and old_values ->> 'user_id' = %s", (str(admin.user_id),)
                         ).fetchall()
    assert [a["actor_role"] for a in audit] == ["supabase_auth_admin"]
    # Provenance stays as plain values.
    org = conn.execute("select created_by from cfg.orgs where id = %s", (world.org_a,)).fetchone()
    assert org["created_by"] == admin.user_id

    # Recovery: the operator makes a remaining member admin with the service key.
    with acting_as(conn, world["service"]) as cur:
        cur.execute("select cfg.set_member_role(%s, %s, 'admin')", (world.org_a, world["editor"].user_id))
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("select cfg.create_automation(%s, 'Back', 'back')", (world.org_a,))
        cur.execute("select cfg.set_member_role(%s, %s, 'editor')", (world.org_a, world["viewer"].user_id))


def test_an_org_whose_only_member_is_deleted_is_recovered_by_an_admin_invitation(conn, world):
    conn.autocommit = True
    gotrue_delete(conn, world["other_admin"].user_id)
    assert conn.execute("select count(*) from cfg.org_members where org_id = %s", (world.org_b,)
                        ).fetchone()["count"] == 0
    with acting_as(conn, world["service"]) as cur:
        invitation = cur.execute("select * from cfg.invite_member(%s, 'rescuer@example.test', 'admin')",
                                 (world.org_b,)).fetchone()
    assert invitation["invited_by"] is None  # the service key is nobody
    rescuer = create_user(conn, "rescuer@example.test")  # signs up: joins as admin
    with acting_as(conn, rescuer) as cur:
        cur.execute("select cfg.create_automation(%s, 'Back', 'back')", (world.org_b,))
    role = conn.execute("select role::text from cfg.org_members where org_id = %s and user_id = %s",
                        (world.org_b, rescuer.user_id)).fetchone()["role"]
    assert role == "admin"


def test_a_deleted_user_who_did_everything_is_deleted(conn, world):
    """Orgs created, invitations sent and accepted, automations, versions, member changes."""
    conn.autocommit = True
    admin = world["admin"]
    with acting_as(conn, admin) as cur:
        cur.execute("select cfg.create_org('Solo', 'solo')")
        cur.execute("select cfg.invite_member(%s, 'pending@example.test', 'viewer')", (world.org_a,))
        cur.execute("update cfg.automations set description = 'touched' where id = %s", (world.automation_a,))
        cur.execute("select cfg.set_member_role(%s, %s, 'admin')", (world.org_a, world["editor"].user_id))
    gotrue_delete(conn, admin.user_id)
    gotrue_delete(conn, world["editor"].user_id)  # the org's remaining admin, an inviter's invitee
    invitation = conn.execute("select invited_by from cfg.org_invitations where email = 'pending@example.test'"
                              ).fetchone()
    assert invitation["invited_by"] == admin.user_id
    automation = conn.execute("select created_by, updated_by from cfg.automations where id = %s",
                              (world.automation_a,)).fetchone()
    assert automation == {"created_by": admin.user_id, "updated_by": admin.user_id}


def test_only_what_a_user_owns_references_auth_users(conn):
    """Who-did-what columns are plain values: a foreign key there would either block
    Supabase Auth's delete (immutable rows) or be undone by the freezing triggers. What a
    user owns goes with them: memberships, and saved filters (shared ones too)."""
    rows = conn.execute(
        "select c.conrelid::regclass::text as tbl, a.attname, c.confdeltype "
        "from pg_constraint c join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any(c.conkey) "
        "where c.contype = 'f' and c.confrelid = 'auth.users'::regclass "
        "and c.connamespace in ('cfg'::regnamespace, 'cfg_private'::regnamespace)"
    ).fetchall()
    assert sorted((r["tbl"], r["attname"], r["confdeltype"]) for r in rows) == [
        ("cfg.org_members", "user_id", "c"), ("cfg.saved_filters", "owner_id", "c")]


def test_sql_path_delete_of_an_unknown_user_is_not_found(db_url):
    with pytest.raises(CfgError) as caught:
        SqlUserDirectory(db_url).delete_user("nobody@example.test")
    assert caught.value.code == "PT404"


# =============================================================================
# seed.sql: users Supabase Auth can sign in (supabase start seeds this file)
# =============================================================================

# GoTrue scans these into Go strings: NULL makes sign-in fail ("converting NULL to string").
GOTRUE_STRING_COLUMNS = ("confirmation_token", "recovery_token", "email_change_token_new", "email_change",
                         "email_change_token_current", "phone_change", "phone_change_token",
                         "reauthentication_token")


def test_seed_users_are_written_as_gotrue_writes_them(db_url, conn):
    from sync_service import local_stack as local

    local.apply_seed(db_url)
    local.apply_seed(db_url)  # safe to run twice
    users = conn.execute(
        "select u.*, extensions.crypt('password', u.encrypted_password) = u.encrypted_password as pw_ok "
        "from auth.users u where u.email like '%%@acme.test' order by u.email"
    ).fetchall()
    assert [u["email"] for u in users] == ["admin@acme.test", "editor@acme.test", "viewer@acme.test"]
    for u in users:
        assert str(u["instance_id"]) == "00000000-0000-0000-0000-000000000000"
        assert (u["aud"], u["role"]) == ("authenticated", "authenticated")
        assert all(u[c] == "" for c in GOTRUE_STRING_COLUMNS), u
        assert u["email_confirmed_at"] is not None and u["pw_ok"]
        assert u["raw_app_meta_data"] == {"provider": "email", "providers": ["email"]}
    identities = conn.execute(
        "select i.provider, i.provider_id, i.user_id, i.email, i.identity_data from auth.identities i "
        "join auth.users u on u.id = i.user_id where u.email like '%%@acme.test' order by i.email"
    ).fetchall()
    assert [(i["provider"], i["provider_id"], i["email"]) for i in identities] == [
        ("email", str(u["id"]), u["email"]) for u in users]
    assert all(i["identity_data"]["sub"] == i["provider_id"] and i["identity_data"]["email_verified"]
               for i in identities)
    # And they are members of the demo org, as the admin invited them.
    roles = conn.execute("select u.email, m.role::text, m.invited_by from cfg.org_members m "
                         "join auth.users u on u.id = m.user_id order by u.email").fetchall()
    assert [(r["email"], r["role"]) for r in roles] == [
        ("admin@acme.test", "admin"), ("editor@acme.test", "editor"), ("viewer@acme.test", "viewer")]
    assert {r["invited_by"] for r in roles} == {users[0]["id"]}
