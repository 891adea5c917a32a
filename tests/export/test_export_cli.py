"""`cfgctl export` and `cfgctl import`: byte-identical bundles, --where, secret values only
age-encrypted (a wrong passphrase fails cleanly), the per-automation table and --json, and
storage:// bundles through storage3 against the SCRIPTED Supabase Storage of
tests/support/scripted_storage.py (no Storage server can run here)."""

from __future__ import annotations

import json

import pytest
import typer

from cli.common import selection_from_options
from tests.support.cli import run_cfgctl

ADMIN = ("--as", "admin@example.test")
EDITOR = ("--as", "editor@example.test")
VIEWER = ("--as", "viewer@example.test")
SECRET = "sk_live_hunter2"


def test_where_options_map_onto_the_selection():
    assert selection_from_options(["type=api_gateway", "tag=edge", "tag=eu", "tags_match=all", "status=active",
                                   "env=prod", "text=billing"], []) == {"where": {
        "type": "api_gateway", "tags": ["edge", "eu"], "tags_match": "all", "status": "active",
        "deployed_in": "prod", "text": "billing"}}
    assert selection_from_options([], ["a,b", "c"]) == {"ids": ["a", "b", "c"]}
    assert selection_from_options(None, None) == {"where": {}}
    for where, ids in ((["colour=red"], []), (["type"], []), (["type=a", "type=b"], []), (["tag=x"], ["a"])):
        with pytest.raises(typer.BadParameter):
            selection_from_options(where, ids)


def test_export_writes_the_same_bytes_twice(cfgctl, world, tmp_path):
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    assert cfgctl("export", "org-a", "-o", str(first), *VIEWER).code == 0
    assert cfgctl("export", "org-a", "--output", str(second), *VIEWER).code == 0
    assert first.read_bytes() == second.read_bytes()
    printed = cfgctl("export", "org-a", *VIEWER)
    assert printed.code == 0 and printed.out.encode() == first.read_bytes()
    document = json.loads(first.read_text())
    assert first.read_text() == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert [a["slug"] for a in document["automations"]] == ["billing"] and SECRET not in first.read_text()
    none = cfgctl("export", "org-a", "--where", "type=cron_job", *VIEWER)
    assert none.code == 0 and json.loads(none.out)["automations"] == []
    assert cfgctl("export", "org-a", "--where", "colour=red", *VIEWER).code == 2
    assert cfgctl("export", "org-a", "--env", "nowhere", *VIEWER).code == 3
    assert cfgctl("export", "org-b", *VIEWER).code == 3


def new_org(cfgctl) -> str:
    """A fresh, empty org "org-c" whose admin is admin@example.test."""
    assert cfgctl("org", "create", "Org C", "--slug", "org-c", *ADMIN).code == 0
    return "org-c"


def test_secret_values_only_in_an_encrypted_bundle(cfgctl, world, tmp_path):
    key, wrong, bundle = tmp_path / "key", tmp_path / "wrong", tmp_path / "bundle.age"
    key.write_text("correct horse battery staple\n")
    wrong.write_text("not it\n")
    # Never to stdout, never without a passphrase.
    assert cfgctl("export", "org-a", "--include-secrets", *EDITOR).code == 2
    assert cfgctl("export", "org-a", "--include-secrets", "-o", str(bundle), *EDITOR).code == 2
    assert cfgctl("export", "org-a", "--include-secrets", "--passphrase-file", str(key), "-o", str(bundle),
                  *VIEWER).code == 4
    assert not bundle.exists()
    done = cfgctl("export", "org-a", "--include-secrets", "--passphrase-file", str(key), "-o", str(bundle), *EDITOR)
    assert done.code == 0 and "encrypted" in done.out
    data = bundle.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n-> scrypt ") and SECRET.encode() not in data
    assert b"billing" not in data  # the whole document is encrypted, not only the values

    org = new_org(cfgctl)
    refused = cfgctl("import", org, str(bundle), "--passphrase-file", str(wrong), *ADMIN)
    assert refused.code == 6 and "wrong passphrase" in refused.err and "Traceback" not in refused.output
    assert cfgctl("import", org, str(bundle), *ADMIN).code == 6  # encrypted, no passphrase given
    assert json.loads(cfgctl("export", org, *ADMIN).out)["automations"] == []
    imported = cfgctl("import", org, str(bundle), "--passphrase-file", str(key), "-m", "restore", *ADMIN)
    assert imported.code == 0 and "1 create" in imported.out
    revealed = cfgctl("secret", "reveal", f"{org}/billing", "http.api_key", "--yes", *ADMIN, "--json")
    assert SECRET in revealed.out


