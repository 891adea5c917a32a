"""A real AWS Secrets Manager peer: `moto_server` (from PyPI's moto[server]) on 127.0.0.1,
started once per test run and driven by real boto3.

By default moto accepts any keys, as its server mode does. `Moto.iam_auth()` switches on
moto's IAM authentication and authorisation for the duration of a block (moto's own
`/moto-api/reset-auth`, what its `set_initial_no_auth_action_count` decorator calls in
server mode): then only the keys of IAM users created with `Moto.iam_user` work, as far as
their policies allow. Tests run one at a time, so the switch does not leak into others."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.support.cluster import free_port

REGION = "us-east-1"
ANY_KEYS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "moto-accepts-any-key"}


def moto_server_bin() -> Path:
    """The moto_server script the venv's moto[server] installed, next to this Python."""
    path = Path(sys.executable).parent / "moto_server"
    if not path.exists():
        pytest.fail(f"{path} is missing: install the dev extras (pip install -e '.[dev]', which has moto[server])")
    return path


@dataclass
class Moto:
    url: str
    process: subprocess.Popen

    def config(self) -> dict:
        """An aws_sm backend config pointing at this server."""
        return {"region": REGION, "endpoint_url": self.url}

    def client(self, service: str = "secretsmanager", keys: dict = ANY_KEYS):
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=keys["access_key_id"],
                            aws_secret_access_key=keys["secret_access_key"])

    def iam_user(self, actions: list[str] | None) -> dict:
        """A new IAM user allowed `actions` on every resource (None: no policy at all);
        its access key as backend credentials. Call it before `iam_auth()`."""
        name = f"cfgctl-{uuid.uuid4().hex[:8]}"
        iam = self.client("iam")
        iam.create_user(UserName=name)
        if actions:
            iam.put_user_policy(UserName=name, PolicyName="cfgctl", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
            }))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}

    def _reset_auth(self, count: str) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()

    @contextlib.contextmanager
    def iam_auth(self) -> Iterator[None]:
        """Every request in the block is authenticated and authorised by moto's IAM."""
        self._reset_auth("0")
        try:
            yield
        finally:
            self._reset_auth("inf")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"MOTO_PORT": str(port)}
    process = subprocess.Popen([str(moto_server_bin()), "-H", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if process.poll() is not None:
                pytest.fail(f"moto_server exited with status {process.returncode} before answering")
            if time.monotonic() > deadline:
                pytest.fail("moto_server did not answer within 30 s")
            time.sleep(0.1)
        yield Moto(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def moto_url(moto: Moto) -> str:
    """The URL of the running moto_server (any keys work outside `moto.iam_auth()`)."""
    return moto.url
