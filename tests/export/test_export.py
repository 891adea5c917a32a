"""Export and import (issue 12, items 3 and 4): a deterministic document of the selected
automations (secrets masked, values only encrypted for who may reveal them), read back by
an import that creates, updates, leaves unchanged, skips or refuses each automation, with
a dry run, conflict policies, the type's rules, and a round trip into an empty org."""

from __future__ import annotations

import json

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.versioning import content, save
from tests.support.world import add_member

SECRET = "sk_live_hunter2"
NOWHERE = "00000000-0000-0000-0000-000000000000"


def call(conn, who, sql, params=()):
    with acting_as(conn, who) as cur:
        return cur.execute(sql, params).fetchone()["r"]


def export(conn, who, org, selection=None, env=None, version=None, include_secrets=False):
    return call(conn, who, "select cfg.export_automations(%s, %s::jsonb, %s, %s, %s) as r",
                (org, json.dumps(selection or {"where": {}}), env, version, include_secrets))


def import_(conn, who, org, document, dry_run=True, on_conflict="fail", message=None, base_versions=None):
    return call(conn, who, "select cfg.import_automations(%s, %s::jsonb, %s, %s, %s, %s::jsonb) as r",
                (org, json.dumps(document), dry_run, on_conflict, message,
                 None if base_versions is None else json.dumps(base_versions)))


def refused(fn, code="PT422"):
    with pytest.raises(CfgError) as caught:
        fn()
    assert caught.value.code == code, caught.value
    return caught.value


def fingerprint(conn) -> tuple:
    """What an import could change, as the superuser sees it."""
    row = conn.execute(
        "select (select count(*) from cfg.automations) as a, (select count(*) from cfg.config_versions) as v,"
        " (select count(*) from cfg.audit_log) as l, (select count(*) from cfg_private.events) as o,"
        " (select count(*) from vault.secrets) as s,"
        " (select string_agg(md5(a::text), ',' order by a.id) from cfg.automations as a) as h"
    ).fetchone()
    conn.commit()
    return tuple(row.values())


def new_org(conn, who, slug):
    with acting_as(conn, who) as cur:
        return cur.execute("select id from cfg.create_org(%s, %s)", (slug.title(), slug)).fetchone()["id"]


def add_automation(conn, who, org, slug, body, type_="service", tags=(), description=""):
    with acting_as(conn, who) as cur:
        made = cur.execute("select id from cfg.create_automation(%s, %s, %s, %s, %s, %s)",
                           (org, slug.title(), slug, type_, list(tags), description)).fetchone()["id"]
    save(conn, who, made, 0, body, "first")
    return made


@pytest.fixture
def org_a(conn, world):
    """Org A: billing (the world's, with a secret), edge (tags, a gateway) and worker (paused)."""
    add_automation(conn, world["editor"], world.org_a, "edge-gw",
                   content({"routes": {"prefix": "/v1", "timeout": 30}, "tls": {"cert": ("secret", "pem-secret")}}),
                   type_="api_gateway", tags=("zeta", "edge", "Alpha"), description="the edge")
    worker = add_automation(conn, world["editor"], world.org_a, "worker",
                            content({"jobs": {"cron": "0 * * * *", "unicode": "grüße ✓"}}))
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.automations set status = 'paused' where id = %s", (worker,))
    return world.org_a


def test_an_export_is_the_same_document_twice_and_sorted(conn, world, org_a):
    first = export(conn, world["viewer"], org_a)
    second = export(conn, world["viewer"], org_a)
    assert first == second
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["format"] == "cfgctl.export" and first["format_version"] == 1 and first["org"] == "org-a"
    assert [a["slug"] for a in first["automations"]] == ["billing", "edge-gw", "worker"]
    edge = first["automations"][1]
    assert edge["tags"] == ["Alpha", "edge", "zeta"] and edge["type"] == "api_gateway"
    assert edge["description"] == "the edge" and edge["version"] == 1
    assert edge["content"]["sections"]["routes"]["entries"]["timeout"] == {
        "value": 30, "secret": False, "description": ""}
    assert first["automations"][2]["status"] == "paused"
    text = json.dumps(first)
    assert "id" not in {k for a in first["automations"] for k in a} and "created_at" not in text


