"""The external-vault clients (sync_service.vaults) against their peers:
- AWS Secrets Manager: the real `moto_server` on 127.0.0.1, real boto3 (tests/support/moto.py);
  denials through moto's own IAM authentication and policies.
- HashiCorp Vault KV v2: real hvac against a SCRIPTED exchange that follows Vault's API
  documentation (tests/support/scripted_vault.py), because no Vault server can be installed
  here. It is not a run against Vault itself.
"""

from __future__ import annotations

import json
import traceback
import uuid

import pytest

from sync_service.vaults import Backend, BackendError, ExternalValue, open_backend, parse_ref
from tests.support.cluster import free_port
from tests.support.moto import ANY_KEYS, REGION, Moto
from tests.support.scripted_vault import ScriptedVault, Token


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def aws(moto: Moto, keys: dict = ANY_KEYS) -> Backend:
    return open_backend("aws_sm", moto.config(), keys)


def hashi(vault: ScriptedVault, credentials: dict, **config) -> Backend:
    return open_backend("hashicorp", {"address": vault.url, **config}, credentials)


def fails(kind: str, call, *args) -> BackendError:
    with pytest.raises(BackendError) as caught:
        call(*args)
    assert caught.value.kind == kind, repr(caught.value)
    return caught.value


# =============================================================================
# AWS Secrets Manager (moto_server + boto3)
# =============================================================================


def test_aws_write_creates_the_secret_and_read_returns_it_with_its_current_version(moto):
    backend, sm = aws(moto), moto.client()
    ref = parse_ref(f"aws-sm://cfgctl/{unique('db')}")
    version = backend.write(ref, "s3cret-1")

    assert sm.get_secret_value(SecretId=ref.path)["SecretString"] == "s3cret-1"  # really in moto
    got = backend.read(ref)
    assert got == ExternalValue("s3cret-1", version)
    assert backend.current_version(ref) == version
    # Writing again is a new version, staged AWSCURRENT.
    second = backend.write(ref, "s3cret-2")
    assert second != version and backend.read(ref) == ExternalValue("s3cret-2", second)
    facts = backend.test()
    assert facts["region"] == REGION and facts["account"] == "123456789012" and facts["arn"].startswith("arn:aws:")


def test_aws_field_write_keeps_the_other_fields_and_creates_an_object_when_absent(moto):
    backend, sm = aws(moto), moto.client()
    name = unique("rds")
    sm.create_secret(Name=name, SecretString=json.dumps({"username": "app", "password": "old", "port": 5432}))
    ref = parse_ref(f"aws-sm://{name}#password")

    version = backend.write(ref, "new-pass")
    assert json.loads(sm.get_secret_value(SecretId=name)["SecretString"]) == {
        "username": "app", "password": "new-pass", "port": 5432}
    assert backend.read(ref) == ExternalValue("new-pass", version)
    # A field that is not a string reads as its JSON text.
    assert backend.read(parse_ref(f"aws-sm://{name}#port")).value == "5432"

    fresh = parse_ref(f"aws-sm://{unique('new')}#api_key")
    backend.write(fresh, "k-1")
    assert json.loads(sm.get_secret_value(SecretId=fresh.path)["SecretString"]) == {"api_key": "k-1"}


def test_aws_external_rotation_changes_the_current_version(moto):
    backend = aws(moto)
    ref = parse_ref(f"aws-sm://{unique('rotated')}#token")
    mine = backend.write(ref, "t-1")
    assert backend.current_version(ref) == mine

    # Someone else's client rotates the secret (as a rotation Lambda would).
    rotated = moto.client().put_secret_value(SecretId=ref.path, SecretString=json.dumps({"token": "t-2"}))
    assert rotated["VersionId"] != mine
    assert backend.current_version(ref) == rotated["VersionId"]
    assert backend.read(ref) == ExternalValue("t-2", rotated["VersionId"])


