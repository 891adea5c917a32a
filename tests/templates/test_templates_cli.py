"""`cfgctl template …`, `cfgctl automation create --template … --set` and `cfgctl automation
clone` against a seeded world."""

from __future__ import annotations

import json

import yaml

ADMIN = ("--as", "admin@example.test")
EDITOR = ("--as", "editor@example.test")
OTHER = ("--as", "other_admin@example.test")

TEMPLATE = {
    "placeholders": [{"name": "host", "type": "string", "required": True},
                     {"name": "port", "type": "number", "default": 8080},
                     {"name": "token", "type": "secret"}],
    "content": {"sections": {"http": {"entries": {
        "base_url": {"value": "https://${host}:${port}"},
        "port": {"value": {"$placeholder": "port"}},
        "token": {"secret": True, "value": {"$placeholder": "token"}},
    }}}},
}


def test_templates_from_add_to_apply(cfgctl, world, tmp_path):
    file = tmp_path / "gateway.yaml"
    file.write_text(yaml.safe_dump(TEMPLATE))
    add = ("template", "add", "org-a", "gateway", "--type", "api_gateway", "--file", str(file))
    assert cfgctl(*add, *EDITOR).code == 4
    assert cfgctl("template", "add", "org-a", "gateway", "--type", "api_gateway", "--file", str(file),
                  "--name", "Standard gateway", *ADMIN).code == 0
    listed = json.loads(cfgctl("template", "list", "org-a", *EDITOR, "--json").out)
    assert [(t["slug"], t["version"], t["placeholders"]) for t in listed] == [("gateway", 1, 3)]
    shown = cfgctl("template", "show", "org-a", "gateway", *EDITOR)
    assert shown.code == 0 and "${host}" in shown.out

    missing = cfgctl("automation", "create", "org-a", "GW", "--slug", "gw", "--template", "gateway", *EDITOR)
    assert missing.code == 6 and "values.host" in missing.output
    made = cfgctl("automation", "create", "org-a", "GW", "--slug", "gw", "--template", "gateway",
                  "--set", "host=gw.internal", "--set", "port=9000", "--set", "token=tok_cli", *EDITOR, "--json")
    assert made.code == 0, made.output
    assert json.loads(made.out)["template_version"] == 1 and json.loads(made.out)["type"] == "api_gateway"
    shown = json.loads(cfgctl("automation", "show", "org-a/gw", *EDITOR, "--json").out)
    assert shown["origin"]["template"] == "gateway" and shown["origin"]["values"] == {"host": "gw.internal",
                                                                                        "port": 9000}
    assert {e["key"]: e["value"] for e in shown["entries"]}["base_url"] == "https://gw.internal:9000"

    drift = json.loads(cfgctl("template", "drift", "org-a/gw", *EDITOR, "--json").out)
    assert drift["drift"] == []
    newer = tmp_path / "v2.json"
    body = json.loads(json.dumps(TEMPLATE["content"]))
    body["sections"]["http"]["entries"]["timeout"] = {"value": 30}
    newer.write_text(json.dumps({"content": body}))
    assert cfgctl("template", "edit", "org-a", "gateway", "--file", str(newer), "-m", "timeouts", *ADMIN).code == 0
    drift = json.loads(cfgctl("template", "drift", "org-a/gw", *EDITOR, "--json").out)
    assert [(d["key"], d["change"]) for d in drift["drift"]] == [("timeout", "removed")]
    dry = cfgctl("template", "apply", "org-a/gw", *EDITOR)
    assert dry.code == 0 and "dry run" in dry.out
    applied = json.loads(cfgctl("template", "apply", "org-a/gw", "--write", *EDITOR, "--json").out)
    assert applied["version"] == 2 and applied["template_version"] == 2
    assert json.loads(cfgctl("template", "drift", "org-a/gw", *EDITOR, "--json").out)["drift"] == []


def test_clone_within_and_across_orgs(cfgctl, world):
    plain = cfgctl("automation", "clone", "org-a/billing", "billing-2", "--name", "Billing 2", *EDITOR, "--json")
    assert plain.code == 0, plain.output
    assert json.loads(plain.out)["secrets_left_out"] == [{"section": "http", "key": "api_key"}]
    shown = json.loads(cfgctl("automation", "show", "org-a/billing-2", *EDITOR, "--json").out)
    assert shown["origin"]["source_automation_id"] == str(world.automation_a)
    # The editor is a stranger to org B.
    assert cfgctl("automation", "clone", "org-a/billing", "billing-3", "--name", "B", "--to-org",
                  str(world.org_b), *EDITOR).code == 3
    copied = cfgctl("automation", "clone", "org-a/billing", "billing-3", "--name", "B", "--copy-secrets", *ADMIN)
    assert copied.code == 0 and "secrets copied: http.api_key" in copied.out
    assert "sk_live_hunter2" not in copied.output
    assert cfgctl("automation", "clone", "org-a/billing", "x", "--name", "X", *OTHER).code == 3
