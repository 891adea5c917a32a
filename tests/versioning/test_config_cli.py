"""cfgctl config / env commands against a real database, as the users of the test world."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from tests.support.versioning import content, head, live, save

EDITOR, ADMIN, VIEWER = "editor@example.test", "admin@example.test", "viewer@example.test"


def test_show_masks_secrets_and_exports_an_editable_document(cfgctl, world):
    out = cfgctl("config", "show", "org-a/billing", "--as", VIEWER)
    assert out.code == 0, out.output
    assert "version 1" in out.output and "8080" in out.output and "********" in out.output
    assert "sk_live_hunter2" not in out.output
    doc = json.loads(cfgctl("config", "show", "org-a/billing", "--as", VIEWER, "--json").output)
    assert doc["version"] == 1
    assert doc["sections"]["http"]["entries"]["api_key"] == {"secret": True, "description": ""}
    as_yaml = yaml.safe_load(cfgctl("config", "show", "org-a/billing", "--as", VIEWER, "--yaml").output)
    assert as_yaml == doc


def test_set_saves_a_version_and_keeps_secrets(cfgctl, conn, world):
    out = cfgctl("config", "set", "org-a/billing", "http.port=9090", "http.host=example.org", "db.tls=true",
              "-m", "tune", "--as", EDITOR)
    assert out.code == 0, out.output
    assert "saved version 2" in out.output
    assert live(conn, world.automation_a) == {
        "http": {"port": 9090, "host": "example.org", "api_key": ("secret", "sk_live_hunter2")},
        "db": {"tls": True},
    }
    out = cfgctl("config", "set", "org-a/billing", "--section", "http", "token=abc", "--secret", "--as", EDITOR)
    assert out.code == 0 and live(conn, world.automation_a)["http"]["token"] == ("secret", "abc")
    out = cfgctl("config", "set", "org-a/billing", "--unset", "db.tls", "--as", EDITOR)
    assert out.code == 0 and live(conn, world.automation_a)["db"] == {}
    assert cfgctl("config", "set", "org-a/billing", "http.port=1", "--as", VIEWER).code == 4
    assert cfgctl("config", "set", "org-a/billing", "port=1", "--as", EDITOR).code == 6
    assert cfgctl("config", "set", "org-a/billing", "http.port=1", "--expected", "1", "--as", EDITOR).code == 5


def test_edit_from_yaml_with_conflict_detection(cfgctl, conn, world, tmp_path):
    doc = yaml.safe_load(cfgctl("config", "show", "org-a/billing", "--yaml", "--as", EDITOR).output)
    doc["sections"]["http"]["entries"]["port"]["value"] = 7000
    doc["sections"]["cache"] = {"entries": {"ttl": {"value": 60}}}
    path = tmp_path / "billing.yaml"
    path.write_text(yaml.safe_dump(doc))
    # Someone else saves first: the edit (based on version 1) is a conflict.
    save(conn, world["admin"], world.automation_a, 1, content({"http": {"port": 1, "api_key": ("secret",)}}))
    out = cfgctl("config", "edit", "org-a/billing", "--file", str(path), "--as", EDITOR)
    assert out.code == 5 and out.detail["current_version"] == 2
    assert head(conn, world.automation_a) == 2
    out = cfgctl("config", "edit", "org-a/billing", "--file", str(path), "--expected", "2", "--as", EDITOR)
    assert out.code == 0, out.output
    assert live(conn, world.automation_a)["cache"] == {"ttl": 60}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cfgctl("config", "edit", "org-a/billing", "--file", str(bad), "--as", EDITOR).code == 6
    bad.write_text('{"version": 3, "sections": {"x": {"entries": {"k": 1}}}}')
    out = cfgctl("config", "edit", "org-a/billing", "--file", str(bad), "--as", EDITOR)
    assert out.code == 6 and out.detail["errors"][0]["path"] == "sections.x.entries.k"
    assert head(conn, world.automation_a) == 3


def test_history_diff_and_rollback(cfgctl, conn, world):
    cfgctl("config", "set", "org-a/billing", "http.port=9090", "--as", EDITOR)
    cfgctl("config", "set", "org-a/billing", "http.api_key=rotated", "--secret", "--as", EDITOR)
    rows = json.loads(cfgctl("config", "history", "org-a/billing", "--json", "--as", VIEWER).output)
    assert [r["version"] for r in rows] == [3, 2, 1]
    assert rows[0]["author_email"] == EDITOR
    assert rows[1]["changes"] == [{"section": "http", "key": "port", "change": "changed", "secret": False}]
    table = cfgctl("config", "history", "org-a/billing", "--as", VIEWER).output
    assert "http.api_key" in table and "http.port" in table and "rotated" not in table
    unified = cfgctl("config", "diff", "org-a/billing", "1", "2", "--as", VIEWER).output
    assert "- port: 8080" in unified and "+ port: 9090" in unified and "api_key" not in unified
    unified = cfgctl("config", "diff", "org-a/billing", "2", "3", "--as", VIEWER).output
    assert "~ api_key: ******** (secret value)" in unified and "rotated" not in unified
    split = cfgctl("config", "diff", "org-a/billing", "1", "3", "--split", "--as", VIEWER).output
    assert "billing v1" in split and "billing v3" in split and "rotated" not in split
    env_diff = json.loads(cfgctl("config", "diff", "org-a/billing", "dev", "1", "--json", "--as", VIEWER).output)
    assert env_diff["from"]["version"] == 3 and env_diff["to"]["version"] == 1
    out = cfgctl("config", "rollback", "org-a/billing", "2", "--as", EDITOR, input="n\n")
    assert out.code == 1 and head(conn, world.automation_a) == 3  # answered no
    out = cfgctl("config", "rollback", "org-a/billing", "2", "--as", EDITOR, input="y\n")
    assert out.code == 0 and "version 4 has the content of version 2" in out.output
    assert live(conn, world.automation_a)["http"] == {"port": 9090, "api_key": ("secret", "sk_live_hunter2")}
    assert cfgctl("config", "rollback", "org-a/billing", "1", "--yes", "--as", VIEWER).code == 4


def test_env_promote_asks_then_requests_and_approval_flow(cfgctl, conn, world):
    listed = json.loads(cfgctl("env", "list", "org-a", "--json", "--as", VIEWER).output)
    assert [e["slug"] for e in listed] == ["dev", "staging", "prod"]
    out = cfgctl("env", "promote", "org-a/billing", "--from", "dev", "--to", "staging", "--as", EDITOR, input="n\n")
    assert "+ port: 8080" in out.output and out.code == 1
    out = cfgctl("env", "promote", "org-a/billing", "--from", "dev", "--to", "staging", "--as", EDITOR, input="y\n")
    assert out.code == 0 and "staging now runs version 1" in out.output
    out = cfgctl("env", "promote", "org-a/billing", "--from", "staging", "--to", "prod", "--yes", "--json",
              "--as", EDITOR)
    request_id = json.loads(out.output)["request_id"]
    pending = json.loads(cfgctl("env", "requests", "org-a", "--json", "--as", VIEWER).output)
    assert [r["id"] for r in pending] == [request_id] and pending[0]["to_env"] == "prod"
    assert cfgctl("env", "approve", request_id, "--as", EDITOR).code == 4
    out = cfgctl("env", "approve", request_id, "--comment", "ship it", "--as", ADMIN)
    assert out.code == 0 and "now applied" in out.output
    status = json.loads(cfgctl("env", "status", "org-a", "--json", "--as", VIEWER).output)
    assert [e["version"] for e in status[0]["environments"]] == [1, 1, 1] and status[0]["drift"] is False
    table = cfgctl("env", "status", "org-a", "--as", VIEWER).output
    assert "billing" in table and "in sync" in table
    assert cfgctl("env", "promote", "org-a/billing", "--from", "dev", "--to", "prod", "--yes", "--as", EDITOR).code == 4


def test_env_reject_and_exit_codes_from_the_real_binary(cfgctl, conn, world, db_url):
    cfgctl("env", "promote", "org-a/billing", "--from", "dev", "--to", "staging", "--yes", "--as", EDITOR)
    out = cfgctl("env", "promote", "org-a/billing", "--from", "staging", "--to", "prod", "--yes", "--json",
              "--as", EDITOR)
    request_id = json.loads(out.output)["request_id"]
    binary = os.path.join(os.path.dirname(sys.executable), "cfgctl")
    env = {**os.environ, "CFGCTL_DB_URL": db_url}
    proc = subprocess.run([binary, "env", "reject", request_id, "--reason", " ", "--as", ADMIN],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 6 and "needs a reason" in proc.stderr
    proc = subprocess.run([binary, "env", "reject", request_id, "--reason", "freeze", "--as", ADMIN],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "now rejected" in proc.stdout
    proc = subprocess.run([binary, "env", "approve", request_id, "--as", ADMIN], env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 5 and "rejected" in proc.stderr