def test_aws_current_version_needs_only_describe_never_the_value(moto):
    """Keys allowed DescribeSecret but not GetSecretValue see versions, and are refused values."""
    ref = parse_ref(f"aws-sm://{unique('meta')}")
    version = aws(moto).write(ref, "v")
    describe_only = moto.iam_user(["secretsmanager:DescribeSecret"])
    backend = aws(moto, describe_only)
    with moto.iam_auth():
        assert backend.current_version(ref) == version
        fails("denied", backend.read, ref)


def test_aws_not_found(moto):
    backend = aws(moto)
    missing = parse_ref(f"aws-sm://{unique('missing')}#password")
    assert "has no secret" in str(fails("not_found", backend.read, missing))
    fails("not_found", backend.current_version, missing)

    whole = parse_ref(f"aws-sm://{unique('plain')}")
    backend.write(whole, json.dumps({"user": "app"}))
    err = fails("not_found", backend.read, parse_ref(f"aws-sm://{whole.path}#password"))
    assert "no field 'password'" in str(err)
    # A secret created without a value has no AWSCURRENT version.
    empty = unique("empty")
    moto.client().create_secret(Name=empty)
    assert "no current" in str(fails("not_found", backend.current_version, parse_ref(f"aws-sm://{empty}")))


def test_aws_denied_by_iam(moto):
    ref = parse_ref(f"aws-sm://{unique('guarded')}#password")
    aws(moto).write(ref, "p")
    nobody = aws(moto, moto.iam_user(None))  # a real IAM user without any policy
    unknown = aws(moto, {"access_key_id": "AKIAUNKNOWNKEY000000", "secret_access_key": "x" * 40})
    allowed = aws(moto, moto.iam_user(["secretsmanager:*"]))
    with moto.iam_auth():
        for call in (nobody.read, nobody.current_version):
            fails("denied", call, ref)
        fails("denied", nobody.write, ref, "q")
        fails("denied", unknown.test)  # STS: the key is unknown
        fails("denied", unknown.read, ref)
        assert nobody.test()["arn"].startswith("arn:aws:iam::123456789012:user/cfgctl-")  # no permission needed
        assert allowed.read(ref).value == "p"
    assert aws(moto).read(ref).value == "p"  # the denied write changed nothing


def test_aws_unreachable(moto):
    backend = open_backend("aws_sm", {"region": REGION, "endpoint_url": f"http://127.0.0.1:{free_port()}"}, ANY_KEYS)
    ref = parse_ref("aws-sm://anything#f")
    for call in (backend.read, backend.current_version):
        assert "unreachable" in str(fails("unreachable", call, ref))
    fails("unreachable", backend.write, ref, "v")
    fails("unreachable", backend.test)


def test_aws_invalid(moto):
    backend, sm = aws(moto), moto.client()
    name = unique("text")
    sm.create_secret(Name=name, SecretString="not json at all")
    field_ref = parse_ref(f"aws-sm://{name}#password")
    assert "not a JSON object" in str(fails("invalid", backend.read, field_ref))
    fails("invalid", backend.write, field_ref, "p")  # refused rather than overwritten
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "not json at all"

    binary = unique("bin")
    sm.create_secret(Name=binary, SecretBinary=b"\x00\x01")
    assert "binary" in str(fails("invalid", backend.read, parse_ref(f"aws-sm://{binary}")))
    # An address of the other scheme is refused before any call.
    fails("invalid", backend.read, parse_ref("vault://secret/app#f"))


# =============================================================================
# HashiCorp Vault KV v2 (hvac against the scripted exchange)
# =============================================================================


def test_vault_token_auth_reads_writes_and_reports_policies(scripted_vault):
    vault = scripted_vault
    backend = hashi(vault, {"token": vault.add_token(policies=("cfgctl-sync",))})
    assert backend.test() == {"policies": ["default", "cfgctl-sync"], "auth": "token"}

    ref = parse_ref("vault://secret/billing/db#password")
    assert backend.write(ref, "p-1") == "1"
    assert backend.read(ref) == ExternalValue("p-1", "1")
    assert backend.current_version(ref) == "1"

    # hvac's real requests: the token in X-Vault-Token, X-Vault-Request set, cas = the version read.
    writes = vault.seen("POST", "/v1/secret/data/billing/db")
    assert [w.body for w in writes] == [{"options": {"cas": 0}, "data": {"password": "p-1"}}]
    assert all(r.token_sent and r.vault_request == "true" and r.namespace is None for r in vault.seen())
    assert vault.seen("GET", "/v1/auth/token/lookup-self")


