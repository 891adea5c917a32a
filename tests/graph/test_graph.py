"""The dependency graph (issue 15): references extracted from every version written,
checked on save (missing, invisible, malformed, cycles of 1, 2 and 10, a 10,000 chain),
resolved per environment, the impact radius (with and without keys, in dry runs, the
promote preview and events), the graph of a past version, and deleting what others use."""

from __future__ import annotations

import json
import time

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.versioning import content, head, save
from tests.support.world import add_member

BILLING = {"http": {"base_url": "https://billing.test", "port": 8080, "api_key": ("secret", "sk_live_graph")}}


def one(conn, who, sql, params=()):
    with acting_as(conn, who) as cur:
        row = cur.execute(sql, params).fetchone()
        return None if row is None else next(iter(row.values()))


def refused(fn, code="PT422"):
    with pytest.raises(CfgError) as caught:
        fn()
    assert caught.value.code == code, caught.value
    return caught.value


def automation(conn, who, org, slug):
    return one(conn, who, "select id from cfg.create_automation(%s, %s, %s)", (org, slug.title(), slug))


def put(conn, who, automation_id, sections, message=""):
    return save(conn, who, automation_id, head(conn, automation_id), content(sections), message)


def edges(conn, automation_id):
    rows = conn.execute(
        "select r.path, r.kind, r.to_section || '.' || r.to_key as key, a.slug as target "
        "from cfg.version_references r join cfg.automations a on a.id = r.to_automation_id "
        "where r.version_id = (select id from cfg.config_versions where automation_id = %s "
        "order by version desc limit 1) "
        "order by r.path, r.kind", (automation_id,)).fetchall()
    conn.commit()
    return [(r["path"], r["kind"], r["key"], r["target"]) for r in rows]


@pytest.fixture
def billing(conn, world):
    """org A's `billing` with http.base_url, http.port and a secret http.api_key."""
    put(conn, world["editor"], world.automation_a, BILLING)
    return world.automation_a


def test_references_anywhere_in_a_value_are_edges_with_kinds_and_paths(conn, world, billing):
    gateway = automation(conn, world["admin"], world.org_a, "gateway")
    web = automation(conn, world["admin"], world.org_a, "web")
    put(conn, world["editor"], web, {"api": {
        "base": {"ref": "billing/http.base_url"},
        "url": "${ref:billing/http.base_url}/v1?port=${ref:billing/http.port}",
        "literal": "$${ref:billing/http.base_url} stays",
        "nested": {"a": [1, {"b": {"ref": "billing/http.port"}}]},
        "key": {"ref": "billing/http.api_key"},
        "needs": {"ref": "gateway"},
        # Not a reference: more than the one key.
        "data": {"ref": "billing/http.port", "note": "x"},
    }})
    p = "sections.api.entries."
    assert edges(conn, web) == [
        (p + "base.value", "value", "http.base_url", "billing"),
        (p + "key.value", "secret", "http.api_key", "billing"),
        (p + "needs.value", "declared", None, "gateway"),
        (p + "nested.value.a[1].b", "value", "http.port", "billing"),
        (p + "url.value", "value", "http.base_url", "billing"),
        (p + "url.value", "value", "http.port", "billing"),
    ]
    assert gateway
    # Resolved against what billing runs in dev; the secret stays masked.
    resolved = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'dev')", (web,))
    api = {k: v["value"] for k, v in resolved["content"]["sections"]["api"]["entries"].items()}
    assert api["base"] == "https://billing.test"
    assert api["url"] == "https://billing.test/v1?port=8080"
    assert api["literal"] == "${ref:billing/http.base_url} stays"
    assert api["nested"] == {"a": [1, {"b": 8080}]}
    assert api["key"] == {"ref": "billing/http.api_key"} and api["needs"] == {"ref": "gateway"}
    assert resolved["masked"] == [{"path": p + "key.value", "ref": "billing/http.api_key"}]
    assert resolved["unresolved"] == []
    assert "sk_live_graph" not in json.dumps(resolved)
    # Asking to reveal: a viewer may not (masked, no reveal recorded), an admin may (audited).
    again = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'dev', reveal => true)", (web,))
    assert again["masked"] and "sk_live_graph" not in json.dumps(again)
    revealed = one(conn, world["admin"], "select cfg.resolve_config(%s, 'dev', reveal => true)", (web,))
    assert revealed["content"]["sections"]["api"]["entries"]["key"]["value"] == "sk_live_graph"
    assert revealed["masked"] == []
    reveals = conn.execute("select count(*) as n from cfg.audit_log where operation = 'REVEAL' and automation_id = %s",
                           (billing,)).fetchone()["n"]
    conn.commit()
    assert reveals == 1
    # No value of a reference (nor the secret) in the edges, the events or the audit.
    dumps = json.dumps([dict(r) for r in conn.execute(
        "select to_jsonb(r) as x from cfg.version_references r union all select payload from cfg_private.events "
        "where type <> 'secret.revealed'").fetchall()], default=str)
    conn.commit()
    assert "sk_live_graph" not in dumps and "billing.test" not in dumps


