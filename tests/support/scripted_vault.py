"""A SCRIPTED HashiCorp Vault, not a real one: an HTTP server on 127.0.0.1 that answers the
few KV v2, token and AppRole endpoints cfgctl's client calls, following Vault's HTTP API
documentation (api-docs/secret/kv/kv-v2, api-docs/auth/approle, api-docs/auth/token).
No Vault (or OpenBao) server can be installed on these machines, so the real client code
path, hvac over HTTP, is tested against this exchange instead. It is never a claim that
Vault itself was run.

What it scripts (response bodies in Vault's JSON envelope, the fields hvac and cfgctl read):
- `GET /v1/auth/token/lookup-self`: the token's `data.policies` (and the other fields).
- `POST /v1/auth/<approle mount>/login` `{role_id, secret_id}`: `auth.client_token` with a lease;
  400 `{"errors": ["invalid role or secret ID"]}` for wrong ones.
- `GET /v1/<mount>/data/<path>[?version=N]`: `data.data` and `data.metadata.version`;
  404 `{"errors": []}` when missing; 404 with `data.metadata.deletion_time` set for a deleted version.
- `POST|PUT /v1/<mount>/data/<path>` `{"options": {"cas": N}, "data": {...}}`: a new version,
  `data.version`; 400 `{"errors": ["check-and-set parameter did not match the current version"]}`
  when `cas` is given and is not the current version (0 = must not exist yet).
- `GET /v1/<mount>/metadata/<path>`: `data.current_version`, `data.versions` …
- 403 `{"errors": ["permission denied"]}` for a missing, unknown or expired token, a token of
  another namespace (`X-Vault-Namespace`), or a path outside the token's policy.

Tokens carry a simplified policy: the path prefixes they may use, either API paths
(`secret/data/app/`, as a Vault policy names them) or KV paths (`secret/app/`, covering both
`secret/data/app/…` and `secret/metadata/app/…`).
Tests script the other side through methods: `add_token`, `add_approle`, `expire`,
`put` (an external write, e.g. a rotation), `delete_latest`, and `before_next_write` (calls
run just before the next data write is handled, to stage a race). Every request is recorded
(method, path, query, whether X-Vault-Token was sent, X-Vault-Namespace, X-Vault-Request),
never the token itself.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

PERMISSION_DENIED = {"errors": ["permission denied"]}
CAS_MISMATCH = "check-and-set parameter did not match the current version"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Token:
    policies: list[str]
    paths: tuple[str, ...]  # prefixes this token may use: "secret/data/app/" or "secret/app/"
    namespace: str | None = None
    ttl: int = 0  # 0: a token that does not expire by itself (like a root or periodic token)
    expired: bool = False
    created: str = field(default_factory=_now)


@dataclass
class Version:
    data: dict
    created_time: str = field(default_factory=_now)
    deletion_time: str = ""
    destroyed: bool = False

    def metadata(self, number: int) -> dict:
        return {"created_time": self.created_time, "custom_metadata": None, "deletion_time": self.deletion_time,
                "destroyed": self.destroyed, "version": number}


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    token_sent: bool
    namespace: str | None
    vault_request: str | None
    body: dict | None


class ScriptedVault:
    def __init__(self, mounts: tuple[str, ...] = ("secret",), approle_mount: str = "approle") -> None:
        self.mounts = set(mounts)
        self.approle_mount = approle_mount
        self.tokens: dict[str, Token] = {}
        self.approles: dict[tuple[str, str], Token] = {}
        self.secrets: dict[tuple[str, str], list[Version]] = {}
        self.requests: list[Seen] = []
        self.logins = 0
        self.before_next_write: list[Callable[[], object]] = []
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-vault", daemon=True)

    # --- scripting -------------------------------------------------------------

    def start(self) -> ScriptedVault:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_token(self, paths: tuple[str, ...] = ("secret/",), policies: tuple[str, ...] = ("cfgctl-sync",),
                  namespace: str | None = None) -> str:
        token = f"hvs.{secrets.token_urlsafe(18)}"
        with self.lock:
            self.tokens[token] = Token(["default", *policies], paths, namespace)
        return token

    def add_approle(self, paths: tuple[str, ...] = ("secret/",), policies: tuple[str, ...] = ("cfgctl-sync",),
                    namespace: str | None = None) -> dict:
        """A role_id/secret_id pair; each login issues a new token with these paths."""
        creds = {"role_id": str(uuid.uuid4()), "secret_id": str(uuid.uuid4())}
        with self.lock:
            self.approles[(creds["role_id"], creds["secret_id"])] = Token(["default", *policies], paths, namespace,
                                                                          ttl=2764800)
        return creds

    def expire(self, token: str | None = None) -> None:
        """Expire one token, or (None) every token issued so far, as their TTL running out would."""
        with self.lock:
            for name, tok in self.tokens.items():
                if token in (None, name):
                    tok.expired = True

    def put(self, mount: str, path: str, data: dict) -> int:
        """An external write (someone else's client, a rotation): a new version."""
        with self.lock:
            versions = self.secrets.setdefault((mount, path), [])
            versions.append(Version(dict(data)))
            return len(versions)

    def delete_latest(self, mount: str, path: str) -> None:
        with self.lock:
            self.secrets[(mount, path)][-1].deletion_time = _now()

    def seen(self, method: str | None = None, prefix: str = "") -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)]

    # --- the HTTP side ---------------------------------------------------------

    def _answer(self, method: str, path: str, query: dict, headers, body: dict | None) -> tuple[int, dict | None]:
        if not path.startswith("/v1/"):
            return 404, {"errors": []}
        route = path[len("/v1/"):]
        namespace = headers.get("X-Vault-Namespace") or None

        if route == f"auth/{self.approle_mount}/login" and method in ("POST", "PUT"):
            role = self.approles.get(((body or {}).get("role_id"), (body or {}).get("secret_id")))
            if role is None or role.namespace != namespace:
                return 400, {"errors": ["invalid role or secret ID"]}
            token = f"hvs.{secrets.token_urlsafe(18)}"
            self.tokens[token] = Token(list(role.policies), role.paths, role.namespace, ttl=role.ttl)
            self.logins += 1
            return 200, _envelope(None, auth={
                "client_token": token, "accessor": secrets.token_urlsafe(12), "policies": role.policies,
                "token_policies": role.policies, "metadata": {"role_name": "cfgctl"},
                "lease_duration": role.ttl, "renewable": True, "entity_id": str(uuid.uuid4()),
                "token_type": "service", "orphan": True, "mfa_requirement": None, "num_uses": 0,
            })

        token = self.tokens.get(headers.get("X-Vault-Token") or "")
        if token is None or token.expired or token.namespace != namespace:
            return 403, PERMISSION_DENIED

        if route == "auth/token/lookup-self" and method == "GET":
            return 200, _envelope({
                "accessor": "scripted", "creation_time": 0, "creation_ttl": token.ttl, "display_name": "token",
                "entity_id": "", "expire_time": None, "explicit_max_ttl": 0, "meta": None, "num_uses": 0,
                "orphan": False, "path": "auth/token/create", "policies": token.policies, "renewable": False,
                "ttl": token.ttl, "type": "service", "namespace_path": f"{namespace}/" if namespace else "",
            })

        mount, _, rest = route.partition("/")
        kind, _, secret_path = rest.partition("/")
        logical = f"{mount}/{secret_path}" if kind in ("data", "metadata") else route
        if not any(route.startswith(prefix) or logical.startswith(prefix) for prefix in token.paths):
            return 403, PERMISSION_DENIED
        if mount not in self.mounts or kind not in ("data", "metadata") or not secret_path:
            return 404, {"errors": [f"no handler for route {route!r}. route entry not found."]}
        versions = self.secrets.get((mount, secret_path))

        if kind == "metadata" and method == "GET":
            if not versions:
                return 404, {"errors": []}
            return 200, _envelope({
                "cas_required": False, "created_time": versions[0].created_time, "current_version": len(versions),
                "custom_metadata": None, "delete_version_after": "0s", "max_versions": 0, "oldest_version": 0,
                "updated_time": versions[-1].created_time,
                "versions": {str(n): {k: v for k, v in ver.metadata(n).items() if k != "version"}
                             for n, ver in enumerate(versions, start=1)},
            })

        if kind == "data" and method == "GET":
            number = int(query["version"][0]) if "version" in query else len(versions or [])
            if not versions or not 1 <= number <= len(versions):
                return 404, {"errors": []}
            version = versions[number - 1]
            if version.deletion_time or version.destroyed:
                return 404, _envelope({"data": None, "metadata": version.metadata(number)})
            return 200, _envelope({"data": version.data, "metadata": version.metadata(number)})

        if kind == "data" and method in ("POST", "PUT"):
            while self.before_next_write:  # a write that lands just before this one (a race)
                self.before_next_write.pop(0)()
            if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
                return 400, {"errors": ["no data provided"]}
            cas = (body.get("options") or {}).get("cas")
            if cas is not None and cas != len(versions or []):
                return 400, {"errors": [CAS_MISMATCH]}
            versions = self.secrets.setdefault((mount, secret_path), [])
            versions.append(Version(dict(body["data"])))
            return 200, _envelope(versions[-1].metadata(len(versions)))

        return 405, {"errors": []}

    def _handler(self):
        vault = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # hvac's requests session keeps connections alive

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with vault.lock:
                    vault.requests.append(Seen(
                        self.command, parts.path, parse_qs(parts.query), bool(self.headers.get("X-Vault-Token")),
                        self.headers.get("X-Vault-Namespace"), self.headers.get("X-Vault-Request"), body))
                    status, answer = vault._answer(self.command, parts.path, parse_qs(parts.query),
                                                   self.headers, body)
                out = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _serve

            def log_message(self, format, *args):  # noqa: A002 - quiet test output
                pass

        return Handler


def _envelope(data: dict | None, auth: dict | None = None) -> dict:
    """Vault's response envelope around `data` (or `auth`, for logins)."""
    return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False, "lease_duration": 0,
            "data": data, "wrap_info": None, "warnings": None, "auth": auth, "mount_type": "kv"}


@pytest.fixture
def scripted_vault():
    """A fresh scripted Vault per test (cheap: a thread and a socket)."""
    vault = ScriptedVault().start()
    yield vault
    vault.stop()
