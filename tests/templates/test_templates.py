"""Templates and cloning (issue 11, second part): typed placeholders filled into a new
automation's first version (checked, the type's rules run), drift from the template,
merging a newer template version (with and without a conflict), cloning within and
across orgs with and without secrets, and bad templates and values refused."""

from __future__ import annotations

import json

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.versioning import content, head, save
from tests.support.world import add_member


def one(conn, who, sql, params=()):
    with acting_as(conn, who) as cur:
        return cur.execute(sql, params).fetchone()


def refused(fn, code="PT422"):
    with pytest.raises(CfgError) as caught:
        fn()
    assert caught.value.code == code, caught.value
    return caught.value


def count(conn, sql, params=()):
    row = conn.execute(sql, params).fetchone()
    conn.commit()
    return list(row.values())[0]


PLACEHOLDERS = [
    {"name": "host", "type": "string", "required": True, "description": "the service's host"},
    {"name": "port", "type": "number", "default": 8080},
    {"name": "tls", "type": "boolean", "default": True},
    {"name": "tier", "type": "enum", "options": ["free", "pro"], "default": "free"},
    {"name": "callback", "type": "url"},
    {"name": "api_key", "type": "secret", "required": True},
]
CONTENT = {"sections": {
    "http": {"entries": {
        "base_url": {"value": "https://${host}:${port}/v1"},
        "port": {"value": {"$placeholder": "port"}},
        "tls": {"value": {"$placeholder": "tls"}},
        "callback": {"value": {"$placeholder": "callback"}},
        "api_key": {"secret": True, "value": {"$placeholder": "api_key"}},
    }},
    "plan": {"entries": {"tier": {"value": {"$placeholder": "tier"}}, "retries": {"value": 3}}},
}}
NOWHERE = "00000000-0000-0000-0000-000000000000"
VALUES = {"host": "billing.internal", "port": "9090", "callback": "https://hooks.example/cb", "api_key": "sk_live_tpl"}


def add_template(conn, who, org, slug="gateway", body=CONTENT, placeholders=PLACEHOLDERS, type_="api_gateway"):
    return one(conn, who, "select * from cfg.add_template(%s, %s, %s, %s, %s::jsonb, %s::jsonb)",
               (org, type_, slug, slug.title(), json.dumps(body), json.dumps(placeholders)))


def from_template(conn, who, org, template, slug="billing-gw", values=VALUES, version=None):
    return one(conn, who, "select cfg.create_automation_from_template(%s, %s, 'Billing GW', %s, %s::jsonb, %s) as r",
               (org, template, slug, json.dumps(values), version))["r"]


def config(conn, who, automation):
    return one(conn, who, "select cfg.get_config(%s) as r", (automation,))["r"]["content"]