@pytest.mark.parametrize("value, message", [
    ({"ref": 5}, "a string"),
    ({"ref": "Not A Slug!"}, "malformed reference"),
    ("${ref:billing/http.port", "unterminated"),
    ("${ref:billing}", "needs a key"),
    ({"ref": "nowhere/http.port"}, "not found"),
    ({"ref": "billing/http.nope"}, "is not an entry"),
    ({"ref": "billing/nodot"}, "is not an entry"),
    # Another org's automation answers like one that does not exist.
    ({"ref": "org-b:other/main.x"}, "not found"),
    ({"ref": "org-nowhere:other/main.x"}, "not found"),
])
def test_bad_references_are_refused_with_their_path_and_change_nothing(conn, world, billing, value, message):
    web = automation(conn, world["admin"], world.org_a, "web")
    put(conn, world["other_admin"], world.automation_b, {"main": {"x": 1}})
    error = refused(lambda: put(conn, world["editor"], web, {"api": {"ok": 1, "bad": {"deep": [value]}}}))
    assert error.detail["errors"][0]["path"] == "sections.api.entries.bad.value.deep[0]"
    assert message in error.detail["errors"][0]["message"]
    assert head(conn, web) == 0
    assert conn.execute("select count(*) as n from cfg.version_references").fetchone()["n"] == 0
    conn.commit()


def chain(conn, who, org, slugs, last_to=None):
    """slugs[i] references slugs[i+1] (the last one, last_to, if given); saved from the end."""
    ids = {s: automation(conn, who, org, s) for s in slugs}
    put(conn, who, ids[slugs[-1]], {"main": {"x": 1}})
    for i in range(len(slugs) - 2, -1, -1):
        put(conn, who, ids[slugs[i]], {"main": {"x": {"ref": f"{slugs[i + 1]}/main.x"}}})
    return ids


@pytest.mark.parametrize("length", [1, 2, 10])
def test_cycles_are_refused_with_the_cycle(conn, world, length):
    slugs = [f"c{i}" for i in range(length)]
    ids = chain(conn, world["admin"], world.org_a, slugs)
    # Closing it: the last references the first (itself, for a cycle of one).
    error = refused(lambda: put(conn, world["admin"], ids[slugs[-1]], {"main": {"x": {"ref": f"{slugs[0]}/main.x"}}}))
    assert error.detail["cycle"] == [slugs[-1], *slugs]
    assert error.detail["errors"][0]["path"] == "sections.main.entries.x.value"
    assert "reference cycle: " + " -> ".join([slugs[-1], *slugs]) in str(error)
    assert head(conn, ids[slugs[-1]]) == 1