def test_vault_field_write_keeps_the_other_fields_with_check_and_set(scripted_vault):
    vault = scripted_vault
    backend = hashi(vault, {"token": vault.add_token()})
    vault.put("secret", "app/db", {"username": "app", "password": "old", "port": 5432})
    ref = parse_ref("vault://secret/app/db#password")

    assert backend.write(ref, "new") == "2"
    assert vault.secrets[("secret", "app/db")][-1].data == {"username": "app", "password": "new", "port": 5432}
    assert vault.seen("POST", "/v1/secret/data/app/db")[-1].body["options"] == {"cas": 1}
    assert backend.read(parse_ref("vault://secret/app/db#port")) == ExternalValue("5432", "2")


def test_vault_external_rotation_changes_current_version_read_from_metadata_only(scripted_vault):
    vault = scripted_vault
    backend = hashi(vault, {"token": vault.add_token()})
    ref = parse_ref("vault://secret/app/api#key")
    backend.write(ref, "k-1")
    vault.put("secret", "app/api", {"key": "k-2"})  # rotated by someone else

    before = len(vault.seen())
    assert backend.current_version(ref) == "2"
    assert [(r.method, r.path) for r in vault.seen()[before:]] == [("GET", "/v1/secret/metadata/app/api")]
    assert backend.read(ref) == ExternalValue("k-2", "2")
    assert vault.seen("GET", "/v1/secret/data/app/api")[-1].query == {}  # the latest version


def test_vault_concurrent_external_write_is_a_conflict_and_overwrites_nothing(scripted_vault):
    vault = scripted_vault
    backend = hashi(vault, {"token": vault.add_token()})
    vault.put("secret", "app/db", {"password": "old", "user": "app"})
    ref = parse_ref("vault://secret/app/db#password")

    vault.before_next_write.append(lambda: vault.put("secret", "app/db", {"password": "theirs", "user": "app"}))
    err = fails("conflict", backend.write, ref, "mine")
    assert "changed in Vault" in str(err)
    assert vault.secrets[("secret", "app/db")][-1].data["password"] == "theirs"
    assert len(vault.secrets[("secret", "app/db")]) == 2
    # The next write reads version 2 and succeeds.
    assert backend.write(ref, "mine") == "3"


def test_vault_approle_logs_in_and_logs_in_again_when_its_token_expired(scripted_vault):
    vault = scripted_vault
    creds = vault.add_approle(policies=("cfgctl-sync",))
    backend = hashi(vault, creds, auth="approle")
    assert vault.logins == 0  # opening sends nothing

    ref = parse_ref("vault://secret/app/db#password")
    backend.write(ref, "p-1")
    assert vault.logins == 1
    login = vault.seen("POST", "/v1/auth/approle/login")[0]
    assert login.body == creds and not login.token_sent
    assert backend.test() == {"policies": ["default", "cfgctl-sync"], "auth": "approle"}

    vault.expire()  # the AppRole token's TTL ran out
    assert backend.read(ref) == ExternalValue("p-1", "1")
    assert vault.logins == 2
    assert [r.path for r in vault.seen()[-3:]] == ["/v1/secret/data/app/db", "/v1/auth/approle/login",
                                                   "/v1/secret/data/app/db"]

    # A login at another mount uses that mount.
    other = ScriptedVault(approle_mount="ci").start()
    try:
        assert hashi(other, other.add_approle(), auth="approle", approle_mount="ci").test()["auth"] == "approle"
        assert other.seen("POST", "/v1/auth/ci/login")
    finally:
        other.stop()