def test_secrets_are_masked_never_a_value_token_or_digest(conn, world, org_a):
    document = export(conn, world["admin"], org_a)
    text = json.dumps(document)
    assert SECRET not in text and "pem-secret" not in text and "digest" not in text
    assert document["automations"][0]["content"]["sections"]["http"]["entries"]["api_key"] == {
        "secret": True, "description": ""}
    assert document["secret_values"] is False


def test_an_export_picks_ids_in_any_order_and_reports_unknown_and_foreign_ids_alike(conn, world, org_a):
    document = export(conn, world["viewer"], org_a,
                      {"ids": [str(world.automation_b), str(world.automation_a), NOWHERE]})
    assert [a["slug"] for a in document["automations"]] == ["billing"]
    assert document["left_out"] == [{"id": str(world.automation_b), "reason": "not found"},
                                    {"id": NOWHERE, "reason": "not found"}]
    assert "other" not in json.dumps(document)  # nothing of org B's automation
    # Org A's id from org B's side: not found, the same answer as an id that does not exist.
    from_b = export(conn, world["other_admin"], world.org_b, {"ids": [str(world.automation_a)]})
    assert from_b["automations"] == [] and from_b["left_out"] == [{"id": str(world.automation_a),
                                                                    "reason": "not found"}]
    # Another org, the caller not a member of it: PT404 like an org that does not exist.
    assert refused(lambda: export(conn, world["other_admin"], world.org_a), "PT404").detail == \
        refused(lambda: export(conn, world["other_admin"], NOWHERE), "PT404").detail | {"org_id": str(world.org_a)}


def test_an_export_takes_a_filter_the_version_deployed_to_an_environment_or_a_version(conn, world, org_a):
    assert [a["slug"] for a in export(conn, world["viewer"], org_a, {"where": {"type": "api_gateway"}})
            ["automations"]] == ["edge-gw"]
    edge = export(conn, world["viewer"], org_a, {"where": {"tags": ["edge"]}})["automations"][0]
    save(conn, world["editor"], call(conn, world["viewer"], "select (cfg.find_automation('org-a/edge-gw')).id as r"),
         1, content({"routes": {"prefix": "/v2"}, "tls": {"cert": ("secret",)}}))
    latest = export(conn, world["viewer"], org_a, {"where": {"tags": ["edge"]}})["automations"][0]
    assert latest["version"] == 2 and latest["content"]["sections"]["routes"]["entries"]["prefix"]["value"] == "/v2"
    assert export(conn, world["viewer"], org_a, {"where": {"tags": ["edge"]}}, version=1)["automations"][0] == edge
    # Saves land in dev; nothing was promoted to staging.
    assert export(conn, world["viewer"], org_a, {"where": {"tags": ["edge"]}}, env="dev")["automations"][0] == latest
    staged = export(conn, world["viewer"], org_a, {"where": {"tags": ["edge"]}}, env="staging")
    assert staged["automations"] == [] and staged["left_out"] == [{"slug": "edge-gw",
                                                                   "reason": "not deployed to staging"}]
    refused(lambda: export(conn, world["viewer"], org_a, env="nowhere"), "PT404")
    refused(lambda: export(conn, world["viewer"], org_a, env="dev", version=1))
    refused(lambda: export(conn, world["viewer"], org_a, {"where": {"colour": "red"}}))