def test_every_placeholder_type_fills_the_first_version(conn, world):
    t = add_template(conn, world["admin"], world.org_a)
    assert t["version"] == 1
    made = from_template(conn, world["editor"], world.org_a, t["id"])
    a = made["automation"]["id"]
    assert made["automation"]["type"] == "api_gateway" and made["version"] == 1 and made["template_version"] == 1
    body = config(conn, world["editor"], a)["sections"]
    http = body["http"]["entries"]
    assert http["base_url"]["value"] == "https://billing.internal:9090/v1"
    assert http["port"]["value"] == 9090 and http["tls"]["value"] is True
    assert http["callback"]["value"] == "https://hooks.example/cb"
    assert http["api_key"] == {"secret": True, "description": ""}
    assert body["plan"]["entries"]["tier"]["value"] == "free"
    # The secret went to Vault through the save; the recorded values leave it out.
    assert made["values"] == {k: v for k, v in VALUES.items() if k != "api_key"}
    origin = one(conn, world["viewer"], "select cfg.automation_origin(%s) as r", (a,))["r"]
    assert origin["template_id"] == str(t["id"]) and origin["template_version"] == 1
    revealed = one(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r", (a,))["r"]
    assert revealed["value"] == "sk_live_tpl"
    types = [r["type"] for r in conn.execute("select type from cfg_private.events where org_id = %s order by id",
                                             (world.org_a,))]
    conn.commit()
    assert "template.created" in types and "template.applied" in types
    dumps = json.dumps([dict(r) for r in conn.execute(
        "select payload from cfg_private.events union all select to_jsonb(l) from cfg.audit_log l "
        "union all select to_jsonb(o) from cfg.automation_origins o").fetchall()], default=str)
    conn.commit()
    assert "sk_live_tpl" not in dumps


def test_missing_and_invalid_values_are_refused_with_paths_and_change_nothing(conn, world):
    t = add_template(conn, world["admin"], world.org_a)
    automations = count(conn, "select count(*) from cfg.automations")
    bad = {"port": "eighty", "tls": "maybe", "tier": "gold", "callback": "ftp://x", "nope": 1}
    error = refused(lambda: from_template(conn, world["editor"], world.org_a, t["id"], values=bad))
    assert sorted(e["path"] for e in error.detail["errors"]) == [
        "values.api_key", "values.callback", "values.host", "values.nope", "values.port", "values.tier", "values.tls"]
    messages = {e["path"]: e["message"] for e in error.detail["errors"]}
    assert messages["values.host"].startswith("a value is required") and "free, pro" in messages["values.tier"]
    assert count(conn, "select count(*) from cfg.automations") == automations
    assert count(conn, "select count(*) from cfg.automation_origins") == 0
    # A viewer cannot create automations, from a template or not.
    refused(lambda: from_template(conn, world["viewer"], world.org_a, t["id"]), "PT403")


def test_the_first_version_passes_the_types_rules(conn, world):
    t = add_template(conn, world["admin"], world.org_a)
    type_id = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'api_gateway'",
                           (world.org_a,)).fetchone()["id"]
    conn.commit()
    one(conn, world["admin"], "select cfg.add_validation_rule(%s, %s::jsonb)", (type_id, json.dumps(
        {"name": "small port", "section": "http", "key": "port", "schema": {"type": "integer", "maximum": 9000}})))
    error = refused(lambda: from_template(conn, world["editor"], world.org_a, t["id"]))
    assert error.detail["errors"][0]["path"] == "http.port" and error.detail["errors"][0]["rule_name"] == "small port"
    assert count(conn, "select count(*) from cfg.automations where slug = 'billing-gw'") == 0
    made = from_template(conn, world["editor"], world.org_a, t["id"], values={**VALUES, "port": 8000})
    assert made["version"] == 1


def edit_template(conn, who, template, body=None, placeholders=None, expected=None):
    return one(conn, who, "select * from cfg.edit_template(%s, %s::jsonb, %s::jsonb, 'v2', %s)",
               (template, body and json.dumps(body), placeholders and json.dumps(placeholders), expected))


def test_drift_is_key_by_key_against_the_current_template_version(conn, world):
    t = add_template(conn, world["admin"], world.org_a)
    a = from_template(conn, world["editor"], world.org_a, t["id"])["automation"]["id"]
    drift = one(conn, world["viewer"], "select cfg.template_drift(%s) as r", (a,))["r"]
    assert drift["drift"] == [] and drift["template_version"] == 1
    # The automation changes a key, adds one, removes one; a secret's new value is not drift.
    one(conn, world["editor"], "select cfg.patch_config(%s, null, %s::jsonb, %s::jsonb)", (a, json.dumps(
        {"plan": {"retries": {"value": 5}, "owner": {"value": "team-b"}},
         "http": {"api_key": {"value": "sk_rotated", "secret": True}}}), json.dumps({"http": ["callback"]})))
    # The template's next version changes the tier default.
    placeholders = [p if p["name"] != "tier" else {**p, "default": "pro"} for p in PLACEHOLDERS]
    edit_template(conn, world["admin"], t["id"], placeholders=placeholders, expected=1)
    drift = one(conn, world["viewer"], "select cfg.template_drift(%s) as r", (a,))["r"]
    assert drift["latest_version"] == 2
    assert [(d["section"], d["key"], d["change"]) for d in drift["drift"]] == [
        ("http", "callback", "removed"), ("plan", "owner", "added"), ("plan", "retries", "changed"),
        ("plan", "tier", "changed")]
    tier = drift["drift"][3]
    assert (tier["template"], tier["automation"]) == ("pro", "free")
    assert "sk_rotated" not in json.dumps(drift)