def test_import_prints_a_table_per_automation_and_json(cfgctl, world, tmp_path):
    bundle = tmp_path / "a.json"
    assert cfgctl("export", "org-a", "-o", str(bundle), *VIEWER).code == 0
    org = new_org(cfgctl)
    preview = cfgctl("import", org, str(bundle), "--dry-run", *ADMIN)
    assert preview.code == 0 and "dry run" in preview.out and "create" in preview.out
    assert "http.api_key" in preview.out  # needs a value: the bundle has none
    assert json.loads(cfgctl("export", org, *ADMIN).out)["automations"] == []
    done = cfgctl("import", org, str(bundle), "--json", *ADMIN)
    assert done.code == 0
    assert [(i["slug"], i["action"]) for i in done.json()["items"]] == [("billing", "create")]
    again = cfgctl("import", org, str(bundle), "--on-conflict", "skip", "--json", *ADMIN)
    assert again.json()["summary"]["unchanged"] == 1
    # A viewer may not; a refused item exits 1 after the table.
    assert cfgctl("import", "org-a", str(bundle), *VIEWER).code == 4
    document = json.loads(bundle.read_text())
    document["automations"][0]["type"] = "cron_job"
    bundle.write_text(json.dumps(document))
    refused = cfgctl("import", "org-a", str(bundle), *EDITOR)
    assert refused.code == 1 and "refused" in refused.out and "does not change types" in refused.out
    assert cfgctl("import", "org-a", str(bundle), "--on-conflict", "merge", *EDITOR).code == 2
    assert cfgctl("import", "org-a", str(tmp_path / "missing.json"), *EDITOR).code == 3
    (tmp_path / "bad.json").write_text("{not json")
    assert cfgctl("import", "org-a", str(tmp_path / "bad.json"), *EDITOR).code == 6


def test_storage_bundles_through_storage3(db_url, world, scripted_storage):
    hosted = {"CFGCTL_DB_URL": db_url, "CFGCTL_SUPABASE_URL": scripted_storage.url,
              "CFGCTL_SUPABASE_SERVICE_KEY": scripted_storage.key}
    sent = run_cfgctl("export", "org-a", "--to", "storage://exports/acme/nightly.json", *VIEWER, env=hosted)
    assert sent.code == 0 and "storage://exports/acme/nightly.json" in sent.out
    stored = scripted_storage.buckets["exports"]["acme/nightly.json"]
    assert json.loads(stored)["automations"][0]["slug"] == "billing"
    assert scripted_storage.requests == [{
        "method": "POST", "path": "/storage/v1/object/exports/acme/nightly.json", "upsert": "true",
        "content_type": "application/json", "cache_control": "3600"}]
    # The same bytes again replace the object (upsert).
    assert run_cfgctl("export", "org-a", "-o", "storage://exports/acme/nightly.json", *VIEWER, env=hosted).code == 0
    assert scripted_storage.buckets["exports"]["acme/nightly.json"] == stored

    read = run_cfgctl("import", "org-a", "storage://exports/acme/nightly.json", "--json", *EDITOR, env=hosted)
    assert read.code == 0 and read.json()["summary"]["unchanged"] == 1
    assert scripted_storage.requests[-1] == {"method": "GET", "path": "/storage/v1/object/exports/acme/nightly.json"}

    missing = run_cfgctl("import", "org-a", "storage://exports/nothing.json", *EDITOR, env=hosted)
    assert missing.code == 3 and "Object not found" in missing.err
    assert run_cfgctl("export", "org-a", "-o", "storage://nobucket/x.json", *VIEWER, env=hosted).code == 3
    wrong_key = hosted | {"CFGCTL_SUPABASE_SERVICE_KEY": "nope"}
    assert run_cfgctl("export", "org-a", "-o", "storage://exports/y.json", *VIEWER, env=wrong_key).code == 4
    # Locally (no hosted project configured), storage:// is refused: bundles are files.
    local = run_cfgctl("export", "org-a", "-o", "storage://exports/z.json", *VIEWER, env={"CFGCTL_DB_URL": db_url})
    assert local.code == 6 and "CFGCTL_SUPABASE_URL" in local.err
    assert run_cfgctl("export", "org-a", "-o", "storage://exports", *VIEWER, env=hosted).code == 6