def test_secret_values_only_for_who_may_reveal_them_each_read_audited(conn, world, org_a):
    refused(lambda: export(conn, world["viewer"], org_a, include_secrets=True), "PT403")
    document = export(conn, world["editor"], org_a, include_secrets=True)
    assert document["secret_values"] is True
    assert document["automations"][0]["content"]["sections"]["http"]["entries"]["api_key"]["value"] == SECRET
    assert document["automations"][1]["content"]["sections"]["tls"]["entries"]["cert"]["value"] == "pem-secret"
    audit = conn.execute("select new_values from cfg.audit_log where operation = 'REVEAL' order by id").fetchall()
    events = conn.execute("select payload from cfg_private.events where type = 'secret.revealed'").fetchall()
    conn.commit()
    assert sorted((a["new_values"]["key"], a["new_values"]["reason"]) for a in audit) == [
        ("api_key", "export"), ("cert", "export")]
    assert len(events) == 2
    assert SECRET not in json.dumps([a["new_values"] for a in audit] + [e["payload"] for e in events])
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.set_secret_reveal_role(%s, 'admin')", (org_a,))
    refused(lambda: export(conn, world["editor"], org_a, include_secrets=True), "PT403")
    assert export(conn, world["admin"], org_a, include_secrets=True)["secret_values"] is True


def test_a_dry_run_says_what_an_import_would_do_and_changes_nothing(conn, world, org_a):
    document = export(conn, world["editor"], org_a, include_secrets=True)
    target = new_org(conn, world["admin"], "org-c")
    before = fingerprint(conn)
    preview = import_(conn, world["admin"], target, document)
    assert fingerprint(conn) == before
    assert preview["dry_run"] is True and preview["summary"] == {
        "create": 3, "update": 0, "unchanged": 0, "skipped": 0, "refused": 0}
    assert [(i["slug"], i["action"], i["version"]) for i in preview["items"]] == [
        ("billing", "create", 1), ("edge-gw", "create", 1), ("worker", "create", 1)]
    # Into org A itself: nothing to do.
    again = import_(conn, world["editor"], org_a, document)
    assert [i["action"] for i in again["items"]] == ["unchanged"] * 3
    assert fingerprint(conn) == before


def test_round_trip_into_an_empty_org_gives_the_same_document(conn, world, org_a):
    source = export(conn, world["admin"], org_a, include_secrets=True)
    target = new_org(conn, world["admin"], "org-c")
    done = import_(conn, world["admin"], target, source, dry_run=False, message="from A")
    assert done["summary"]["create"] == 3 and done["summary"]["refused"] == 0
    copy = export(conn, world["admin"], target, include_secrets=True)
    # Equal apart from the org's slug (no ids, no timestamps in either).
    assert copy | {"org": "org-a"} == source
    masked_source, masked_copy = export(conn, world["viewer"], org_a), export(conn, world["admin"], target)
    assert masked_copy | {"org": "org-a"} == masked_source
    versions = conn.execute(
        "select v.kind, v.message, d.source from cfg.config_versions as v"
        " join cfg.deployment_history as d on d.version_id = v.id where v.org_id = %s", (target,)).fetchall()
    conn.commit()
    assert {(v["kind"], v["message"], v["source"]) for v in versions} == {("import", "from A", "import")}
    # The values went to Vault, not into a table.
    assert conn.execute("select count(*) as n from cfg.config_entries where value::text like %s",
                        (f"%{SECRET}%",)).fetchone()["n"] == 0


def test_without_values_a_new_automation_lists_its_secrets_an_existing_one_keeps_them(conn, world, org_a):
    masked = export(conn, world["admin"], org_a)
    target = new_org(conn, world["admin"], "org-c")
    done = import_(conn, world["admin"], target, masked, dry_run=False)
    billing = done["items"][0]
    assert billing["action"] == "create" and billing["secrets_needing_value"] == [{"section": "http", "key": "api_key"}]
    created = export(conn, world["admin"], target)["automations"][0]["content"]["sections"]["http"]["entries"]
    assert "api_key" not in created and created["port"]["value"] == 8080
    # Back into A, with a change: A's secret keeps its value.
    masked["automations"][0]["content"]["sections"]["http"]["entries"]["port"]["value"] = 9090
    update = import_(conn, world["editor"], org_a, masked, dry_run=False)["items"][0]
    assert update["action"] == "update" and update["secrets_needing_value"] == []
    assert [(c["key"], c["change"]) for c in update["diff"]["changes"]] == [("port", "changed")]
    revealed = call(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as r",
                    (world.automation_a,))
    assert revealed["value"] == SECRET