def test_a_chain_of_10000_neither_blows_the_stack_nor_takes_seconds(conn, world):
    # Built as the DBA (10,000 saves would take minutes): automations, one version each,
    # n{i} referencing n{i+1}. Their own triggers (audit, events) are not what is tested.
    conn.execute("set session_replication_role = replica")
    conn.execute("""
        insert into cfg.automations (org_id, name, slug)
        select %(org)s, 'N' || i, 'n' || i from generate_series(0, 9999) as i""", {"org": world.org_a})
    conn.execute("""
        insert into cfg.config_versions (org_id, automation_id, version, content, content_hash, kind, author_role)
        select %(org)s, a.id, 1, '{"sections": {"main": {"description": "", "position": 0,
            "entries": {"x": {"secret": false, "value": 1, "description": ""}}}}}',
            md5(a.slug), 'save', 'postgres'
        from cfg.automations a where a.org_id = %(org)s and a.slug ~ '^n[0-9]+$'""", {"org": world.org_a})
    conn.execute("""
        insert into cfg.version_references (org_id, version_id, from_automation_id, version, to_org_id,
            to_automation_id, to_section, to_key, kind, path, ref)
        select %(org)s, v.id, v.automation_id, 1, %(org)s, t.id, 'main', 'x', 'value', 'sections.main.entries.x.value',
            'n' || (substr(a.slug, 2)::int + 1) || '/main.x'
        from cfg.automations a join cfg.config_versions v on v.automation_id = a.id
        join cfg.automations t on t.org_id = a.org_id and t.slug = 'n' || (substr(a.slug, 2)::int + 1)
        where a.org_id = %(org)s and a.slug ~ '^n[0-9]+$'""", {"org": world.org_a})
    conn.execute("set session_replication_role = origin")
    conn.commit()
    last = conn.execute("select id from cfg.automations where slug = 'n9999'").fetchone()["id"]
    conn.commit()
    started = time.monotonic()
    error = refused(lambda: save(conn, world["admin"], last, 1, content({"main": {"x": {"ref": "n0/main.x"}}})))
    took = time.monotonic() - started
    assert len(error.detail["cycle"]) == 10_001 and error.detail["cycle"][:3] == ["n9999", "n0", "n1"]
    assert took < 3, took
    # The radius of the end of the chain, bounded by depth (one query per level).
    near = one(conn, world["viewer"], "select cfg.impact(%s, max_depth => 50)", (last,))
    assert near["count"] == 50 and near["automations"][-1]["slug"] == "n9949"
    assert near["automations"][-1]["path"][:2] == ["n9999", "n9998"] and not near["truncated"]
    # Without a bound, the walk stops at the level that fills the page (a level more, to
    # know there is more): a page, not 9,999 levels.
    page = one(conn, world["viewer"], "select cfg.impact(%s)", (last,))
    assert (page["count"], len(page["automations"]), page["truncated"]) == (101, 100, True)
    assert page["next_cursor"] == "100:n9899" and page["summary"].startswith("changing n9999 affects at least 101 ")


@pytest.fixture
def radius(conn, world, billing):
    """web and api2 reference billing (web: base_url and port, api2: port); deep references web."""
    ids = {s: automation(conn, world["admin"], world.org_a, s) for s in ("web", "api2", "deep")}
    put(conn, world["editor"], ids["web"], {"api": {"base": "${ref:billing/http.base_url}/v1",
                                                    "port": {"ref": "billing/http.port"}}})
    put(conn, world["editor"], ids["api2"], {"api": {"port": {"ref": "billing/http.port"}}})
    put(conn, world["editor"], ids["deep"], {"api": {"upstream": {"ref": "web/api.base"}}})
    return ids


def test_impact_with_and_without_keys(conn, world, billing, radius):
    everything = one(conn, world["viewer"], "select cfg.impact(%s)", (billing,))
    assert [(a["slug"], a["depth"]) for a in everything["automations"]] == [("api2", 1), ("web", 1), ("deep", 2)]
    deep = everything["automations"][2]
    assert deep["path"] == ["billing", "web", "deep"] and deep["keys"] == ["api.base"]
    assert everything["summary"] == "changing billing affects 3 automations: api2, web, deep"
    keyed = one(conn, world["viewer"], "select cfg.impact(%s, array['http.base_url'])", (billing,))
    assert [(a["slug"], a["depth"]) for a in keyed["automations"]] == [("web", 1), ("deep", 2)]
    assert keyed["summary"] == "changing http.base_url affects 2 automations: web, deep"
    assert one(conn, world["viewer"], "select cfg.impact(%s, max_depth => 1)", (billing,))["count"] == 2
    assert one(conn, world["viewer"], "select cfg.impact(%s, array['http.nothing'])", (billing,))["count"] == 0
    error = refused(lambda: one(conn, world["viewer"], "select cfg.impact(%s, array['nodot', null], max_depth => 0)",
                                (billing,)))
    assert [e["path"] for e in error.detail["errors"]] == ["keys[0]", "keys[1]", "max_depth"]


