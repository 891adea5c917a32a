"""External vaults as optional per-org backends (issue 10, item 4): AWS Secrets Manager
through boto3 and HashiCorp Vault KV v2 through hvac, behind one small interface that the
vault-sync worker codes against.

A binding addresses one external secret:

    aws-sm://<name>[#field]         the secret's whole string, or one field of its JSON object
    vault://<mount>/<path>#<field>  one field of a KV v2 secret (the mount is the first segment)

A binding names one secret: a push binding per environment names one per environment.
The database checks the same forms (cfg_private.check_secret_ref). Errors never carry a secret value or a credential: a
`BackendError` says what failed (`kind`) and where, nothing read or sent.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

__all__ = [
    "BACKEND_KINDS",
    "ERROR_KINDS",
    "Backend",
    "BackendError",
    "ExternalValue",
    "Ref",
    "open_backend",
    "parse_ref",
    "random_value",
    "validate_backend_config",
]

BACKEND_KINDS = ("aws_sm", "hashicorp")
# "conflict" only for a Vault check-and-set that lost against a concurrent external write.
ERROR_KINDS = ("denied", "not_found", "unreachable", "invalid", "conflict")

MAX_REF_LENGTH = 512
# AWS secret names: ASCII letters, digits and /_+=.@- (AWS's rule); an ARN adds ':'.
_AWS_NAME = re.compile(r"[A-Za-z0-9/_+=.@:-]+")
_VAULT_SEGMENT = re.compile(r"[A-Za-z0-9_+=.@-]+")
_FIELD = re.compile(r"[A-Za-z0-9_+=.@:/-]+")
_FORMS = "aws-sm://<name>[#field] or vault://<mount>/<path>#<field>"


# =============================================================================
# References
# =============================================================================


@dataclass(frozen=True)
class Ref:
    """A parsed binding address; str(ref) gives back its canonical text."""

    scheme: str  # "aws-sm" | "vault"
    path: str  # aws-sm: the secret name (may contain '/'); vault: the path under the mount
    mount: str | None  # vault only: the KV v2 mount
    field: str | None  # the JSON field; None = the whole secret string (aws-sm only)

    def __str__(self) -> str:
        tail = f"#{self.field}" if self.field is not None else ""
        if self.scheme == "vault":
            return f"vault://{self.mount}/{self.path}{tail}"
        return f"aws-sm://{self.path}{tail}"


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise ValueError(f"a secret binding is text of the form {_FORMS}")
    if not text:
        raise ValueError(f"the secret binding is empty; expected {_FORMS}")
    if len(text) > MAX_REF_LENGTH:
        raise ValueError(f"the secret binding is {len(text)} characters long; at most {MAX_REF_LENGTH} are allowed")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError("the secret binding contains whitespace or control characters; remove them")
    return text


def _check_segments(path: str, what: str, *, allow_empty: bool) -> None:
    for segment in path.split("/"):
        if segment in ("..", "."):
            raise ValueError(f"the {what} must not contain '{segment}' segments")
        if not segment and not allow_empty:
            raise ValueError(f"the {what} has an empty segment ('//' or a leading or trailing '/')")


def _parse_field(fragment: str | None, *, required: bool, example: str) -> str | None:
    if fragment is None:
        if required:
            raise ValueError(f"a vault:// binding names the field to use after '#', e.g. {example}")
        return None
    if not fragment:
        raise ValueError("the field after '#' is empty; name a field, or leave out the '#'")
    if not _FIELD.fullmatch(fragment):
        raise ValueError("the field after '#' may contain only letters, digits and _+=.@:/-")
    return fragment


def parse_ref(text: str) -> Ref:
    """Parse a binding address; ValueError (a message a person can act on) for anything else."""
    text = _check_text(text)
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(f"{text!r} is not a secret binding; expected {_FORMS}")
    if scheme not in ("aws-sm", "vault"):
        raise ValueError(f"unknown secret binding scheme {scheme!r}; expected {_FORMS}")
    location, hash_sign, fragment = rest.partition("#")
    fragment = fragment if hash_sign else None
    if fragment is not None and "#" in fragment:
        raise ValueError("a secret binding has at most one '#'")

    if scheme == "aws-sm":
        if not location:
            raise ValueError("the AWS secret name is empty, e.g. aws-sm://prod/billing/db#password")
        if not _AWS_NAME.fullmatch(location):
            raise ValueError("an AWS secret name may contain only letters, digits and /_+=.@- (or be an ARN)")
        _check_segments(location, "AWS secret name", allow_empty=True)
        field_ = _parse_field(fragment, required=False, example="")
        return Ref("aws-sm", location, None, field_)

    mount, slash, path = location.partition("/")
    if not mount:
        raise ValueError("the Vault mount is empty, e.g. vault://secret/app/db#password")
    if not slash or not path:
        raise ValueError(f"vault://{mount} names a mount but no path under it, e.g. vault://{mount}/app/db#password")
    for part, what in ((mount, "Vault mount"), (path, "Vault path")):
        _check_segments(part, what, allow_empty=False)
        if not all(_VAULT_SEGMENT.fullmatch(s) for s in part.split("/")):
            raise ValueError(f"the {what} may contain only letters, digits, '/' and _+=.@-")
    field_ = _parse_field(fragment, required=True, example=f"vault://{mount}/{path}#password")
    return Ref("vault", path, mount, field_)


# =============================================================================
# Values, errors, the backend interface
# =============================================================================


class BackendError(Exception):
    """A failed call to an external vault. `kind` is one of ERROR_KINDS; the message says what
    and where, never a secret value or a credential."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown backend error kind {kind!r}")
        super().__init__(message)
        self.kind = kind

    def __repr__(self) -> str:
        return f"BackendError({self.kind!r}, {str(self)!r})"


