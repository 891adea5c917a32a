"""Search (issue 13): cfg.search over what a member may read, saved filters, quick find.
One world per module: org A with a gateway (a URL, a secret, nested values) deployed to
staging and changed in dev since, and org B with the same words, which org A never sees."""

from __future__ import annotations

import json

import pytest

from sync_service.db import acting_as
from tests.support.rls import run_as, shared_world
from tests.support.versioning import content, save
from tests.support.world import World

URL = "https://api.internal.example.com/v1/users"


def with_content(conn, world: World) -> None:
    admin, editor = world["admin"], world["editor"]
    with acting_as(conn, admin) as cur:
        world.gateway = cur.execute(
            "select id from cfg.create_automation(%s, 'Edge Gateway', 'edge-gateway', 'api_gateway', "
            "'{edge,eu}', 'routes the billing traffic')", (world.org_a,)).fetchone()["id"]
        world.nightly = cur.execute(
            "select id from cfg.create_automation(%s, 'Nightly Report', 'nightly-report', 'cron_job', '{batch}')",
            (world.org_a,)).fetchone()["id"]
    save(conn, editor, world.gateway, 0, content({
        "http": {"base_url": URL, "api_key": ("secret", "sk_live_zebra_unique"), "timeout": 30},
        "routes": {"table": {"main": ["deep", {"target": "ledger-service", "via": "billing"}], "enabled": True}},
    }))
    with acting_as(conn, editor) as cur:
        cur.execute("select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (world.gateway,))
    # dev moves on: staging still runs the old URL.
    save(conn, editor, world.gateway, 1, content({
        "http": {"base_url": "https://api.v2.example.com", "api_key": ("secret",), "timeout": 30},
        "routes": {"table": {"main": ["deep", {"target": "ledger-service", "via": "billing"}], "enabled": True}},
    }))
    save(conn, editor, world.nightly, 0, content({"schedule": {"cron": "0 2 * * *", "note": "billing export"}}))
    with acting_as(conn, world["other_admin"]) as cur:
        other = cur.execute("select id from cfg.create_automation(%s, 'Billing Secret Twin', 'billing-twin')",
                            (world.org_b,)).fetchone()["id"]
    save(conn, world["other_admin"], other, 0, content({"http": {"base_url": URL, "token": "zebra"}}))
    world.twin = other
    conn.execute("select cfg_private.index_search_queue()")  # the job: searches read indexed terms


shared = shared_world("search_behaviour", with_content)


def search(conn, who, query, **kw):
    args = {"query": query, **{k: json.dumps(v) if k == "filters" else v for k, v in kw.items()}}
    named = ", ".join(f"{k} => %({k})s" for k in args)
    out = run_as(conn, who, f"select cfg.search({named}) as r", args)
    assert out.ok, out
    return out.rows[0]["r"]


def paths(answer) -> list[tuple[str, str | None]]:
    return [(r["automation"], r["path"]) for r in answer["results"]]


def test_what_a_later_environment_still_runs_is_found_after_dev_moved_on(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        old = search(conn, world["viewer"], "api.internal.example.com/v1")
        new = search(conn, world["viewer"], "api.v2.example.com")
    # "Which configs in staging still use endpoint X": the exact URL, with where it runs.
    assert [(r["automation"], r["path"], r["environments"]) for r in old["results"]] == [
        ("edge-gateway", "http.base_url", ["staging"])]
    assert [(r["automation"], r["path"], r["environments"]) for r in new["results"]] == [
        ("edge-gateway", "http.base_url", ["dev"])]
    assert "«" in old["results"][0]["snippet"] or "api.internal" in old["results"][0]["snippet"]


def saved(conn, who, automation_id, expected: int, body: dict) -> None:
    """save() inside the test's transaction, the superuser again afterwards."""
    out = run_as(conn, who, "select cfg.save_config(%s, %s, %s::jsonb)", (automation_id, expected, json.dumps(body)))
    assert out.ok, out


def queued(conn, org) -> int:
    return conn.execute("select count(*) as n from cfg_private.search_queue where org_id = %s",
                        (org,)).fetchone()["n"]


def test_a_save_is_found_at_once_and_indexed_by_the_job(shared):
    """A save only queues its entries (migrations/20261204010000_search_index_queue.sql):
    until the job indexes them, a search computes their terms itself, so the new value is
    found at once, the old one no longer, and another org's queued entries stay theirs."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        note = content({"schedule": {"cron": "0 2 * * *", "note": "quarterly"}})
        saved(conn, world["editor"], world.nightly, 1, note)
        saved(conn, world["other_admin"], world.twin, 1, content({"http": {"base_url": URL, "token": "quarterly"}}))
        waiting = queued(conn, world.org_a)
        new, old = (search(conn, world["viewer"], q) for q in ("quarterly", '"billing export"'))
        indexed = conn.execute("select cfg_private.index_search_queue() as n").fetchone()["n"]
        new_after, old_after = (search(conn, world["viewer"], q) for q in ("quarterly", '"billing export"'))
        terms = conn.execute(
            "select es.search_tokens::text as t from cfg_private.entry_search as es "
            "join cfg.config_entries as ce on ce.id = es.entry_id where ce.automation_id = %s and ce.key = 'note'",
            (world.nightly,)).fetchone()["t"]
        left = queued(conn, world.org_a) + queued(conn, world.org_b)
    assert waiting == 1 and indexed >= 2 and left == 0
    assert paths(new) == paths(new_after) == [("nightly-report", "schedule.note")]
    assert old["results"] == old_after["results"] == []
    assert "quarterly" in terms and "export" not in terms


def test_searches_scan_no_pending_list_and_are_planned_once_without_jit(shared):
    """The entries' GIN index keeps no pending list, which every search would scan in full
    (only the index job writes it). cfg.search, search_hits and quick_find keep one plan
    per session and never JIT-compile: for a member of several orgs the estimates passed
    jit_above_cost and compiling took seconds (docs/search.md, "Speed")."""
    conn, _ = shared
    index = conn.execute(
        "select reloptions from pg_class where oid = 'cfg_private.entry_search_tokens_idx'::regclass").fetchone()
    settings = conn.execute(
        "select p.proname, p.proconfig from pg_proc as p where p.oid in ('cfg.search'::regproc, "
        "'cfg_private.search_hits'::regproc, 'cfg.quick_find'::regproc) order by p.proname").fetchall()
    assert index["reloptions"] == ["fastupdate=false"]
    expected = ["jit=off", "plan_cache_mode=force_generic_plan", 'search_path=""']
    assert [(s["proname"], sorted(s["proconfig"])) for s in settings] == [
        ("quick_find", expected), ("search", expected), ("search_hits", expected)]


def test_the_index_job_merges_the_pending_lists_that_searches_would_scan(shared):
    """Saves append to the GIN indexes' pending lists; the job merges them, so that searches
    do not scan them (functions/76_search_index.sql)."""
    conn, world = shared
    lists = ("cfg.automations_search_idx", "cfg.automations_quick_find_idx", "cfg.config_sections_search_idx")
    merge = "select sum(gin_clean_pending_list(i::regclass)) as pages from unnest(%s::text[]) as i"

    def new_automations(first: int) -> None:
        for n in range(first, first + 3):
            made = run_as(conn, world["admin"], "select id from cfg.create_automation(%s, %s, %s)",
                          (world.org_a, f"Pending {n}", f"pending-{n}"))
            saved(conn, world["admin"], made.rows[0]["id"], 0, content({"main": {"k": "v"}}))

    with conn.transaction(force_rollback=True):
        new_automations(0)
        appended = conn.execute(merge, (list(lists),)).fetchone()["pages"]  # without the job
        new_automations(3)
        conn.execute("select cfg_private.index_search_queue()")
        left = conn.execute(merge, (list(lists),)).fetchone()["pages"]
    assert appended >= len(lists) and left == 0


def test_an_entry_made_secret_is_not_found_by_its_old_value_even_before_the_job(shared):
    conn, world = shared
    gateway = {"routes": {"table": {"main": ["deep", {"target": "ledger-service", "via": "billing"}], "enabled": True}}}
    with conn.transaction(force_rollback=True):
        saved(conn, world["editor"], world.gateway, 2, content({
            "http": {"base_url": ("secret", "https://api.v2.example.com"), "api_key": ("secret",), "timeout": 30},
            **gateway}))
        before = search(conn, world["admin"], "api.v2.example.com", org_id=world.org_a)
        conn.execute("select cfg_private.index_search_queue()")
        after = search(conn, world["admin"], "api.v2.example.com", org_id=world.org_a)
        by_key = search(conn, world["viewer"], "base_url", org_id=world.org_a)
        terms = conn.execute(
            "select es.search_tokens::text as t from cfg_private.entry_search as es "
            "join cfg.config_entries as ce on ce.id = es.entry_id where ce.automation_id = %s and ce.key = 'base_url'",
            (world.gateway,)).fetchone()["t"]
    assert before["results"] == after["results"] == []
    assert ("edge-gateway", "http.base_url") in paths(by_key)
    assert "example" not in terms


def test_a_removed_entry_takes_its_terms_with_it(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        saved(conn, world["editor"], world.nightly, 1, content({"schedule": {"cron": "0 2 * * *"}}))
        terms = conn.execute("select count(*) as n from cfg_private.entry_search as es "
                             "where es.automation_id = %s and es.key = 'note'", (world.nightly,)).fetchone()["n"]
        found = search(conn, world["viewer"], '"billing export"')
    assert terms == 0 and found["results"] == []


def test_values_nested_in_json_numbers_and_booleans_are_searched(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        assert ("edge-gateway", "routes.table") in paths(search(conn, world["viewer"], "ledger-service"))
        assert ("edge-gateway", "http.timeout") in paths(search(conn, world["viewer"], "30"))
        phrase = search(conn, world["viewer"], '"billing export"')
    assert paths(phrase) == [("nightly-report", "schedule.note")]
    assert "«billing» «export»" in phrase["results"][0]["snippet"]


def test_secrets_are_found_by_key_never_by_value(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        by_value = search(conn, world["admin"], "sk_live_zebra_unique")
        by_part = search(conn, world["admin"], "zebra")
        by_key = search(conn, world["viewer"], "api_key")
        digests = conn.execute(
            "select v.content #>> '{sections,http,entries,api_key,digest}' as d from cfg.config_versions as v "
            "where v.automation_id = %s", (world.gateway,)).fetchall()
        by_digest = [search(conn, world["admin"], d["d"][:20]) for d in digests]
    assert by_value["results"] == [] and by_part["results"] == []
    assert set(paths(by_key)) == {("edge-gateway", "http.api_key"), ("billing", "http.api_key")}
    assert all(found["results"] == [] for found in by_digest)


def test_another_orgs_content_is_invisible_through_results_counts_and_snippets(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        mine = search(conn, world["admin"], "billing")
        theirs = run_as(conn, world["admin"], "select cfg.search('billing', %s)", (world.org_b,))
        outsider = search(conn, world["outsider"], "billing")
        other = search(conn, world["other_admin"], "billing")
    assert {r["automation"] for r in mine["results"]} == {"billing", "edge-gateway", "nightly-report"}
    assert "zebra" not in json.dumps(mine) and "twin" not in json.dumps(mine)
    assert theirs.code == "PT404"
    assert outsider["results"] == []
    assert {r["automation"] for r in other["results"]} == {"billing-twin"}


def test_the_index_helpers_find_nothing_in_orgs_the_caller_cannot_read(shared):
    """cfg.search and quick_find match through definer helpers (under RLS no index serves
    @@ or LIKE). Called directly with another org's id, as a stranger would with SQL
    access, they answer exactly what RLS allows: nothing from that org (quick_find_hits
    takes no orgs: it reads the caller's own)."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        hits = ("select count(*) as n from cfg_private.search_hits("
                "%s, null, to_tsquery('simple', 'zebra'), 'zebra')")
        keys = ("select count(*) as n from cfg_private.quick_find_hits('token', 20) "
                "where kind = 'key' and %s is not null")
        orgs = [world.org_a, world.org_b]
        as_admin_a = [run_as(conn, world["admin"], sql, (orgs,)).rows[0]["n"] for sql in (hits, keys)]
        as_admin_b = [run_as(conn, world["other_admin"], sql, (orgs,)).rows[0]["n"] for sql in (hits, keys)]
        anon = [run_as(conn, world["anon"], sql, (orgs,)).code for sql in (hits, keys)]
    assert as_admin_a == [0, 0]  # org B's token and "zebra" value are not org A's to find
    assert as_admin_b == [1, 1]
    assert anon == ["42501", "42501"]


def test_a_long_substring_must_match_whole_not_just_its_tail(shared):
    """The substring index is probed with the needle's last 10 characters; the whole
    needle decides."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        whole = search(conn, world["viewer"], "internal.example.com/v1/users", org_id=world.org_a)
        near = search(conn, world["viewer"], "xinternal.example.com/v1/users", org_id=world.org_a)
    assert ("edge-gateway", "http.base_url") in paths(whole)
    assert near["results"] == []


def test_substrings_match_from_the_start_of_a_word_or_at_punctuation(shared):
    """Substrings are found through tokens that start where a run of letters and digits,
    or a punctuation character, starts (migrations/20261203040000_search_substring_tokens.sql)."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        found = {q: paths(search(conn, world["viewer"], q, org_id=world.org_a))
                 for q in ("/v1/users", "example.com/v1", "api.internal", "v2.example.com", "se_url", "_url",
                           "ternal.example.com", "ample.com/v1")}
    assert ("edge-gateway", "http.base_url") in found["/v1/users"]  # what staging still runs
    assert ("edge-gateway", "http.base_url") in found["example.com/v1"]
    assert ("edge-gateway", "http.base_url") in found["api.internal"]
    assert ("edge-gateway", "http.base_url") in found["v2.example.com"]  # live
    assert ("edge-gateway", "http.base_url") in found["_url"]  # keys too
    # Not from the middle of a word (pinned: the tokens start at word and punctuation starts).
    assert found["se_url"] == found["ternal.example.com"] == found["ample.com/v1"] == []


def test_a_substring_longer_than_a_token_must_match_whole(shared):
    """Tokens keep 100 characters: a longer needle finds candidates by its first 100 and
    must then match whole."""
    conn, world = shared
    path = "svc.internal/" + "/".join(f"seg{i:03d}" for i in range(30))
    with conn.transaction(force_rollback=True):
        save(conn, world["editor"], world.nightly, 1, content({"schedule": {"cron": "0 2 * * *", "target": path}}))
        whole = search(conn, world["viewer"], path[:140], org_id=world.org_a)
        near = search(conn, world["viewer"], path[:120] + "x" * 20, org_id=world.org_a)
    assert ("nightly-report", "schedule.target") in paths(whole)
    assert near["results"] == []


def test_an_entry_matched_live_and_where_it_is_deployed_comes_back_once(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        found = search(conn, world["viewer"], "ledger-service", org_id=world.org_a)
    rows = [(r["automation"], r["path"], r["environments"]) for r in found["results"]]
    assert rows == [("edge-gateway", "routes.table", ["dev", "staging"])]


def test_a_name_match_ranks_above_a_match_deep_in_a_value(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        found = search(conn, world["viewer"], "billing")
    assert found["results"][0]["kind"] == "automation" and found["results"][0]["automation"] == "billing"
    ranks = [r["rank"] for r in found["results"]]
    assert ranks == sorted(ranks, reverse=True)
    deep = next(r for r in found["results"] if r["path"] == "routes.table")
    assert found["results"][0]["rank"] > deep["rank"]


def test_pages_follow_the_cursor_without_gaps_or_repeats(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        everything = search(conn, world["viewer"], "example OR billing OR cron OR ledger OR 30", max_rows=100)
        seen, after = [], None
        while True:
            page = search(conn, world["viewer"], "example OR billing OR cron OR ledger OR 30", max_rows=2, after=after)
            seen += paths(page)
            after = page["next"]
            if after is None:
                break
    assert len(everything["results"]) >= 5
    assert seen == paths(everything)


def test_pages_through_equal_ranks_in_two_orgs_without_gaps_or_repeats(shared):
    """Each org's live entries are cut to a page before they are merged (docs/search.md,
    "Speed"): paging through many equal ranks across two orgs, part indexed and part
    still queued, gives exactly the one long page."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        conn.execute("insert into cfg.org_members (org_id, user_id, role) values (%s, %s, 'viewer')",
                     (world.org_b, world["viewer"].user_id))
        for org, owner in ((world.org_a, world["admin"]), (world.org_b, world["other_admin"])):
            for n in range(4):
                made = run_as(conn, owner, "select id from cfg.create_automation(%s, %s, %s)",
                              (org, f"Tie {n}", f"tie-{n}"))
                saved(conn, owner, made.rows[0]["id"], 0, content({"main": {"word": "samerank", "other": "samerank"}}))
            if org == world.org_a:
                conn.execute("select cfg_private.index_search_queue()")  # org B's stay queued
        everything = search(conn, world["viewer"], "samerank", max_rows=100)
        seen, after = [], None
        while True:
            page = search(conn, world["viewer"], "samerank", max_rows=3, after=after)
            seen += [(r["org_id"], r["automation"], r["path"]) for r in page["results"]]
            after = page["next"]
            if after is None:
                break
    assert len({r["rank"] for r in everything["results"]}) == 1 and len(everything["results"]) == 16
    assert seen == [(r["org_id"], r["automation"], r["path"]) for r in everything["results"]]


@pytest.mark.parametrize("filters, expected", [
    ({"type": "cron_job"}, {"nightly-report"}),
    ({"tags": ["eu", "batch"]}, {"edge-gateway", "nightly-report"}),
    ({"tags": ["edge", "eu"], "tags_match": "all"}, {"edge-gateway"}),
    ({"status": "paused"}, set()),
    ({"environment": "staging"}, {"edge-gateway"}),
    ({"has_secrets": True}, {"billing", "edge-gateway"}),
    ({"has_secrets": False}, {"nightly-report"}),
    ({"changed_by": "editor@example.test"}, {"edge-gateway", "nightly-report"}),
    ({"changed_by": "viewer@example.test"}, set()),
    ({"changed_since": "2999-01-01"}, set()),
])
def test_filters_narrow_the_search_and_combine_with_text(shared, filters, expected):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        found = search(conn, world["viewer"], "", filters=filters, org_id=world.org_a, max_rows=100)
        text = search(conn, world["viewer"], "billing", filters=filters, max_rows=100)
    assert {r["automation"] for r in found["results"]} == expected
    assert {r["automation"] for r in text["results"]} <= expected
    assert found["ignored"] == []


def test_a_shared_filter_with_stale_references_still_runs_and_says_what_it_ignored(shared):
    conn, world = shared
    editor, viewer = world["editor"], world["viewer"]
    with conn.transaction(force_rollback=True):
        made = run_as(conn, editor, "select * from cfg.save_filter(%s, 'Gateways in qa', 'billing', %s, true, true)",
                      (world.org_a, json.dumps({"environment": "qa", "type": "api_gateway"})))
        assert made.ok, made
        mine = run_as(conn, viewer, "select * from cfg.save_filter(%s, 'My crons', '', %s)",
                      (world.org_a, json.dumps({"type": "cron_job"})))
        assert mine.ok, mine
        ran = run_as(conn, viewer, "select cfg.run_saved_filter(%s) as r", (made.rows[0]["id"],)).rows[0]["r"]
        listed = run_as(conn, viewer, "select name from cfg.list_saved_filters(%s)", (world.org_a,)).rows
        others = run_as(conn, editor, "select name from cfg.list_saved_filters(%s)", (world.org_a,)).rows
        private = run_as(conn, editor, "select cfg.run_saved_filter(%s)", (mine.rows[0]["id"],))
        viewer_shares = run_as(conn, viewer, "select cfg.save_filter(%s, 'x', shared => true)", (world.org_a,))
        viewer_deletes = run_as(conn, viewer, "select cfg.delete_saved_filter(%s)", (made.rows[0]["id"],))
    assert ran["ignored"] == [{"filter": "environment", "value": "qa"}]
    assert {r["automation"] for r in ran["results"]} == {"edge-gateway"}
    assert [r["name"] for r in listed] == ["Gateways in qa", "My crons"]  # pinned first
    assert [r["name"] for r in others] == ["Gateways in qa"]  # personal filters stay personal
    assert private.code == "PT404"
    assert viewer_shares.code == "PT403" and viewer_deletes.code == "PT403"


def test_quick_find_tolerates_typos_and_ranks_recent_work_first(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        typo = run_as(conn, world["editor"], "select * from cfg.quick_find('edge-gatway')").rows
        prefix = run_as(conn, world["viewer"], "select * from cfg.quick_find('nigh')").rows
        keys = run_as(conn, world["viewer"], "select * from cfg.quick_find('base_ur')").rows
        envs = run_as(conn, world["viewer"], "select * from cfg.quick_find('stag')").rows
        stranger = run_as(conn, world["outsider"], "select * from cfg.quick_find('edge')").rows
    assert typo[0]["automation"] == "edge-gateway" and typo[0]["target"] == "org-a/edge-gateway"
    assert prefix[0]["kind"] == "automation" and prefix[0]["automation"] == "nightly-report"
    assert keys[0]["kind"] == "key" and keys[0]["target"] == "org-a/edge-gateway#http.base_url"
    assert envs[0]["kind"] == "environment" and envs[0]["target"] == "org-a@staging"
    assert stranger == []


def test_quick_find_follows_renames_and_deletes_but_not_tag_or_status_changes(shared):
    """Quick find reads names from cfg_private.quick_find_names, written when an
    automation is created or renamed: a tag or status update leaves its row (and the
    trigram index) alone; a rename and a delete follow in the same transaction, also
    when triggers are off for replication."""
    conn, world = shared
    names = "select xmin::text as x, slug, name from cfg_private.quick_find_names where automation_id = %s"
    with conn.transaction(force_rollback=True):
        gateway = world.gateway
        before = conn.execute(names, (gateway,)).fetchone()
        run_as(conn, world["editor"],
               "update cfg.automations set tags = tags || '{x}', status = 'paused' where id = %s", (gateway,))
        untouched = conn.execute(names, (gateway,)).fetchone()
        run_as(conn, world["editor"], "update cfg.automations set slug = 'invoicing', name = 'Invoicing' where id = %s",
               (gateway,))
        renamed = run_as(conn, world["viewer"], "select * from cfg.quick_find('invoicng')").rows
        stale = run_as(conn, world["viewer"], "select * from cfg.quick_find('edge-gateway')").rows
        conn.execute("set local session_replication_role = replica")
        made = conn.execute("insert into cfg.automations (org_id, name, slug) values (%s, 'Zeppelin', 'zeppelin') "
                            "returning id", (world.org_a,)).fetchone()["id"]
        conn.execute("set local session_replication_role = origin")
        loaded = run_as(conn, world["viewer"], "select * from cfg.quick_find('zepelin')").rows
        run_as(conn, world["admin"], "select cfg.delete_automation(%s)", (made,))
        gone = conn.execute(names, (made,)).fetchone()
    assert untouched == before
    assert renamed[0]["automation"] == "invoicing" and renamed[0]["target"] == "org-a/invoicing"
    assert stale == []  # the old name is found no more
    assert loaded[0]["automation"] == "zeppelin"
    assert gone is None


def test_reindexing_an_org_rebuilds_its_entries_and_what_later_environments_run(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        before = conn.execute("select count(*) as n from cfg_private.deployed_entries where org_id = %s",
                              (world.org_a,)).fetchone()["n"]
        live = conn.execute("select count(*) as n from cfg.config_entries where org_id = %s",
                            (world.org_a,)).fetchone()["n"]
        conn.execute("select cfg_private.index_search_queue()")
        conn.execute("delete from cfg_private.deployed_entries where org_id = %s", (world.org_a,))
        conn.execute("delete from cfg_private.entry_search where org_id = %s", (world.org_a,))
        lost = search(conn, world["viewer"], "api.internal.example.com/v1")
        lost_live = search(conn, world["viewer"], "ledger-service")
        done = run_as(conn, world["admin"], "select cfg.reindex_search(%s) as n", (world.org_a,))
        back = search(conn, world["viewer"], "api.internal.example.com/v1")
        back_live = search(conn, world["viewer"], "ledger-service")
        editor = run_as(conn, world["editor"], "select cfg.reindex_search(%s)", (world.org_a,))
    assert done.ok, done
    assert before > 0 and lost["results"] == [] and lost_live["results"] == []
    assert done.rows[0]["n"] == before + live and len(back["results"]) == 1
    assert [r["environments"] for r in back_live["results"]] == [["dev", "staging"]]
    assert editor.code == "PT403"


@pytest.mark.parametrize("call, field", [
    ("select cfg.search(%s)", "query"),
    ("select cfg.search('x', max_rows => 100000)", "max_rows"),
    ("select cfg.search('x', max_rows => 0)", "max_rows"),
    ("select cfg.search('x', after => 'not a cursor')", "after"),
    ("select cfg.search('x', filters => '{\"colour\": \"red\"}')", "filters.colour"),
    ("select cfg.search('x', filters => '{\"tags\": \"edge\"}')", "filters.tags"),
    ("select cfg.search('x', filters => '{\"changed_since\": \"yesterday\"}')", "filters.changed_since"),
    ("select cfg.search('x', filters => '[]')", "filters"),
    ("select * from cfg.quick_find('')", "query"),
    ("select * from cfg.quick_find('x', 1000)", "max_rows"),
])
def test_bad_input_is_a_clean_pt422(shared, call, field):
    conn, world = shared
    params = ("x" * 10_000,) if "%s" in call else ()
    with conn.transaction(force_rollback=True):
        out = run_as(conn, world["viewer"], call, params)
    assert out.code == "PT422", out
    assert out.detail == {"field": field}


@pytest.mark.parametrize("query", ['"unclosed', "& | ! ( )", "a:*", "'; drop table cfg.automations; --", "\\", "%_%"])
def test_odd_query_syntax_never_fails(shared, query):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        found = search(conn, world["viewer"], query)
    assert isinstance(found["results"], list)