def test_apply_merges_a_newer_version_and_records_it(conn, world):
    t = add_template(conn, world["admin"], world.org_a)
    a = from_template(conn, world["editor"], world.org_a, t["id"])["automation"]["id"]
    save_before = head(conn, a)
    one(conn, world["editor"], "select cfg.patch_config(%s, null, %s::jsonb)",
        (a, json.dumps({"plan": {"owner": {"value": "team-b"}}})))
    body = json.loads(json.dumps(CONTENT))
    body["sections"]["plan"]["entries"]["retries"] = {"value": 10}
    body["sections"]["http"]["entries"]["timeout"] = {"value": 30}
    edit_template(conn, world["admin"], t["id"], body=body)
    preview = one(conn, world["editor"], "select cfg.apply_template(%s) as r", (a,))["r"]
    assert preview["dry_run"] and preview["conflicts"] == [] and head(conn, a) == save_before + 1
    assert {(c["section"], c["key"]) for c in preview["changes"]} == {("plan", "retries"), ("http", "timeout")}
    refused(lambda: one(conn, world["viewer"], "select cfg.apply_template(%s)", (a,)), "PT403")
    refused(lambda: one(conn, world["editor"], "select cfg.apply_template(%s, null, %s, false)", (a, save_before)),
            "PT409")
    applied = one(conn, world["editor"], "select cfg.apply_template(%s, dry_run => false) as r", (a,))["r"]
    assert applied["version"] == save_before + 2 and applied["template_version"] == 2
    entries = config(conn, world["editor"], a)["sections"]
    plan = entries["plan"]["entries"]
    assert plan["retries"]["value"] == 10 and plan["owner"]["value"] == "team-b"
    assert entries["http"]["entries"]["timeout"]["value"] == 30
    # The secret kept its value through the merge.
    assert one(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r", (a,))["r"]["value"] == \
        "sk_live_tpl"
    message = conn.execute("select message from cfg.config_versions where automation_id = %s order by version desc "
                           "limit 1", (a,)).fetchone()["message"]
    conn.commit()
    assert message == "template gateway v2"
    assert one(conn, world["viewer"], "select cfg.automation_origin(%s) as r", (a,))["r"]["template_version"] == 2


def test_apply_with_a_conflict_is_refused_like_a_save_conflict(conn, world):
    t = add_template(conn, world["admin"], world.org_a)
    a = from_template(conn, world["editor"], world.org_a, t["id"])["automation"]["id"]
    one(conn, world["editor"], "select cfg.patch_config(%s, null, %s::jsonb)",
        (a, json.dumps({"plan": {"retries": {"value": 5}}})))
    body = json.loads(json.dumps(CONTENT))
    body["sections"]["plan"]["entries"]["retries"] = {"value": 10}
    edit_template(conn, world["admin"], t["id"], body=body)
    before = head(conn, a)
    preview = one(conn, world["editor"], "select cfg.apply_template(%s) as r", (a,))["r"]
    assert [(c["section"], c["key"]) for c in preview["conflicts"]] == [("plan", "retries")]
    error = refused(lambda: one(conn, world["editor"], "select cfg.apply_template(%s, dry_run => false)", (a,)),
                    "PT409")
    conflict = error.detail["conflicts"][0]
    assert (conflict["base"]["value"], conflict["theirs"]["value"], conflict["mine"]["value"]) == (3, 10, 5)
    assert head(conn, a) == before
    assert one(conn, world["viewer"], "select cfg.automation_origin(%s) as r", (a,))["r"]["template_version"] == 1
    # Not from a template: PT422.
    refused(lambda: one(conn, world["editor"], "select cfg.apply_template(%s)", (world.automation_a,)))


def clone(conn, who, source, slug="billing-copy", org=None, copy=False, version=None):
    return one(conn, who, "select cfg.clone_automation(%s, 'Copy', %s, %s, %s, %s) as r",
               (source, slug, version, org, copy))["r"]


def test_clone_within_an_org_leaves_secrets_out_unless_asked(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, head(conn, a), content({"http": {"port": 8080, "api_key": ("secret",)}}))
    copy = clone(conn, world["editor"], a)
    assert copy["secrets_left_out"] == [{"section": "http", "key": "api_key"}] and copy["secrets_copied"] == []
    assert copy["source"]["automation_id"] == str(a) and copy["source"]["version"] == head(conn, a)
    body = config(conn, world["editor"], copy["automation"]["id"])["sections"]["http"]["entries"]
    assert set(body) == {"port"}
    with_secrets = clone(conn, world["editor"], a, slug="billing-copy-2", copy=True)
    b = with_secrets["automation"]["id"]
    assert with_secrets["secrets_copied"] == [{"section": "http", "key": "api_key"}]
    assert one(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r", (b,))["r"]["value"] == \
        "sk_live_hunter2"
    # A new Vault secret of the clone, not the source's.
    ids = conn.execute("select es.secret_id from cfg.entry_secrets es join cfg.config_entries e on e.id = es.id "
                       "where e.automation_id in (%s, %s) and e.key = 'api_key'", (a, b)).fetchall()
    conn.commit()
    assert len({r["secret_id"] for r in ids}) == 2
    origin = one(conn, world["viewer"], "select cfg.automation_origin(%s) as r", (b,))["r"]
    assert origin["source_automation_id"] == str(a)
    reveals = conn.execute("select new_values from cfg.audit_log where operation = 'REVEAL' and automation_id = %s",
                           (a,)).fetchall()
    events = [r["type"] for r in conn.execute("select type from cfg_private.events where org_id = %s", (world.org_a,))]
    conn.commit()
    assert [r["new_values"]["reason"] for r in reveals] == ["clone"]
    assert "automation.cloned" in events and "secret.revealed" in events
    dumps = json.dumps([dict(r) for r in conn.execute(
        "select payload from cfg_private.events union all select to_jsonb(l) from cfg.audit_log l").fetchall()],
        default=str)
    conn.commit()
    assert "sk_live_hunter2" not in dumps and "sk_live_hunter2" not in json.dumps(with_secrets)


def test_copying_secrets_needs_the_right_to_reveal(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, head(conn, a), content({"http": {"api_key": ("secret",)}}))
    one(conn, world["admin"], "select cfg.set_secret_reveal_role(%s, 'admin')", (world.org_a,))
    refused(lambda: clone(conn, world["editor"], a, copy=True), "PT403")
    assert count(conn, "select count(*) from cfg.automations where slug = 'billing-copy'") == 0
    assert clone(conn, world["admin"], a, copy=True)["secrets_copied"] != []


def test_clone_across_orgs_needs_editor_in_both(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, head(conn, a), content({"http": {"port": 8080, "api_key": ("secret",)}}))
    # The editor is no member of org B: it answers like an org that does not exist.
    refused(lambda: clone(conn, world["editor"], a, org=world.org_b), "PT404")
    # Org B's admin cannot see org A's automation.
    refused(lambda: clone(conn, world["other_admin"], a, org=world.org_b), "PT404")
    add_member(conn, world["other_admin"], world.org_b, world["editor"], "editor")
    copy = clone(conn, world["editor"], a, org=world.org_b, copy=True)
    b = copy["automation"]["id"]
    assert copy["automation"]["org_id"] == str(world.org_b) and copy["source"]["org_id"] == str(world.org_a)
    events = conn.execute("select type, org_id from cfg_private.events where type in "
                          "('automation.cloned', 'secret.revealed')").fetchall()
    conn.commit()
    assert {(e["type"], e["org_id"]) for e in events} == {("automation.cloned", world.org_b),
                                                          ("secret.revealed", world.org_a)}
    assert one(conn, world["other_admin"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r", (b,))["r"][
        "value"] == "sk_live_hunter2"
    # The type must exist in the target org.
    one(conn, world["admin"], "select cfg.add_automation_type(%s, 'edge', 'Edge')", (world.org_a,))
    edge = one(conn, world["editor"], "select (cfg.create_automation(%s, 'E', 'edge-1', 'edge')).id",
               (world.org_a,))["id"]
    error = refused(lambda: clone(conn, world["editor"], edge, slug="edge-1", org=world.org_b))
    assert error.detail["field"] == "type"


@pytest.mark.parametrize("placeholders,body,path", [
    ([], {"sections": {"s": {"entries": {"k": {"value": {"$placeholder": "x"}}}}}},
     "content.sections.s.entries.k.value"),
    ([], {"sections": {"s": {"entries": {"k": {"value": "a ${x} b"}}}}}, "content.sections.s.entries.k.value"),
    ([{"name": "x", "type": "number", "default": "many"}], {"sections": {}},
     "placeholders[0].default"),
    ([{"name": "x", "type": "secret", "default": "s3cret"}], {"sections": {}}, "placeholders[0].default"),
    ([{"name": "x", "type": "string"}, {"name": "x", "type": "string"}], {"sections": {}}, "placeholders[1].name"),
    ([{"name": "1x", "type": "string"}], {"sections": {}}, "placeholders[0].name"),
    ([{"name": "x", "type": "colour"}], {"sections": {}}, "placeholders[0].type"),
    ([{"name": "x", "type": "enum"}], {"sections": {}}, "placeholders[0].options"),
    ([{"name": "x", "type": "boolean"}], {"sections": {"s": {"entries": {"k": {"value": "${x}"}}}}},
     "content.sections.s.entries.k.value"),
    ([], {"sections": {"s": {"entries": {"k": {"secret": True, "value": "hunter2"}}}}},
     "content.sections.s.entries.k.value"),
    ([], {"sections": {"s": {"entries": {"k": {"secret": True}}}}}, "content.sections.s.entries.k.value"),
    ([], {"sections": {"s": {"entries": {"k": {"value": "x" * 1100000}}}}}, "content"),
    ([], {"sections": []}, "content.sections"),
])
def test_bad_templates_are_refused_and_change_nothing(conn, world, placeholders, body, path):
    error = refused(lambda: add_template(conn, world["admin"], world.org_a, body=body, placeholders=placeholders))
    assert path in [e["path"] for e in error.detail["errors"]], error.detail
    assert count(conn, "select count(*) from cfg.templates") == 0
    assert "hunter2" not in str(error)


def test_templates_are_versioned_and_other_orgs_cannot_see_them(conn, world):
    t = add_template(conn, world["admin"], world.org_a)
    refused(lambda: add_template(conn, world["editor"], world.org_a, slug="mine"), "PT403")
    refused(lambda: add_template(conn, world["admin"], world.org_a), "PT409")
    refused(lambda: edit_template(conn, world["editor"], t["id"], placeholders=PLACEHOLDERS), "PT403")
    edit_template(conn, world["admin"], t["id"], placeholders=PLACEHOLDERS[:1] + PLACEHOLDERS[1:], expected=1)
    refused(lambda: edit_template(conn, world["admin"], t["id"], placeholders=PLACEHOLDERS, expected=1), "PT409")
    shown = one(conn, world["viewer"], "select cfg.get_template(%s, 1) as r", (t["id"],))["r"]
    assert shown["version"] == 1 and shown["latest_version"] == 2 and shown["type"] == "api_gateway"
    assert count(conn, "select count(*) from cfg.template_versions where template_id = %s", (t["id"],)) == 2
    # Another org's template answers exactly like a missing one, from every RPC.
    for sql, params in [("select cfg.get_template(%s)", (t["id"],)),
                        ("select cfg.edit_template(%s, null, '[]')", (t["id"],))]:
        other = refused(lambda sql=sql, params=params: one(conn, world["other_admin"], sql, params), "PT404")
        missing = refused(lambda sql=sql: one(conn, world["other_admin"], sql, (NOWHERE,)), "PT404")
        assert str(other).replace(str(t["id"]), "ID") == str(missing).replace(NOWHERE, "ID")
    refused(lambda: from_template(conn, world["other_admin"], world.org_b, t["id"]), "PT404")
    # Org B's type of the same slug is no way in either.
    refused(lambda: from_template(conn, world["admin"], world.org_b, t["id"]), "PT404")


def test_optional_placeholders_and_text_that_needs_escaping(conn, world):
    placeholders = [{"name": "greeting", "type": "string", "required": True},
                    {"name": "extra", "type": "string"}, {"name": "token", "type": "secret"}]
    body = {"sections": {"s": {"entries": {
        "message": {"value": {"text": "say ${greeting}!", "list": ["${greeting}", "${extra}"]}},
        "extra": {"value": {"$placeholder": "extra"}},
        "token": {"secret": True, "value": {"$placeholder": "token"}},
    }}}}
    t = add_template(conn, world["admin"], world.org_a, body=body, placeholders=placeholders, type_="service")
    tricky = 'a "quoted" \\ back\\slash {"$placeholder": "token"}'
    made = from_template(conn, world["editor"], world.org_a, t["id"], values={"greeting": tricky})
    entries = config(conn, world["editor"], made["automation"]["id"])["sections"]["s"]["entries"]
    assert entries["message"]["value"] == {"text": f"say {tricky}!", "list": [tricky, ""]}
    # Optional placeholders without value leave their entries out (a new secret entry needs a value).
    assert set(entries) == {"message"}
    # The template's next version adds a secret: applying it leaves it out and says so (token,
    # in base and theirs but not in the automation, stays out as the automation's own change).
    body["sections"]["s"]["entries"]["key2"] = {"secret": True, "value": {"$placeholder": "token"}}
    edit_template(conn, world["admin"], t["id"], body=body)
    applied = one(conn, world["editor"], "select cfg.apply_template(%s, dry_run => false) as r",
                  (made["automation"]["id"],))["r"]
    assert {(x["section"], x["key"]) for x in applied["secrets_left_out"]} == {("s", "key2")}


def test_direct_writes_are_checked_and_versioned_too(conn, world):
    type_id = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                           (world.org_a,)).fetchone()["id"]
    conn.commit()
    with pytest.raises(CfgError) as caught:
        with acting_as(conn, world["admin"]) as cur:
            cur.execute("insert into cfg.templates (org_id, type_id, slug, name, content) values (%s, %s, 'd', 'D', "
                        "'{\"sections\": {\"s\": {\"entries\": {\"k\": {\"value\": \"${nope}\"}}}}}')",
                        (world.org_a, type_id))
    assert caught.value.code == "PT422"
    with acting_as(conn, world["admin"]) as cur:
        t = cur.execute("insert into cfg.templates (org_id, type_id, slug, name) values (%s, %s, 'd', 'D') "
                        "returning id", (world.org_a, type_id)).fetchone()["id"]
        cur.execute("update cfg.templates set description = 'changed', version = 99 where id = %s", (t,))
    assert count(conn, "select max(version) from cfg.template_versions where template_id = %s", (t,)) == 2
    types = [r["type"] for r in conn.execute("select type from cfg_private.events where subject_id = %s order by id",
                                             (t,))]
    conn.commit()
    assert types == ["template.created", "template.updated"]
    # Editors cannot write templates directly either (row-level security).
    with pytest.raises(CfgError):
        with acting_as(conn, world["editor"]) as cur:
            cur.execute("insert into cfg.templates (org_id, type_id, slug, name) values (%s, %s, 'e', 'E')",
                        (world.org_a, type_id))


def test_an_editor_with_sql_access_cannot_forge_an_origin(conn, world):
    """The provenance helpers answer the RPC that makes the automation, not a later call."""
    other = one(conn, world["editor"], "select * from cfg.create_automation(%s, 'Other', 'other')", (world.org_a,))
    for sql, params in (
        ("select cfg_private.record_clone_origin(%s, %s, 1, '{}')", (world.automation_a, other["id"])),
        ("select cfg_private.record_template_origin(%s, gen_random_uuid(), 1, '{}', false)", (world.automation_a,)),
    ):
        with pytest.raises(CfgError) as caught:
            one(conn, world["editor"], sql, params)
        assert caught.value.code in ("PT409", "PT404"), sql
    assert conn.execute("select count(*) as n from cfg.automation_origins").fetchone()["n"] == 0
    conn.commit()