@dataclass(frozen=True)
class ExternalValue:
    value: str = field(repr=False)  # kept out of repr so a logged object shows no secret
    version: str  # AWS: the VersionId staged AWSCURRENT; Vault: str(version number)


class Backend(Protocol):
    kind: str

    def test(self) -> dict:
        """Prove the credentials work; return non-secret facts."""
        ...

    def current_version(self, ref: Ref) -> str:
        """The current version from metadata only (the value is not fetched)."""
        ...

    def read(self, ref: Ref) -> ExternalValue: ...

    def write(self, ref: Ref, value: str) -> str:
        """Write the value (creating the secret when absent); return the new version."""
        ...

    def rotate(self, ref: Ref, value: str, token: str) -> tuple[str, str]:
        """Rotate an existing secret by the vault's own means where it has one, else write
        `value`; `token` names this rotation (a retry with it rotates once). Returns the
        new version and how it was made."""
        ...


def random_value(fmt: str, length: int) -> str:
    """A new secret value in a schedule's format, as cfg_private.random_secret makes one:
    hex and base64url of `length` random bytes, `length` letters and digits, or a uuid."""
    if fmt == "hex":
        return secrets.token_hex(length)
    if fmt == "base64url":
        return secrets.token_urlsafe(length)
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "alphanumeric":
        return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))
    raise ValueError(f"unknown secret format {fmt!r}")


# =============================================================================
# Configuration
# =============================================================================

_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_CONFIG_KEYS = {
    "aws_sm": {"region", "endpoint_url"},
    "hashicorp": {"address", "namespace", "auth", "approle_mount", "verify"},
}
_CREDENTIALS = {
    ("aws_sm", None): (("access_key_id", "secret_access_key"), ("session_token",)),
    ("hashicorp", "token"): (("token",), ()),
    ("hashicorp", "approle"): (("role_id", "secret_id"), ()),
}


def _url(config: dict, key: str, what: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} config needs {key!r}: an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"{what} config {key!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} config {key!r} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        # Credentials belong in the backend's credentials (a Vault secret), never in config.
        raise ValueError(f"{what} config {key!r} must not contain a user name or password")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} config {key!r} must not have a query or fragment")
    return value.rstrip("/")