def test_conflict_policies_fail_skip_and_overwrite(conn, world, org_a):
    document = export(conn, world["viewer"], org_a, {"where": {"text": "worker"}})
    document["automations"][0]["content"]["sections"]["jobs"]["entries"]["cron"]["value"] = "*/5 * * * *"
    worker = call(conn, world["viewer"], "select (cfg.find_automation('org-a/worker')).id as r")
    # Nobody saved since the export: fail lets it through.
    assert import_(conn, world["editor"], org_a, document)["items"][0]["action"] == "update"
    save(conn, world["editor"], worker, 1, content({"jobs": {"cron": "@daily"}}), "meanwhile")
    failed = import_(conn, world["editor"], org_a, document)["items"][0]
    assert failed["action"] == "refused" and failed["code"] == "PT409"
    assert failed["errors"] == [{"path": "version", "message": failed["message"]}]
    # Given the version it is known at now, it goes through.
    assert import_(conn, world["editor"], org_a, document, base_versions={"worker": 2})["items"][0]["action"] == \
        "update"
    skipped = import_(conn, world["editor"], org_a, document, on_conflict="skip", dry_run=False)["items"][0]
    assert skipped == {"slug": "worker", "action": "skipped", "version": 2}
    done = import_(conn, world["editor"], org_a, document, on_conflict="overwrite", dry_run=False)["items"][0]
    assert done["action"] == "update" and done["version"] == 3
    assert [(c["key"], c["change"], c.get("old_value"), c["new_value"]) for c in done["diff"]["changes"]] == [
        ("cron", "changed", "@daily", "*/5 * * * *"), ("unicode", "added", None, "grüße ✓")]


def test_into_another_org_fail_means_changed_since_the_last_import(conn, world, org_a):
    document = export(conn, world["viewer"], org_a, {"where": {"text": "worker"}})
    target = new_org(conn, world["admin"], "org-c")
    import_(conn, world["admin"], target, document, dry_run=False)
    document["automations"][0]["name"] = "Worker two"
    # The copy was only ever imported: the next import updates it.
    assert import_(conn, world["admin"], target, document)["items"][0]["fields"] == ["name"]
    copy = call(conn, world["admin"], "select (cfg.find_automation('org-c/worker')).id as r")
    save(conn, world["admin"], copy, 1, content({"jobs": {"cron": "@hourly"}}), "by hand")
    assert import_(conn, world["admin"], target, document)["items"][0]["action"] == "refused"
    assert import_(conn, world["admin"], target, document, on_conflict="overwrite")["items"][0]["action"] == "update"