def test_vault_approle_with_wrong_credentials_or_outside_its_policy_is_denied(scripted_vault):
    vault = scripted_vault
    creds = vault.add_approle(paths=("secret/app/",))  # a KV path: data and metadata
    wrong = hashi(vault, {**creds, "secret_id": str(uuid.uuid4())}, auth="approle")
    assert "AppRole login" in str(fails("denied", wrong.read, parse_ref("vault://secret/app/db#p")))

    backend = hashi(vault, creds, auth="approle")
    vault.put("secret", "other/db", {"p": "x"})
    fails("denied", backend.read, parse_ref("vault://secret/other/db#p"))
    assert vault.logins == 2  # the 403 got one new login, then the second 403 is final


def test_vault_denied(scripted_vault):
    vault = scripted_vault
    vault.put("secret", "app/db", {"password": "p"})
    ref = parse_ref("vault://secret/app/db#password")

    narrow = hashi(vault, {"token": vault.add_token(paths=("secret/data/other/",))})
    for call in (narrow.read, narrow.current_version):
        assert "denied" in str(fails("denied", call, ref))
    fails("denied", narrow.write, ref, "x")

    token = vault.add_token()
    expired = hashi(vault, {"token": token})
    vault.expire(token)
    fails("denied", expired.read, ref)
    fails("denied", expired.test)
    fails("denied", hashi(vault, {"token": "hvs.not-a-token"}).test)
    assert vault.secrets[("secret", "app/db")][-1].data == {"password": "p"}  # nothing written


def test_vault_namespace_is_sent_and_a_token_of_another_namespace_is_denied(scripted_vault):
    vault = scripted_vault
    token = vault.add_token(namespace="team-a")
    backend = hashi(vault, {"token": token}, namespace="team-a")
    ref = parse_ref("vault://secret/app/db#password")
    backend.write(ref, "p")
    assert {r.namespace for r in vault.seen()} == {"team-a"}
    fails("denied", hashi(vault, {"token": token}).read, ref)  # no namespace header


def test_vault_not_found(scripted_vault):
    vault = scripted_vault
    backend = hashi(vault, {"token": vault.add_token(paths=("",))})  # every path, like a root token
    missing = parse_ref("vault://secret/app/missing#password")
    fails("not_found", backend.read, missing)
    fails("not_found", backend.current_version, missing)
    fails("not_found", backend.read, parse_ref("vault://nomount/app/db#password"))

    vault.put("secret", "app/db", {"user": "app"})
    assert "no field 'password'" in str(fails("not_found", backend.read, parse_ref("vault://secret/app/db#password")))

    # A deleted latest version reads as not found; a write checks-and-sets against it.
    vault.delete_latest("secret", "app/db")
    fails("not_found", backend.read, parse_ref("vault://secret/app/db#user"))
    assert backend.current_version(parse_ref("vault://secret/app/db#user")) == "1"
    assert backend.write(parse_ref("vault://secret/app/db#password"), "p") == "2"
    assert vault.seen("POST", "/v1/secret/data/app/db")[-1].body == {"options": {"cas": 1}, "data": {"password": "p"}}


def test_vault_unreachable():
    backend = open_backend("hashicorp", {"address": f"http://127.0.0.1:{free_port()}"}, {"token": "t"})
    ref = parse_ref("vault://secret/app#f")
    for call in (backend.read, backend.current_version):
        assert "unreachable" in str(fails("unreachable", call, ref))
    fails("unreachable", backend.write, ref, "v")
    fails("unreachable", backend.test)
    approle = open_backend("hashicorp", {"address": f"http://127.0.0.1:{free_port()}", "auth": "approle"},
                           {"role_id": "r", "secret_id": "s"})
    fails("unreachable", approle.read, ref)


def test_vault_invalid_addresses_are_refused_before_any_call(scripted_vault):
    vault = scripted_vault
    backend = hashi(vault, {"token": vault.add_token()})
    fails("invalid", backend.read, parse_ref("aws-sm://app#p"))
    assert vault.seen() == []