def test_dry_runs_report_the_impact_and_keep_nothing(conn, world, billing, radius):
    events = conn.execute("select count(*) as n from cfg_private.events").fetchone()["n"]
    conn.commit()
    changed = content({**BILLING, "http": {**BILLING["http"], "base_url": "https://new.test", "api_key": ("secret",)}})
    before = head(conn, billing)
    dry = one(conn, world["editor"], "select cfg.save_config(%s, %s, %s::jsonb, 'x', dry_run => true)",
              (billing, before, json.dumps(changed)))
    assert dry["dry_run"] is True and dry["created"] is True and dry["version"] == before + 1
    assert dry["impact"]["summary"] == "changing http.base_url affects 2 automations in dev: web, deep"
    patched = one(conn, world["editor"], "select cfg.patch_config(%s, set => %s::jsonb, dry_run => true)",
                  (billing, json.dumps({"http": {"port": {"value": 9}}})))
    assert patched["impact"]["keys"] == ["http.port"] and patched["impact"]["count"] == 3
    assert head(conn, billing) == before
    assert conn.execute("select count(*) as n from cfg_private.events").fetchone()["n"] == events
    conn.commit()
    # A dry run is still checked: a bad reference is refused as by a real save.
    refused(lambda: one(conn, world["editor"], "select cfg.patch_config(%s, set => %s::jsonb, dry_run => true)",
                        (radius["web"], json.dumps({"api": {"x": {"value": {"ref": "nowhere"}}}}))))
    # A real save's event names the automations that reference a changed key directly.
    one(conn, world["editor"], "select cfg.patch_config(%s, set => %s::jsonb)",
        (billing, json.dumps({"http": {"base_url": {"value": "https://new.test"}}})))
    payload = conn.execute("select payload from cfg_private.events where type = 'config.saved' and automation_id = %s "
                           "order by id desc limit 1", (billing,)).fetchone()["payload"]
    conn.commit()
    assert payload["affected"] == {"count": 1, "automation_ids": [str(radius["web"])]}


def test_resolution_and_impact_per_environment_after_a_promotion(conn, world, billing, radius):
    web = radius["web"]
    for a in (billing, web):
        one(conn, world["editor"], "select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (a,))
    one(conn, world["editor"], "select cfg.patch_config(%s, set => %s::jsonb)",
        (billing, json.dumps({"http": {"base_url": {"value": "https://v2.test"}}})))
    dev = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'dev')", (web,))
    staging = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'staging')", (web,))
    assert dev["content"]["sections"]["api"]["entries"]["base"]["value"] == "https://v2.test/v1"
    assert staging["content"]["sections"]["api"]["entries"]["base"]["value"] == "https://billing.test/v1"
    # prod runs nothing of web; of billing nothing either.
    refused(lambda: one(conn, world["viewer"], "select cfg.resolve_config(%s, 'prod')", (web,)), "PT404")
    # The preview of promoting billing to staging: in staging only web references it.
    preview = one(conn, world["editor"], "select cfg.promote(%s, 'dev', 'staging')", (billing,))
    assert preview["impact"]["summary"] == "changing http.base_url affects 1 automation in staging: web"
    assert "diff" in preview and "validation" in preview
    # api2 runs only in dev: in staging it is outside the radius.
    assert [a["slug"] for a in one(conn, world["viewer"], "select cfg.impact(%s, env => 'staging')",
                                   (billing,))["automations"]] == ["web"]
    # deep resolves web's base, which it runs in dev, but web's own reference is not followed.
    deep = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'dev')", (radius["deep"],))
    assert deep["content"]["sections"]["api"]["entries"]["upstream"]["value"] == "${ref:billing/http.base_url}/v1"
    # Apart from the resolved values, the content is get_config's, secrets masked alike.
    resolved = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'dev')", (billing,))["content"]
    assert resolved == one(conn, world["viewer"], "select cfg.get_config(%s)", (billing,))["content"]
    assert "sk_live_graph" not in json.dumps(resolved)


