"""HashiCorp Vault KV v2 through hvac, with token or AppRole auth.

A binding names one field of a KV v2 secret. Writes are read-modify-write with
check-and-set (`cas` = the version read, 0 for a new secret), so other fields are kept and a
concurrent external write makes ours fail as a "conflict" instead of being overwritten.

AppRole logs in at the first call, and logs in again once when a call answers 403 (the
token expired or was revoked); a second 403 is "denied"."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import hvac
import hvac.exceptions
import requests

from . import BackendError, ExternalValue, Ref

T = TypeVar("T")
TIMEOUT = 5  # seconds, per HTTP request


@contextlib.contextmanager
def _errors(action: str, where: str) -> Iterator[None]:
    """hvac's exceptions as BackendError. hvac's messages quote the URL and Vault's errors;
    ours name the action and the path only, and `from None` keeps the original out of
    tracebacks."""
    try:
        yield
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
        raise BackendError("denied", f"Vault denied {action} on {where}: check the token's or "
                                     "AppRole's policies") from None
    except hvac.exceptions.InvalidPath:
        raise BackendError("not_found", f"Vault has no secret at {where}") from None
    except hvac.exceptions.InvalidRequest as e:
        if any("check-and-set" in str(err) for err in (e.errors or [])):
            raise BackendError("conflict", f"{where} changed in Vault while cfgctl was writing it; "
                                           "nothing was overwritten") from None
        raise BackendError("invalid", f"Vault refused {action} on {where} (400)") from None
    except (hvac.exceptions.VaultDown, hvac.exceptions.BadGateway):
        # Sealed, in maintenance or behind a failing proxy: try again later, like a network error.
        raise BackendError("unreachable", f"Vault is sealed or unavailable for {action} on {where}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise BackendError("unreachable", f"Vault is unreachable for {action} on {where} "
                                          f"({type(e).__name__})") from None
    except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as e:
        raise BackendError("invalid", f"{action} on {where} failed ({type(e).__name__})") from None


class HashiCorpVault:
    kind = "hashicorp"

    def __init__(self, config: dict, credentials: dict) -> None:
        self.address: str = config["address"]
        self.namespace: str | None = config["namespace"]
        self.auth: str = config["auth"]
        self.approle_mount: str = config["approle_mount"]
        self._approle = (credentials["role_id"], credentials["secret_id"]) if self.auth == "approle" else None
        # token="" rather than None: hvac would otherwise pick up VAULT_TOKEN or ~/.vault-token.
        self._client = hvac.Client(url=self.address, token=credentials.get("token") or "",
                                   namespace=self.namespace, timeout=TIMEOUT, verify=config["verify"])
        self._logged_in = False
        # The sync worker shares a backend between its threads: one login at a time.
        self._login_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HashiCorpVault(address={self.address!r}, namespace={self.namespace!r}, auth={self.auth!r})"

    def close(self) -> None:
        self._client.adapter.close()

    # --- auth ----------------------------------------------------------------

    def _login(self) -> None:
        assert self._approle is not None
        role_id, secret_id = self._approle
        try:
            with _errors("AppRole login", f"auth/{self.approle_mount}"):
                self._client.auth.approle.login(role_id=role_id, secret_id=secret_id,
                                                mount_point=self.approle_mount)
        except BackendError as e:
            if e.kind == "invalid":  # Vault answers 400 to a wrong role_id or secret_id
                raise BackendError("denied", f"Vault refused the AppRole login at auth/{self.approle_mount}: "
                                             "check role_id and secret_id") from None
            raise
        self._logged_in = True

    def _call(self, action: str, where: str, call: Callable[[], T]) -> T:
        if self._approle and not self._logged_in:
            with self._login_lock:
                if not self._logged_in:
                    self._login()
        try:
            with _errors(action, where):
                return call()
        except BackendError as e:
            if e.kind != "denied" or not self._approle:
                raise
        with self._login_lock:
            self._login()  # the AppRole token may have expired: log in again, once
        with _errors(action, where):
            return call()

    # --- the Backend interface ------------------------------------------------

    def test(self) -> dict:
        looked_up = self._call("token lookup", "auth/token/lookup-self", self._client.auth.token.lookup_self)
        data = looked_up.get("data") or {}
        return {"policies": list(data.get("policies") or []), "auth": self.auth}

    def current_version(self, ref: Ref) -> str:
        where = _where(ref)
        meta = self._call("metadata read", where, lambda: self._client.secrets.kv.v2.read_secret_metadata(
            path=ref.path, mount_point=ref.mount))
        return str(meta["data"]["current_version"])

    def read(self, ref: Ref) -> ExternalValue:
        where = _where(ref)
        got = self._call("read", where, lambda: self._client.secrets.kv.v2.read_secret_version(
            path=ref.path, mount_point=ref.mount, raise_on_deleted_version=True))
        data = got["data"]["data"] or {}
        if ref.field not in data:
            raise BackendError("not_found", f"Vault secret {where} has no field {ref.field!r}")
        value = data[ref.field]
        version = str(got["data"]["metadata"]["version"])
        return ExternalValue(value if isinstance(value, str) else json.dumps(value), version)

    def write(self, ref: Ref, value: str) -> str:
        where = _where(ref)
        if not isinstance(value, str):
            raise BackendError("invalid", "the value to write is text")
        data, version = self._current(ref, where)
        data[ref.field] = value  # the other fields are kept as they are
        written = self._call("write", where, lambda: self._client.secrets.kv.v2.create_or_update_secret(
            path=ref.path, secret=data, cas=version, mount_point=ref.mount))
        return str(written["data"]["version"])

    def rotate(self, ref: Ref, value: str, token: str) -> tuple[str, str]:
        """KV v2 has no rotation of its own: a new version with value in the field (the
        other fields kept), check-and-set against the version read. `token` is unused: a
        retry after a lost answer writes once more (at least once)."""
        self.current_version(ref)  # not_found when the secret is gone: a rotation creates nothing
        return self.write(ref, value), "KV v2 write"

    def _current(self, ref: Ref, where: str) -> tuple[dict, int]:
        """The current fields and version to check-and-set against: ({}, 0) for a new secret;
        ({}, N) when version N, the latest, was deleted (Vault answers 404 with its metadata)."""
        try:
            got = self._call("read", where, lambda: self._client.secrets.kv.v2.read_secret_version(
                path=ref.path, mount_point=ref.mount, raise_on_deleted_version=False))
        except BackendError as e:
            if e.kind != "not_found":
                raise
            return {}, 0
        return dict(got["data"]["data"] or {}), int(got["data"]["metadata"]["version"])


def _where(ref: Ref) -> str:
    if ref.scheme != "vault" or ref.field is None:
        raise BackendError("invalid", f"{ref} is not a Vault KV v2 address with a field")
    return f"{ref.mount}/{ref.path}"
