"""Validation rules (issue 11, first part): org types, JSON Schema rules per type, run on
save, rollback, direct writes and promotion (dry run included), warnings, a rule's dry
run, the validation status per automation × environment, versions and events of rules."""

from __future__ import annotations

import json

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.versioning import content, head, save


def one(conn, who, sql, params=()):
    with acting_as(conn, who) as cur:
        return cur.execute(sql, params).fetchone()


def rows(conn, who, sql, params=()):
    with acting_as(conn, who) as cur:
        return cur.execute(sql, params).fetchall()


def type_id(conn, org, slug="service"):
    row = conn.execute("select id from cfg.automation_types where org_id = %s and slug = %s", (org, slug)).fetchone()
    conn.commit()
    return row["id"]


def add_rule(conn, who, org, definition, slug="service"):
    return one(conn, who, "select * from cfg.add_validation_rule(%s, %s::jsonb)",
               (type_id(conn, org, slug), json.dumps(definition)))


def refused(fn, code="PT422"):
    with pytest.raises(CfgError) as caught:
        fn()
    assert caught.value.code == code, caught.value
    return caught.value


BASE_URL = {"name": "base_url", "section": "http", "key": "base_url", "required": True,
            "schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "uri"}}
HTTPS_IN_PROD = {"name": "https in prod", "section": "http", "key": "base_url",
                 "schema": {"type": "string", "pattern": "^https://"}, "environments": ["prod"]}


def test_every_org_has_the_usual_types_and_an_automation_has_one_of_its_orgs(conn, world):
    slugs = [r["slug"] for r in rows(conn, world["viewer"], "select * from cfg.list_automation_types(%s)",
                                     (world.org_a,))]
    assert slugs == ["api_gateway", "cron_job", "other", "service", "worker"]
    one(conn, world["admin"], "select * from cfg.add_automation_type(%s, 'edge', 'Edge proxy')", (world.org_a,))
    made = one(conn, world["editor"], "select * from cfg.create_automation(%s, 'E', 'e', 'edge')", (world.org_a,))
    assert made["type"] == "edge"
    # Org B has no type "edge".
    error = refused(lambda: one(conn, world["other_admin"], "select cfg.create_automation(%s, 'E', 'e', 'edge')",
                                (world.org_b,)))
    assert "edge" not in error.detail["available"]
    refused(lambda: one(conn, world["admin"], "select cfg.remove_automation_type(%s)",
                        (type_id(conn, world.org_a, "edge"),)), "PT409")


def test_a_save_that_fails_a_rule_is_refused_with_paths_and_changes_nothing(conn, world):
    a = world.automation_a
    rule = add_rule(conn, world["admin"], world.org_a, BASE_URL)
    before = head(conn, a)
    error = refused(lambda: save(conn, world["editor"], a, before, content({"http": {"port": 80}})))
    assert error.detail["errors"] == [{"severity": "error", "path": "http.base_url",
                                       "message": "http.base_url is required", "rule_id": str(rule["id"]),
                                       "rule_name": "base_url"}]
    error = refused(lambda: save(conn, world["editor"], a, before, content({"http": {"base_url": 42}})))
    assert error.detail["errors"][0]["path"] == "http.base_url" and "string" in error.detail["errors"][0]["message"]
    assert head(conn, a) == before
    saved = save(conn, world["editor"], a, before, content({"http": {"base_url": "http://billing.internal/v1"}}))
    assert saved["version"] == before + 1 and saved["warnings"] == []


def test_warnings_are_reported_and_do_not_block(conn, world):
    a = world.automation_a
    add_rule(conn, world["admin"], world.org_a, {**HTTPS_IN_PROD, "environments": None, "severity": "warning",
                                                 "name": "prefer https"})
    saved = save(conn, world["editor"], a, head(conn, a), content({"http": {"base_url": "http://x.example"}}))
    assert [w["rule_name"] for w in saved["warnings"]] == ["prefer https"]
    status = conn.execute("select status, warnings from cfg.validation_status where automation_id = %s",
                          (a,)).fetchone()
    conn.commit()
    assert status["status"] == "warnings"


def test_promotion_checks_the_target_environments_rules_and_the_dry_run_says_what_would_fail(conn, world):
    a = world.automation_a
    add_rule(conn, world["admin"], world.org_a, HTTPS_IN_PROD)
    save(conn, world["editor"], a, head(conn, a), content({"http": {"base_url": "http://x.example"}}))
    one(conn, world["editor"], "select cfg.promote(%s, 'dev', 'staging', false)", (a,))  # staging has no such rule
    preview = one(conn, world["admin"], "select cfg.promote(%s, 'staging', 'prod') as r", (a,))["r"]
    assert preview["validation"]["status"] == "errors"
    assert preview["validation"]["errors"][0]["path"] == "http.base_url"
    error = refused(lambda: one(conn, world["admin"], "select cfg.promote(%s, 'staging', 'prod', false)", (a,)))
    assert error.detail["errors"][0]["rule_name"] == "https in prod"
    assert conn.execute("select count(*) as n from cfg.promotion_requests where automation_id = %s",
                        (a,)).fetchone()["n"] == 0


def test_rollback_and_direct_writes_are_checked_too(conn, world):
    a = world.automation_a
    first = save(conn, world["editor"], a, head(conn, a), content({"http": {"port": 80}}))["version"]
    save(conn, world["editor"], a, head(conn, a), content({"http": {"base_url": "https://ok.example"}}))
    add_rule(conn, world["admin"], world.org_a, BASE_URL)
    error = refused(lambda: one(conn, world["editor"], "select cfg.rollback(%s, %s)", (a, first)))
    assert error.detail["errors"][0]["message"] == "http.base_url is required"
    with pytest.raises(CfgError) as caught:
        with acting_as(conn, world["editor"]) as cur:
            cur.execute("delete from cfg.config_entries where automation_id = %s and key = 'base_url'", (a,))
    assert caught.value.code == "PT422"


def test_secrets_are_checked_for_presence_never_by_value(conn, world):
    a = world.automation_a
    add_rule(conn, world["admin"], world.org_a, {"name": "key", "section": "http", "key": "api_key", "required": True,
                                                 "schema": {"type": "string", "pattern": "^pk_"}})
    # The value sk_... would fail the pattern: a secret's value is not the rules' to see.
    saved = save(conn, world["editor"], a, head(conn, a), content({"http": {"api_key": ("secret", "sk_live_x")}}))
    assert saved["warnings"] == []
    error = refused(lambda: save(conn, world["editor"], a, head(conn, a), content({"http": {"port": 1}})))
    assert error.detail["errors"][0]["path"] == "http.api_key"
    assert "sk_live" not in json.dumps(error.detail)


def test_formats_are_checked_where_pg_jsonschema_checks_them(conn, world):
    """In draft 7 (format asserted), not in 2020-12 (an annotation), as pg_jsonschema does."""
    a = world.automation_a
    add_rule(conn, world["admin"], world.org_a, {
        "name": "a uri", "section": "http", "key": "base_url",
        "schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "uri"}})
    error = refused(lambda: save(conn, world["editor"], a, head(conn, a), content({"http": {"base_url": "not a uri"}})))
    assert error.detail["errors"][0]["path"] == "http.base_url"
    assert save(conn, world["editor"], a, head(conn, a), content({"http": {"base_url": "https://x.example/v1"}}))


def test_a_content_rule_sees_sections_and_keys(conn, world):
    a = world.automation_a
    add_rule(conn, world["admin"], world.org_a, {"name": "has http", "scope": "content",
                                                 "schema": {"required": ["http"]}})
    error = refused(lambda: save(conn, world["editor"], a, head(conn, a), content({"db": {"port": 5432}})))
    assert error.detail["errors"][0]["path"] == "" and "http" in error.detail["errors"][0]["message"]


def test_a_rule_dry_run_lists_what_would_fail_and_saves_nothing(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, head(conn, a), content({"http": {"base_url": "http://x.example"}}))
    one(conn, world["editor"], "select cfg.promote(%s, 'dev', 'staging', false)", (a,))
    found = rows(conn, world["admin"], "select * from cfg.test_validation_rule(%s, %s::jsonb)",
                 (type_id(conn, world.org_a), json.dumps({**HTTPS_IN_PROD, "environments": None})))
    assert [(r["automation"], r["environment"], r["path"]) for r in found] == [
        ("billing", "dev", "http.base_url"), ("billing", "staging", "http.base_url")]
    assert conn.execute("select count(*) as n from cfg.validation_rules").fetchone()["n"] == 0
    conn.commit()


def test_rules_are_versioned_audited_and_announced_and_statuses_follow_them(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, head(conn, a), content({"http": {"port": 80}}))
    rule = add_rule(conn, world["admin"], world.org_a, {**BASE_URL, "severity": "warning"})
    status = lambda: conn.execute("select status from cfg.validation_status where automation_id = %s",  # noqa: E731
                                  (a,)).fetchone()["status"]
    assert status() == "warnings"
    conn.commit()
    edited = one(conn, world["admin"], "select * from cfg.edit_validation_rule(%s, '{\"severity\": \"error\"}')",
                 (rule["id"],))
    assert edited["version"] == 2 and status() == "errors"
    conn.commit()
    one(conn, world["admin"], "select cfg.remove_validation_rule(%s)", (rule["id"],))
    assert status() == "valid"
    versions = conn.execute("select version, change from cfg.validation_rule_versions where rule_id = %s "
                            "order by version", (rule["id"],)).fetchall()
    assert [(v["version"], v["change"]) for v in versions] == [(1, "created"), (2, "updated"), (3, "deleted")]
    types = [r["type"] for r in conn.execute("select type from cfg_private.events where type like 'rule.%%' or "
                                             "type = 'validation.status_changed' order by id")]
    assert types == ["rule.created", "validation.status_changed", "rule.updated", "validation.status_changed",
                     "rule.deleted", "validation.status_changed"]
    audited = conn.execute("select operation from cfg.audit_log where table_name = 'validation_rules' "
                           "order by id").fetchall()
    assert [r["operation"] for r in audited] == ["INSERT", "UPDATE", "DELETE"]
    conn.commit()


def test_validate_config_reports_each_environment(conn, world):
    a = world.automation_a
    add_rule(conn, world["admin"], world.org_a, HTTPS_IN_PROD)
    save(conn, world["editor"], a, head(conn, a), content({"http": {"base_url": "http://x.example"}}))
    report = one(conn, world["viewer"], "select cfg.validate_config(%s) as r", (a,))["r"]
    assert {env: r["status"] for env, r in report.items()} == {"dev": "valid", "staging": "valid", "prod": "errors"}
    refused(lambda: one(conn, world["viewer"], "select cfg.validate_config(%s, 'nope')", (a,)), "PT404")


BAD_RULES = [
    ({"name": "x", "section": "http", "key": "k", "schema": {"type": "nonsense"}}, "PT422"),
    ({"name": "x", "section": "http", "key": "k", "schema": {"minimum": "ten"}}, "PT422"),
    ({"name": "x", "section": "http", "key": "k", "schema": [1]}, "PT422"),
    ({"name": "x", "section": "http", "schema": {}}, "23514"),  # an entry rule names a key too
    ({"name": "x", "scope": "content", "required": True, "schema": {}}, "23514"),
    ({"name": "x", "section": "http", "key": "k", "severity": "fatal"}, "23514"),
    ({"name": "x", "section": "http", "key": "k", "environments": ["nowhere"]}, "PT404"),
    ({"name": "", "section": "http", "key": "k"}, "23514"),
    ({"name": "x", "section": "http", "key": "k", "colour": "red"}, "PT422"),
    ({"name": "x", "section": "http", "key": "k", "schema": {"enum": ["a" * 70000]}}, "23514"),
    ({"name": "x'; drop table cfg.orgs; --", "section": "http", "key": "k", "schema": {"type": 1}}, "PT422"),
    # "format" checks nothing in 2020-12 (pg_jsonschema): the rule must name a draft that asserts it.
    ({"name": "x", "section": "http", "key": "k", "schema": {"type": "string", "format": "uri"}}, "PT422"),
]


@pytest.mark.parametrize(("definition", "code"), BAD_RULES, ids=[str(i) for i in range(len(BAD_RULES))])
def test_bad_rules_are_refused_and_change_nothing(conn, world, definition, code):
    refused(lambda: add_rule(conn, world["admin"], world.org_a, definition), code)
    assert conn.execute("select count(*) as n from cfg.validation_rules").fetchone()["n"] == 0
    conn.commit()


def test_a_pattern_that_backtracks_does_not_hang_a_save(conn, world):
    a = world.automation_a
    add_rule(conn, world["admin"], world.org_a, {"name": "evil", "section": "http", "key": "host",
                                                 "schema": {"type": "string", "pattern": "^(a+)+$"}})
    error = refused(lambda: save(conn, world["editor"], a, head(conn, a),
                                 content({"http": {"host": "a" * 40 + "!"}})))
    assert error.detail["errors"][0]["path"] == "http.host"


def test_another_orgs_types_and_rules_are_not_found(conn, world):
    rule = add_rule(conn, world["admin"], world.org_a, BASE_URL)
    for sql, params in (
        ("select cfg.add_validation_rule(%s, '{\"name\": \"x\", \"scope\": \"content\"}')",
         (type_id(conn, world.org_a),)),
        ("select cfg.edit_validation_rule(%s, '{}')", (rule["id"],)),
        ("select cfg.remove_validation_rule(%s)", (rule["id"],)),
        ("select cfg.remove_automation_type(%s)", (type_id(conn, world.org_a),)),
    ):
        refused(lambda sql=sql, params=params: one(conn, world["other_admin"], sql, params), "PT404")