# =============================================================================
# Nothing secret in errors, reprs or tracebacks
# =============================================================================


def test_no_error_or_repr_contains_a_credential_or_a_secret_value(moto, scripted_vault):
    planted = {
        "aws_key": "AKIAPLANTEDKEY7QX9Z1",
        "aws_secret": "planted-aws-secret-Zq81",
        "aws_session": "planted-aws-session-Lm42",
        "vault_token": "hvs.planted-vault-token-Wx93",
        "role_id": "planted-role-id-Hg07",
        "secret_id": "planted-secret-id-Tf55",
        "value": "planted-secret-value-Pk63",
    }
    vault = scripted_vault
    vault.tokens[planted["vault_token"]] = Token(["default"], ("secret/data/app/",))
    vault.approles[(planted["role_id"], planted["secret_id"])] = Token(["default"], ("secret/data/app/",))
    aws_keys = {"access_key_id": planted["aws_key"], "secret_access_key": planted["aws_secret"],
                "session_token": planted["aws_session"]}
    s3cret = planted["value"]

    sm = moto.client()
    text_name = unique("leak-text")
    sm.create_secret(Name=text_name, SecretString=s3cret)  # not JSON: a field read is invalid
    vault.put("secret", "app/db", {"password": s3cret})

    aws_ok = aws(moto, aws_keys)
    aws_down = open_backend("aws_sm", {"region": REGION, "endpoint_url": f"http://127.0.0.1:{free_port()}"}, aws_keys)
    token_ok = hashi(vault, {"token": planted["vault_token"]})
    approle_ok = hashi(vault, {"role_id": planted["role_id"], "secret_id": planted["secret_id"]}, auth="approle")
    approle_wrong = hashi(vault, {"role_id": planted["role_id"], "secret_id": "planted-wrong-Qa11"}, auth="approle")
    vault_down = open_backend("hashicorp", {"address": f"http://127.0.0.1:{free_port()}"},
                              {"token": planted["vault_token"]})

    errors: list[BackendError] = []

    def collect(kind, call, *args):
        errors.append(fails(kind, call, *args))

    collect("not_found", aws_ok.read, parse_ref(f"aws-sm://{unique('none')}"))
    collect("invalid", aws_ok.read, parse_ref(f"aws-sm://{text_name}#password"))
    collect("invalid", aws_ok.write, parse_ref(f"aws-sm://{text_name}#password"), s3cret)
    collect("unreachable", aws_down.write, parse_ref("aws-sm://x"), s3cret)
    with moto.iam_auth():
        collect("denied", aws_ok.write, parse_ref("aws-sm://x"), s3cret)
        collect("denied", aws_ok.test)
    for backend in (token_ok, approle_ok):
        collect("not_found", backend.read, parse_ref("vault://secret/app/db#other"))
        collect("denied", backend.write, parse_ref("vault://secret/outside#password"), s3cret)
        vault.before_next_write.append(lambda: vault.put("secret", "app/db", {"password": s3cret}))
        collect("conflict", backend.write, parse_ref("vault://secret/app/db#password"), s3cret)
    collect("denied", approle_wrong.read, parse_ref("vault://secret/app/db#password"))
    collect("unreachable", vault_down.write, parse_ref("vault://secret/app/db#password"), s3cret)
    collect("invalid", open_backend, "hashicorp", {"address": vault.url, "token": planted["vault_token"]}, {})

    assert {e.kind for e in errors} == {"denied", "not_found", "unreachable", "invalid", "conflict"}
    texts = [str(e) + repr(e) + "".join(traceback.format_exception(e)) for e in errors]
    texts += [repr(b) for b in (aws_ok, aws_down, token_ok, approle_ok, approle_wrong, vault_down)]
    texts += [repr(token_ok.read(parse_ref("vault://secret/app/db#password"))),
              repr(aws_ok.read(parse_ref(f"aws-sm://{text_name}")))]
    for what, secret in planted.items():
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"{what} leaked into: {leaks[0][:300]}"
