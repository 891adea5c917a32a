"""Binding addresses (aws-sm://…, vault://…) and backend configs: what parses, what is refused
with a message a person can act on, and the canonical round trip. No peer needed."""

from __future__ import annotations

import pytest

from sync_service.vaults import BackendError, Ref, open_backend, parse_ref, validate_backend_config

GOOD = [
    ("aws-sm://prod/billing/db", Ref("aws-sm", "prod/billing/db", None, None)),
    ("aws-sm://prod/billing/db#password", Ref("aws-sm", "prod/billing/db", None, "password")),
    ("aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf#pw",
     Ref("aws-sm", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf", None, "pw")),
    ("vault://secret/app/db#password", Ref("vault", "app/db", "secret", "password")),
]


@pytest.mark.parametrize(("text", "ref"), GOOD, ids=[t for t, _ in GOOD])
def test_parse_ref_reads_both_schemes_and_round_trips(text, ref):
    assert parse_ref(text) == ref
    assert str(ref) == text
    assert parse_ref(str(parse_ref(text))) == ref


BAD = [
    ("", "empty"),
    ("prod/db#password", "expected aws-sm://"),
    ("s3://bucket/key", "unknown secret binding scheme 's3'"),
    ("AWS-SM://prod/db", "unknown secret binding scheme"),
    ("aws-sm://", "AWS secret name is empty"),
    ("aws-sm://#password", "AWS secret name is empty"),
    ("aws-sm://prod/db#", "field after '#' is empty"),
    ("aws-sm://prod/db#a#b", "at most one '#'"),
    ("aws-sm://prod db", "whitespace or control"),
    (" aws-sm://prod/db", "whitespace or control"),
    ("aws-sm://prod/db\n", "whitespace or control"),
    ("aws-sm://prod/\x00db", "whitespace or control"),
    ("aws-sm://prod/../other", "'..' segments"),
    ("aws-sm://prod/db!", "only letters, digits"),
    ("aws-sm://prod-{env}", "only letters, digits"),
    ("aws-sm://" + "a" * 510, "at most 512"),
    ("vault://secret", "names a mount but no path"),
    ("vault://secret/", "names a mount but no path"),
    ("vault:///app/db#pw", "Vault mount is empty"),
    ("vault://secret/app/db", "names the field to use after '#'"),
    ("vault://secret/app/db#", "field after '#' is empty"),
    ("vault://secret/app//db#pw", "empty segment"),
    ("vault://secret/app/db/#pw", "empty segment"),
    ("vault://secret/../sys/policy#pw", "'..' segments"),
    ("vault://secret/app/./db#pw", "'.' segments"),
    ("vault://secret/app/d%b#pw", "only letters, digits"),
    ("vault://secret/app/db#pass word", "whitespace or control"),
    ("vault://secret/app/db#{env}", "field after '#' may contain only"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[repr(t)[:40] for t, _ in BAD])
def test_parse_ref_refuses_bad_addresses_with_a_clear_message(text, message):
    with pytest.raises(ValueError) as caught:
        parse_ref(text)
    assert message in str(caught.value)


def test_parse_ref_refuses_what_is_not_text():
    with pytest.raises(ValueError, match="is text of the form"):
        parse_ref(None)  # type: ignore[arg-type]


# =============================================================================
# Backend configs and credentials
# =============================================================================


def test_validate_backend_config_normalises_both_kinds():
    assert validate_backend_config("aws_sm", {"region": "eu-west-1"}) == {"region": "eu-west-1", "endpoint_url": None}
    assert validate_backend_config("aws_sm", {"region": "us-gov-west-1", "endpoint_url": "http://127.0.0.1:5000/"}) \
        == {"region": "us-gov-west-1", "endpoint_url": "http://127.0.0.1:5000"}
    assert validate_backend_config("hashicorp", {"address": "https://vault.example.com:8200"}) == {
        "address": "https://vault.example.com:8200", "namespace": None, "auth": "token",
        "approle_mount": "approle", "verify": True}
    assert validate_backend_config("hashicorp", {
        "address": "https://vault.example.com", "namespace": "org/team-a", "auth": "approle",
        "approle_mount": "ci-approle", "verify": False})["namespace"] == "org/team-a"


BAD_CONFIGS = [
    ("gcp_sm", {}, "unknown vault backend kind 'gcp_sm'"),
    ("aws_sm", [], "is a JSON object"),
    ("aws_sm", {}, "needs 'region'"),
    ("aws_sm", {"region": "Europe"}, "needs 'region'"),
    ("aws_sm", {"region": "eu-west-1", "endpoint_url": "ftp://x"}, "http:// or https://"),
    ("aws_sm", {"region": "eu-west-1", "endpoint_url": 5}, "http:// or https://"),
    ("aws_sm", {"region": "eu-west-1", "secret_access_key": "planted-Cred-77"}, "unknown aws_sm config field(s): "
                                                                                "secret_access_key"),
    ("hashicorp", {}, "needs 'address'"),
    ("hashicorp", {"address": "vault.example.com"}, "http:// or https://"),
    ("hashicorp", {"address": "https://vault.example.com:99999"}, "not a valid URL"),
    ("hashicorp", {"address": "https://root:planted-Cred-77@vault.example.com"}, "must not contain a user name"),
    ("hashicorp", {"address": "https://v.example.com", "auth": "userpass"}, "'token' or 'approle'"),
    ("hashicorp", {"address": "https://v.example.com", "namespace": "/team"}, "namespace"),
    ("hashicorp", {"address": "https://v.example.com", "namespace": ""}, "namespace"),
    ("hashicorp", {"address": "https://v.example.com", "approle_mount": "a/b"}, "approle_mount"),
    ("hashicorp", {"address": "https://v.example.com", "verify": "yes"}, "true or false"),
    ("hashicorp", {"address": "https://v.example.com", "token": "planted-Cred-77"}, "unknown hashicorp config"),
]


@pytest.mark.parametrize(("kind", "config", "message"), BAD_CONFIGS, ids=[m for _, _, m in BAD_CONFIGS])
def test_bad_configs_are_refused_naming_the_field_never_a_credential(kind, config, message):
    with pytest.raises(ValueError) as caught:
        validate_backend_config(kind, config)
    assert message in str(caught.value)
    assert "planted-Cred-77" not in str(caught.value)
    # open_backend says the same as a BackendError of kind "invalid".
    with pytest.raises(BackendError) as opened:
        open_backend(kind, config, {})
    assert opened.value.kind == "invalid" and message in str(opened.value)
    assert "planted-Cred-77" not in str(opened.value) + repr(opened.value)


BAD_CREDENTIALS = [
    ("aws_sm", {"region": "eu-west-1"}, {}, "need 'access_key_id'"),
    ("aws_sm", {"region": "eu-west-1"}, {"access_key_id": "planted-Cred-77"}, "need 'secret_access_key'"),
    ("aws_sm", {"region": "eu-west-1"}, {"access_key_id": "a", "secret_access_key": 7}, "need 'secret_access_key'"),
    ("aws_sm", {"region": "eu-west-1"}, {"access_key_id": "a", "secret_access_key": "b", "session_token": ""},
     "'session_token' must be a non-empty string"),
    ("aws_sm", {"region": "eu-west-1"}, {"access_key_id": "a", "secret_access_key": "b", "password": "planted-Cred-77"},
     "unknown aws_sm credential field(s): password"),
    ("hashicorp", {"address": "http://127.0.0.1:1"}, {}, "need 'token'"),
    ("hashicorp", {"address": "http://127.0.0.1:1"}, {"token": ""}, "need 'token'"),
    ("hashicorp", {"address": "http://127.0.0.1:1", "auth": "approle"}, {"token": "planted-Cred-77"}, "need 'role_id'"),
    ("hashicorp", {"address": "http://127.0.0.1:1", "auth": "approle"}, {"role_id": "r"}, "need 'secret_id'"),
    ("hashicorp", {"address": "http://127.0.0.1:1"}, "planted-Cred-77", "are a JSON object"),
]


@pytest.mark.parametrize(("kind", "config", "credentials", "message"), BAD_CREDENTIALS,
                         ids=[m for *_, m in BAD_CREDENTIALS])
def test_missing_or_ill_typed_credentials_are_invalid_without_echoing_them(kind, config, credentials, message):
    with pytest.raises(BackendError) as caught:
        open_backend(kind, config, credentials)
    assert caught.value.kind == "invalid" and message in str(caught.value)
    assert "planted-Cred-77" not in str(caught.value) + repr(caught.value)


def test_the_database_accepts_and_refuses_the_same_addresses(conn):
    """cfg_private.check_secret_ref (what bind_secret checks) and parse_ref (what the worker
    parses) agree on every address above, for the backend kind of its scheme."""
    for text, _ in GOOD + BAD:
        kind = "hashicorp" if text.startswith("vault") else "aws_sm"
        conn.execute("savepoint s")
        try:
            conn.execute("select cfg_private.check_secret_ref(%s, %s)", (text, kind))
            accepted = True
        except Exception:  # noqa: BLE001 - PT422 or bad text (a NUL byte) alike: refused
            accepted = False
        conn.execute("rollback to savepoint s")
        assert accepted == (text in dict(GOOD)), text
