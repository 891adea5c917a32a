"""`cfgctl vault backend …` and `cfgctl secret bind|unbind|sync|status|conflicts|resolve`,
with the sync worker running (in-process) against a real moto_server."""

from __future__ import annotations

import json
import uuid

from tests.support.cluster import free_port
from tests.support.moto import ANY_KEYS, Moto
from tests.support.vaults import ThreadSync

ADMIN = ("--as", "admin@example.test")
EDITOR = ("--as", "editor@example.test")


def test_backend_bind_sync_status_reveal_unbind_rm(cfgctl, world, db_url, moto: Moto):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    moto.client().create_secret(Name=name, SecretString=json.dumps({"key": "from-aws-42"}))
    with ThreadSync(db_url):
        added = cfgctl("vault", "backend", "add", "org-a", "aws", "--kind", "aws_sm", "--region", "us-east-1",
                       "--endpoint-url", moto.url, "--credentials-file", "-", *ADMIN, "--json",
                       input=json.dumps(ANY_KEYS))
        assert added.code == 0, added.output
        assert json.loads(added.out)["test_result"]["ok"] is True
        listed = cfgctl("vault", "backend", "list", "org-a", *ADMIN)
        assert "aws" in listed.out and ANY_KEYS["secret_access_key"] not in listed.output

        bound = cfgctl("secret", "bind", "org-a/billing", "http.api_key", "--backend", "aws",
                       "--ref", f"aws-sm://{name}#key", *ADMIN, "--json")
        assert bound.code == 0, bound.output
        synced = cfgctl("secret", "sync", "org-a/billing", "http.api_key", *EDITOR, "--json")
        assert synced.code == 0, synced.output
        assert json.loads(synced.out)["status"] == "ok"
        status = cfgctl("secret", "status", "org-a/billing", *EDITOR)
        assert f"aws-sm://{name}#key" in status.out and "from-aws-42" not in status.output

        revealed = cfgctl("secret", "reveal", "org-a/billing", "http.api_key", "--yes", *EDITOR)
        assert revealed.code == 0 and revealed.out.strip() == '"from-aws-42"', revealed.output

        busy = cfgctl("vault", "backend", "rm", "org-a", "aws", *ADMIN)
        assert busy.code == 5 and "binding" in busy.output
        assert cfgctl("secret", "unbind", "org-a/billing", "http.api_key", *ADMIN).code == 0
        assert cfgctl("vault", "backend", "rm", "org-a", "aws", *ADMIN).code == 0
        assert "aws" not in cfgctl("vault", "backend", "list", "org-a", *ADMIN).out


def test_bad_input_and_failures_have_clear_errors_and_exit_codes(cfgctl, world, db_url, tmp_path):
    creds = tmp_path / "creds.json"
    creds.write_text("not json")
    broken = cfgctl("vault", "backend", "add", "org-a", "x", "--kind", "aws_sm", "--region", "r",
                    "--credentials-file", str(creds), "--wait", "0", *ADMIN)
    assert broken.code == 6 and "not JSON" in broken.output
    creds.write_text(json.dumps(ANY_KEYS))
    assert cfgctl("vault", "backend", "add", "org-a", "x", "--kind", "gcp", "--credentials-file", str(creds),
                  "--wait", "0", *ADMIN).code == 6
    assert cfgctl("vault", "backend", "add", "org-a", "x", "--kind", "aws_sm", "--region", "r",
                  "--credentials-file", str(creds), "--wait", "0", *EDITOR).code == 4
    with ThreadSync(db_url):
        down = cfgctl("vault", "backend", "add", "org-a", "down", "--kind", "aws_sm", "--region", "us-east-1",
                      "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--credentials-file", str(creds), *ADMIN)
        assert down.code == 0 and "unreachable" in down.out
        assert cfgctl("vault", "backend", "test", "org-a", "down", *ADMIN).code == 1
        bad_ref = cfgctl("secret", "bind", "org-a/billing", "http.api_key", "--backend", "down",
                         "--ref", "vault://x#y", *ADMIN)
        assert bad_ref.code == 6 and "aws-sm://" in bad_ref.output
        assert cfgctl("secret", "bind", "org-a/billing", "http.api_key", "--backend", "down",
                      "--ref", "aws-sm://app/key", *ADMIN).code == 0
        failed = cfgctl("secret", "sync", "org-a/billing", "http.api_key", *EDITOR)
        assert failed.code == 1 and "unreachable" in failed.out
    assert cfgctl("vault", "backend", "test", "org-a", "nope", *ADMIN).code == 3
    assert cfgctl("secret", "conflicts", "org-a", *ADMIN).code == 0
    assert cfgctl("secret", "resolve", str(uuid.uuid4()), "local", *ADMIN).code == 3
