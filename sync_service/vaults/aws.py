"""AWS Secrets Manager through boto3.

A binding without a field is the secret's whole SecretString; with a field, one key of the
JSON object the SecretString holds (the usual shape of RDS and similar secrets). The current
version is the VersionId staged AWSCURRENT.

AWS has no check-and-set: a field write reads the object, sets the field and puts the whole
object back, so an external write that lands between the two is overwritten (unlike Vault,
where the write is conditional and such a race is a "conflict")."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import boto3
import botocore.config
import botocore.exceptions

from . import BackendError, ExternalValue, Ref

_TIMEOUTS = botocore.config.Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2})
_DENIED = {
    "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
    "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredTokenException", "ExpiredToken",
}
_NOT_FOUND = {"ResourceNotFoundException"}


@contextlib.contextmanager
def _errors(action: str, where: str) -> Iterator[None]:
    """boto3's exceptions as BackendError. Only AWS's error code is kept: AWS messages and
    botocore's parameter errors can quote request values. `from None` keeps the original
    out of tracebacks for the same reason."""
    try:
        yield
    except botocore.exceptions.ClientError as e:
        code = e.response.get("Error", {}).get("Code", "Unknown")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # A 401/403 is a denial whatever its body: moto_server answers an IAM denial of a
        # JSON-protocol call with an XML body botocore cannot parse (its code is then "403").
        if code in _DENIED or status in (401, 403):
            raise BackendError("denied", f"AWS denied {action} on {where} ({code}): check the backend's "
                                         "access key and its IAM policy") from None
        if code in _NOT_FOUND:
            raise BackendError("not_found", f"AWS Secrets Manager has no secret {where}") from None
        raise BackendError("invalid", f"AWS refused {action} on {where} ({code})") from None
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as e:
        raise BackendError("unreachable", f"AWS Secrets Manager is unreachable for {action} on {where} "
                                          f"({type(e).__name__})") from None
    except botocore.exceptions.BotoCoreError as e:
        raise BackendError("invalid", f"{action} on {where} failed ({type(e).__name__})") from None


class AwsSecretsManager:
    kind = "aws_sm"

    def __init__(self, config: dict, credentials: dict) -> None:
        self.region: str = config["region"]
        self.endpoint_url: str | None = config["endpoint_url"]
        # A session of its own: nothing from the process's AWS profile or environment
        # credentials leaks in, and nothing is shared between orgs.
        session = boto3.session.Session(
            aws_access_key_id=credentials["access_key_id"],
            aws_secret_access_key=credentials["secret_access_key"],
            aws_session_token=credentials.get("session_token"),
            region_name=self.region,
        )
        self._session = session
        self._sm = session.client("secretsmanager", endpoint_url=self.endpoint_url, config=_TIMEOUTS)

    def __repr__(self) -> str:
        return f"AwsSecretsManager(region={self.region!r}, endpoint_url={self.endpoint_url!r})"

    def close(self) -> None:
        self._sm.close()

    def test(self) -> dict:
        """Whom the keys belong to: STS GetCallerIdentity needs no IAM permission, so it proves
        the keys without asking for one a least-privilege policy may not grant (ListSecrets)."""
        sts = self._session.client("sts", endpoint_url=self.endpoint_url, config=_TIMEOUTS)
        try:
            with _errors("GetCallerIdentity", "the backend's keys"):
                identity = sts.get_caller_identity()
        finally:
            sts.close()
        return {"region": self.region, "account": identity.get("Account"), "arn": identity.get("Arn")}

    def current_version(self, ref: Ref) -> str:
        _check(ref)
        with _errors("DescribeSecret", ref.path):
            described = self._sm.describe_secret(SecretId=ref.path)
        for version_id, stages in (described.get("VersionIdsToStages") or {}).items():
            if "AWSCURRENT" in stages:
                return version_id
        raise BackendError("not_found", f"AWS secret {ref.path} has no current (AWSCURRENT) value")

    def _get(self, ref: Ref) -> tuple[str, str]:
        with _errors("GetSecretValue", ref.path):
            got = self._sm.get_secret_value(SecretId=ref.path, VersionStage="AWSCURRENT")
        if "SecretString" not in got:
            raise BackendError("invalid", f"AWS secret {ref.path} holds binary data; only text secrets are supported")
        return got["SecretString"], got["VersionId"]

    def read(self, ref: Ref) -> ExternalValue:
        _check(ref)
        text, version = self._get(ref)
        if ref.field is None:
            return ExternalValue(text, version)
        obj = _object(text, ref)
        if ref.field not in obj:
            raise BackendError("not_found", f"AWS secret {ref.path} has no field {ref.field!r}")
        value = obj[ref.field]
        return ExternalValue(value if isinstance(value, str) else json.dumps(value), version)

    def _text(self, ref: Ref, value: str, *, missing_ok: bool) -> str:
        """The SecretString that holds value: the value itself, or the secret's JSON object
        with the field set (the other fields kept as they are)."""
        if not isinstance(value, str):
            raise BackendError("invalid", "the value to write is text")
        if ref.field is None:
            return value
        try:
            obj = _object(self._get(ref)[0], ref)
        except BackendError as e:
            if e.kind != "not_found" or not missing_ok:
                raise
            obj = {}
        obj[ref.field] = value
        return json.dumps(obj)

    def write(self, ref: Ref, value: str) -> str:
        _check(ref)
        text = self._text(ref, value, missing_ok=True)
        try:
            with _errors("PutSecretValue", ref.path):
                return self._sm.put_secret_value(SecretId=ref.path, SecretString=text)["VersionId"]
        except BackendError as e:
            if e.kind != "not_found":
                raise
        with _errors("CreateSecret", ref.path):
            return self._sm.create_secret(Name=ref.path, SecretString=text)["VersionId"]

    def rotate(self, ref: Ref, value: str, token: str) -> tuple[str, str]:
        """RotateSecret where the secret has rotation configured (RotationEnabled: its rotation
        Lambda, or rotation managed by the service that owns it): AWS makes, sets and tests
        the new value and stages it AWSCURRENT when the rotation finishes; `value` is not
        used. Without one AWS cannot rotate the secret (RotateSecret needs a rotation
        function), so the new value is put with PutSecretValue, AWS's documented way to store
        a new version. ClientRequestToken is `token`: AWS makes one version per token, so a
        retry after a lost answer does not rotate twice."""
        _check(ref)
        with _errors("DescribeSecret", ref.path):
            rotation = self._sm.describe_secret(SecretId=ref.path).get("RotationEnabled")
        if rotation:
            with _errors("RotateSecret", ref.path):
                return _once(token, lambda: self._sm.rotate_secret(
                    SecretId=ref.path, ClientRequestToken=token, RotateImmediately=True)), "RotateSecret"
        text = self._text(ref, value, missing_ok=False)
        with _errors("PutSecretValue", ref.path):
            return _once(token, lambda: self._sm.put_secret_value(
                SecretId=ref.path, SecretString=text, ClientRequestToken=token)), "PutSecretValue"


def _once(token: str, call) -> str:
    """The version a call with ClientRequestToken=token made. AWS refuses the token a second
    time (ResourceExistsException) once a version has it: that version is this rotation's."""
    try:
        return call()["VersionId"]
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceExistsException":
            return token
        raise


def _check(ref: Ref) -> None:
    if ref.scheme != "aws-sm":
        raise BackendError("invalid", f"{ref} is not an AWS Secrets Manager address")


def _object(text: str, ref: Ref) -> dict:
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        # Refuse rather than overwrite: the secret is not a JSON object of fields.
        raise BackendError("invalid", f"AWS secret {ref.path} is not a JSON object, so it has no field {ref.field!r}")
    return obj