def test_the_graph_now_in_an_environment_and_of_a_past_version(conn, world, billing, radius):
    web = radius["web"]
    put(conn, world["editor"], web, {"api": {"base": "plain"}})
    graph = one(conn, world["viewer"], "select cfg.dependency_graph(%s)", (world.org_a,))
    slugs = {n["automation_id"]: n["slug"] for n in graph["nodes"]}
    assert sorted(slugs.values()) == ["api2", "billing", "deep", "web"]
    assert sorted((slugs[e["from"]], slugs[e["to"]], e["kind"], tuple(e["keys"])) for e in graph["edges"]) == [
        ("api2", "billing", "value", ("http.port",)), ("deep", "web", "value", ("api.base",))]
    node = next(n for n in graph["nodes"] if n["slug"] == "billing")
    assert node["type"] == "service" and node["status"] == "active" and node["badge"] in ("valid", "unchecked")
    past = one(conn, world["viewer"], "select cfg.dependency_graph(%s, version => 1, automation_id => %s)",
               (world.org_a, web))
    assert sorted((e["kind"], tuple(e["keys"])) for e in past["edges"]) == [("value", ("http.base_url", "http.port"))]
    assert sorted(n["slug"] for n in past["nodes"]) == ["billing", "web"]
    refused(lambda: one(conn, world["viewer"], "select cfg.dependency_graph(%s, version => 9, automation_id => %s)",
                        (world.org_a, web)), "PT404")
    refused(lambda: one(conn, world["viewer"], "select cfg.dependency_graph(%s, version => 1)", (world.org_a,)))
    staging = one(conn, world["viewer"], "select cfg.dependency_graph(%s, env => 'staging')", (world.org_a,))
    assert staging["edges"] == []


def test_a_reference_across_orgs_is_seen_only_by_members_of_both(conn, world, billing):
    # org A's admin becomes a member of org B, whose `other` has main.url.
    add_member(conn, world["other_admin"], world.org_b, world["admin"], "editor")
    put(conn, world["other_admin"], world.automation_b, {"main": {"url": "https://b.test"}})
    # A member of A only cannot reference B (as if it did not exist); a member of both can.
    refused(lambda: put(conn, world["editor"], billing, {"http": {"up": {"ref": "org-b:other/main.url"}}}))
    put(conn, world["admin"], billing, {**BILLING, "ext": {"up": {"ref": "org-b:other/main.url"}}})
    seen = "select count(*) from cfg.version_references where to_org_id <> org_id"
    assert one(conn, world["admin"], seen) == 1
    assert one(conn, world["viewer"], seen) == 0 and one(conn, world["other_admin"], seen) == 0
    # Impact of B's automation: A's admin sees billing, B's admin (not in A) nothing.
    assert [a["name"] for a in one(conn, world["admin"], "select cfg.impact(%s)",
                                   (world.automation_b,))["automations"]] == ["org-a:billing"]
    assert one(conn, world["other_admin"], "select cfg.impact(%s)", (world.automation_b,))["count"] == 0
    # Resolution: A's admin gets B's value, A's viewer an unresolved reference.
    mine = one(conn, world["admin"], "select cfg.resolve_config(%s, 'dev')", (billing,))
    assert mine["content"]["sections"]["ext"]["entries"]["up"]["value"] == "https://b.test"
    theirs = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'dev')", (billing,))
    assert theirs["unresolved"] == [{"path": "sections.ext.entries.up.value", "ref": "org-b:other/main.url",
                                     "message": "not found (or you are not a member of its org)"}]
    # The graph of A: for its viewer no trace of B.
    graph = one(conn, world["viewer"], "select cfg.dependency_graph(%s)", (world.org_a,))
    assert graph["edges"] == [] and all(not n["external"] for n in graph["nodes"])
    # B's admin cannot delete `other` while billing references it: counted, not named.
    error = refused(lambda: one(conn, world["other_admin"], "select cfg.delete_automation(%s)",
                                (world.automation_b,)), "PT409")
    assert error.detail["dependents"] == [] and error.detail["hidden_dependents"] == 1


def test_deleting_a_referenced_automation_needs_force(conn, world, billing, radius):
    error = refused(lambda: one(conn, world["admin"], "select cfg.delete_automation(%s)", (billing,)), "PT409")
    assert [d["name"] for d in error.detail["dependents"]] == ["api2", "web"]
    assert "referenced by 2 automation(s): api2, web" in str(error)
    refused(lambda: one(conn, world["editor"], "select cfg.delete_automation(%s, force => true)", (billing,)), "PT403")
    one(conn, world["admin"], "select cfg.delete_automation(%s, force => true)", (billing,))
    after = one(conn, world["viewer"], "select cfg.resolve_config(%s, 'dev')", (radius["web"],))
    assert [u["path"] for u in after["unresolved"]] == [
        "sections.api.entries.base.value", "sections.api.entries.port.value"]
    # An automation nobody references goes without force, as before.
    one(conn, world["admin"], "select cfg.delete_automation(%s)", (radius["deep"],))