def test_each_item_is_refused_alone_by_rules_types_and_roles(conn, world, org_a):
    document = export(conn, world["viewer"], org_a)
    with acting_as(conn, world["admin"]) as cur:
        gateway = cur.execute("select id from cfg.automation_types where org_id = %s and slug = 'api_gateway'",
                              (org_a,)).fetchone()["id"]
        cur.execute("select cfg.add_validation_rule(%s, %s::jsonb)", (gateway, json.dumps(
            {"name": "short timeout", "section": "routes", "key": "timeout", "schema": {"maximum": 10}})))
    document["automations"][1]["content"]["sections"]["routes"]["entries"]["timeout"]["value"] = 20
    document["automations"][2]["type"] = "cron_job"
    result = import_(conn, world["editor"], org_a, document, dry_run=False)
    billing, edge, worker = result["items"]
    assert billing["action"] == "unchanged"
    assert edge["action"] == "refused" and edge["code"] == "PT422"
    assert any(e["path"].endswith("timeout") or "timeout" in json.dumps(e) for e in edge["errors"])
    assert worker["action"] == "refused" and "type" in worker["message"]
    # An org without the type: that item is refused, the others created.
    target = new_org(conn, world["other_admin"], "org-c")
    with acting_as(conn, world["other_admin"]) as cur:
        cur.execute("delete from cfg.automation_types where org_id = %s and slug = 'api_gateway'", (target,))
    created = import_(conn, world["other_admin"], target, export(conn, world["viewer"], org_a), dry_run=False)
    assert [(i["slug"], i["action"]) for i in created["items"]] == [
        ("billing", "create"), ("edge-gw", "refused"), ("worker", "create")]
    assert created["items"][1]["errors"] == [{"path": "type", "message": created["items"][1]["message"]}]
    # Viewers import nothing; another org's admin cannot see org A.
    refused(lambda: import_(conn, world["viewer"], org_a, document), "PT403")
    refused(lambda: import_(conn, world["other_admin"], org_a, document), "PT404")


ITEM = {"slug": "x", "name": "X", "type": "service", "status": "active", "tags": [], "description": "",
        "version": 1, "origin": None, "content": {"sections": {}}}


def _doc(**changes):
    return {"format": "cfgctl.export", "format_version": 1, "org": "org-a", "env": None, "secret_values": False,
            "left_out": [], "automations": [ITEM]} | changes


BAD_DOCUMENTS = [
    ([], ""),
    (_doc(format="other"), "format"),
    (_doc(format_version=2), "format_version"),
    (_doc(format_version="1"), "format_version"),
    (_doc(automations={}), "automations"),
    (_doc(extra=1), "extra"),
    (_doc(automations=[1]), "automations[0]"),
    (_doc(automations=[ITEM | {"slug": "x'; drop table cfg.automations; --"}]),
     "automations[0].slug"),
    (_doc(automations=[ITEM, ITEM]), "automations[1].slug"),
    (_doc(automations=[ITEM | {"status": "gone"}]), "automations[0].status"),
    (_doc(automations=[ITEM | {"tags": [1]}]), "automations[0].tags"),
    (_doc(automations=[ITEM | {"content": {"sections": {"s": {"entries": {"k k": {"value": 1}}}}}}]),
     "automations[0].content.sections.s.entries.k k"),
    (_doc(automations=[ITEM | {"content": []}]), "automations[0].content"),
    (_doc(automations=[ITEM] * 10001), "automations"),
]


def test_a_bad_document_is_refused_whole_and_changes_nothing(conn, world):
    before = fingerprint(conn)
    for document, path in BAD_DOCUMENTS:
        error = refused(lambda d=document: import_(conn, world["editor"], world.org_a, d, dry_run=False))
        assert path in [e["path"] for e in error.detail["errors"]], (path, error.detail)
    assert fingerprint(conn) == before


def test_a_future_format_says_to_upgrade_and_sql_looking_text_is_only_text(conn, world):
    error = refused(lambda: import_(conn, world["editor"], world.org_a, _doc(format_version=7)))
    assert "newer cfgctl" in str(error)
    sneaky = "Robert'); drop table cfg.automations; --"
    document = _doc(automations=[ITEM | {"name": sneaky, "description": sneaky, "tags": [sneaky],
                                                             "content": {"sections": {"s": {"entries": {
                                                                 "k": {"value": sneaky}}}}}}])
    assert import_(conn, world["editor"], world.org_a, document, dry_run=False)["items"][0]["action"] == "create"
    made = export(conn, world["viewer"], world.org_a, {"where": {"text": "robert"}})["automations"][0]
    assert made["name"] == sneaky and made["tags"] == [sneaky]
    assert made["content"]["sections"]["s"]["entries"]["k"]["value"] == sneaky
    refused(lambda: import_(conn, world["editor"], world.org_a, document, on_conflict="merge"))
    refused(lambda: import_(conn, world["editor"], world.org_a, document, base_versions={"x": "one"}))