def validate_backend_config(kind: str, config: dict) -> dict:
    """The normalised (non-secret) config of a backend, or ValueError naming what is wrong."""
    if kind not in BACKEND_KINDS:
        raise ValueError(f"unknown vault backend kind {kind!r}; expected one of {', '.join(BACKEND_KINDS)}")
    if not isinstance(config, dict):
        raise ValueError(f"the {kind} config is a JSON object")
    unknown = sorted(set(config) - _CONFIG_KEYS[kind])
    if unknown:  # names only: a credential pasted into config must not be echoed
        raise ValueError(f"unknown {kind} config field(s): {', '.join(map(str, unknown))}; "
                         f"allowed: {', '.join(sorted(_CONFIG_KEYS[kind]))}")

    if kind == "aws_sm":
        region = config.get("region")
        if not isinstance(region, str) or not _AWS_REGION.fullmatch(region):
            raise ValueError("aws_sm config needs 'region', an AWS region such as 'eu-west-1'")
        endpoint = config.get("endpoint_url")
        return {"region": region, "endpoint_url": None if endpoint is None else _url(config, "endpoint_url", kind)}

    address = _url(config, "address", kind)
    namespace = config.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not _VAULT_SEGMENT.fullmatch(
            namespace.replace("/", "x")) or namespace.startswith("/") or namespace.endswith("/")):
        raise ValueError("hashicorp config 'namespace' is a Vault namespace path such as 'team-a' or 'org/team-a'")
    auth = config.get("auth", "token")
    if auth not in ("token", "approle"):
        raise ValueError("hashicorp config 'auth' is 'token' or 'approle'")
    approle_mount = config.get("approle_mount", "approle")
    if not isinstance(approle_mount, str) or not _VAULT_SEGMENT.fullmatch(approle_mount):
        raise ValueError("hashicorp config 'approle_mount' is the AppRole auth mount, e.g. 'approle'")
    verify = config.get("verify", True)
    if not isinstance(verify, bool):
        raise ValueError("hashicorp config 'verify' is true or false (verify the server's TLS certificate)")
    return {"address": address, "namespace": namespace, "auth": auth, "approle_mount": approle_mount,
            "verify": verify}


def _check_credentials(kind: str, auth: str | None, credentials: dict) -> dict:
    required, optional = _CREDENTIALS[(kind, auth)]
    what = f"{kind} ({auth})" if auth else kind
    if not isinstance(credentials, dict):
        raise BackendError("invalid", f"the {what} credentials are a JSON object")
    for key in required:
        if not isinstance(credentials.get(key), str) or not credentials[key]:
            raise BackendError("invalid", f"the {what} credentials need {key!r} (a non-empty string)")
    for key in optional:
        if credentials.get(key) is not None and (not isinstance(credentials[key], str) or not credentials[key]):
            raise BackendError("invalid", f"the {what} credential {key!r} must be a non-empty string when given")
    unknown = sorted(set(credentials) - set(required) - set(optional))
    if unknown:
        raise BackendError("invalid", f"unknown {what} credential field(s): {', '.join(map(str, unknown))}")
    return {key: credentials.get(key) for key in (*required, *optional)}


def open_backend(kind: str, config: dict, credentials: dict) -> Backend:
    """A client for one configured backend. Opening sends nothing; the first call connects
    (and logs in, for AppRole). Bad config or credentials: BackendError kind "invalid"."""
    try:
        config = validate_backend_config(kind, config)
    except ValueError as e:
        raise BackendError("invalid", str(e)) from None
    if kind == "aws_sm":
        from .aws import AwsSecretsManager

        return AwsSecretsManager(config, _check_credentials(kind, None, credentials))
    from .hashicorp import HashiCorpVault

    return HashiCorpVault(config, _check_credentials(kind, config["auth"], credentials))
