"""Creating users: SQL path on the embedded stack; Supabase Auth's admin API on a hosted
project. GoTrue cannot run here, so the hosted path is exercised against a scripted HTTP
exchange (a local server answering like GoTrue's POST /auth/v1/admin/users) — not live."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import psycopg
import pytest

from sync_service.db import CfgError, user_identity
from sync_service.users import SqlUserDirectory, SupabaseUserDirectory, user_directory


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


def test_hosted_path_maps_duplicate_to_conflict(gotrue):
    with pytest.raises(CfgError, match="already been registered") as caught:
        user_directory("postgresql://unused").create_user("taken@example.test", "s3cret-pass")
    assert caught.value.code == "PT409"
