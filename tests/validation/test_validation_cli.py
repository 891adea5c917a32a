"""`cfgctl type …`, `cfgctl rule …` and `cfgctl config validate` against a seeded world."""

from __future__ import annotations

import json

import yaml

ADMIN = ("--as", "admin@example.test")
EDITOR = ("--as", "editor@example.test")


def test_types_rules_dry_run_and_validate(cfgctl, world, tmp_path):
    assert cfgctl("type", "add", "org-a", "edge", "--name", "Edge proxy", *ADMIN).code == 0
    listed = cfgctl("type", "list", "org-a", *EDITOR, "--json")
    assert {t["slug"]: t["rules"] for t in json.loads(listed.out)}["edge"] == 0
    assert cfgctl("type", "add", "org-a", "edge", "--name", "Again", *ADMIN).code == 5
    assert cfgctl("type", "add", "org-a", "x", "--name", "X", *EDITOR).code == 4

    rule = tmp_path / "port.yaml"
    rule.write_text(yaml.safe_dump({"name": "port is a string", "section": "http", "key": "port",
                                    "schema": {"type": "string"}, "environments": ["prod"]}))
    # The world's billing automation runs port 8080 (a number) in dev only: nothing in prod yet.
    dry = cfgctl("rule", "test", "org-a", "service", "--file", str(rule), *ADMIN, "--json")
    assert dry.code == 0 and json.loads(dry.out) == []
    everywhere = tmp_path / "everywhere.json"
    everywhere.write_text(json.dumps({"environments": None}))
    assert cfgctl("rule", "add", "org-a", "service", "--file", str(rule), *ADMIN).code == 0
    dry = cfgctl("rule", "test", "org-a", "service", "--file", str(everywhere), "--rule", "port is a string",
                 *ADMIN, "--json")
    assert dry.code == 1 and json.loads(dry.out)[0]["path"] == "http.port"

    validated = cfgctl("config", "validate", "org-a/billing", *EDITOR, "--json")
    assert validated.code == 1 and json.loads(validated.out)["prod"]["status"] == "errors"
    assert cfgctl("config", "validate", "org-a/billing", "--env", "dev", *EDITOR).code == 0

    assert "port is a string" in cfgctl("rule", "list", "org-a", *EDITOR).out
    change = tmp_path / "warn.yaml"
    change.write_text("severity: warning\n")
    edited = cfgctl("rule", "edit", "org-a", "service", "port is a string", "--file", str(change), *ADMIN, "--json")
    assert edited.code == 0 and json.loads(edited.out)["version"] == 2
    assert cfgctl("config", "validate", "org-a/billing", *EDITOR).code == 0  # warnings only
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\nscope: content\nschema: {type: nonsense}\n")
    refused = cfgctl("rule", "add", "org-a", "service", "--file", str(bad), *ADMIN)
    assert refused.code == 6 and "not a valid JSON Schema" in refused.output
    assert cfgctl("rule", "rm", "org-a", "service", "port is a string", *ADMIN).code == 0
    assert cfgctl("type", "rm", "org-a", "edge", *ADMIN).code == 0
    assert cfgctl("type", "rm", "org-a", "service", *ADMIN).code == 5  # billing is a service