def test_the_dry_run_says_exactly_what_the_import_then_does(conn, world, org_a):
    document = export(conn, world["viewer"], org_a)
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.add_validation_rule(t.id, %s::jsonb) from cfg.automation_types as t"
                    " where t.org_id = %s and t.slug = 'service'", (json.dumps(
                        {"name": "hourly at most", "section": "jobs", "key": "cron", "severity": "warning",
                         "schema": {"pattern": "^0 "}}), org_a))
        cur.execute("select cfg.add_validation_rule(t.id, %s::jsonb) from cfg.automation_types as t"
                    " where t.org_id = %s and t.slug = 'api_gateway'", (json.dumps(
                        {"name": "short timeout", "section": "routes", "key": "timeout", "schema": {"maximum": 10}}),
                        org_a))
    billing, edge, worker = document["automations"]
    billing["content"]["sections"]["http"]["entries"]["port"]["value"] = 8081
    billing["tags"] = ["moved"]
    edge["content"]["sections"]["routes"]["entries"]["timeout"]["value"] = 20
    worker["content"]["sections"]["jobs"]["entries"]["cron"]["value"] = "*/5 * * * *"
    document["automations"].append(worker | {"slug": "worker-2", "type": "worker"})
    document["automations"].append(worker | {"slug": "worker-3", "type": "no-such-type"})
    preview = import_(conn, world["editor"], org_a, document)
    done = import_(conn, world["editor"], org_a, document, dry_run=False)
    assert [(i["slug"], i["action"]) for i in done["items"]] == [
        ("billing", "update"), ("edge-gw", "refused"), ("worker", "update"), ("worker-2", "create"),
        ("worker-3", "refused")]
    assert done["items"][2]["warnings"][0]["rule_name"] == "hourly at most"
    assert preview | {"dry_run": False} == done


def test_provenance_is_exported_by_slugs_and_stays_behind_on_import(conn, world, org_a):
    add_member(conn, world["other_admin"], world.org_b, world["admin"], "editor")
    with acting_as(conn, world["admin"]) as cur:
        template = cur.execute("select id from cfg.add_template(%s, 'service', 'std', 'Std', %s::jsonb)",
                               (org_a, json.dumps(content({"http": {"port": 80}})))).fetchone()["id"]
        made = cur.execute("select cfg.create_automation_from_template(%s, %s, 'From', 'from-std') as r",
                           (org_a, template)).fetchone()["r"]["automation"]["id"]
        cur.execute("select cfg.clone_automation(%s, 'Copy', 'copy-of-std')", (made,))
        cur.execute("select cfg.clone_automation(%s, 'Away', 'away', target_org_id => %s)", (made, world.org_b))
    origins = {a["slug"]: a["origin"] for a in export(conn, world["viewer"], org_a)["automations"]}
    assert origins == {"billing": None, "edge-gw": None, "worker": None,
                       "from-std": {"template": "std", "template_version": 1},
                       "copy-of-std": {"source": "from-std", "source_version": 1}}
    # Org B's clone came from org A: its source shows to who can see it there, else its version.
    assert export(conn, world["admin"], world.org_b, {"where": {"text": "away"}})["automations"][0]["origin"] == {
        "source": "from-std", "source_org": "org-a", "source_version": 1}
    away = export(conn, world["other_admin"], world.org_b, {"where": {"text": "away"}})["automations"][0]
    assert away["origin"] == {"source_version": 1}
    # An import records its own provenance (versions of kind import): not the source org's.
    target = new_org(conn, world["admin"], "org-c")
    import_(conn, world["admin"], target, export(conn, world["admin"], org_a, include_secrets=True), dry_run=False)
    assert {a["origin"] for a in export(conn, world["admin"], target)["automations"]} == {None}
