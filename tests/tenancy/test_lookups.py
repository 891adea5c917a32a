"""The lookups the CLI and a dashboard share (issue 9, item 3): find_org, find_automation,
find_environment, list_automations, list_environments, list_environment_changes and
my_invitations. Their matrix lines are in tests/tenancy/test_tenancy_rls.py; here, what they
answer, and that another org's id answers exactly like one that does not exist."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.act import Outcome
from tests.support.rls import run_as, shared_world
from tests.support.world import World


def with_an_applied_change(conn, world: World) -> None:
    """A pipeline change of org A, applied at once (org A has one admin): staging moves to the end."""
    env = conn.execute("select id from cfg.environments where org_id = %s and slug = 'staging'",
                       (world.org_a,)).fetchone()["id"]
    out = run_as(conn, world["admin"], "select cfg.request_environment_change(%s, '{\"position\": 7}')", (env,))
    assert out.ok, out


# Every test runs in a rolled-back transaction on this module's world.
shared = shared_world("lookups", with_an_applied_change)


def rows(out: Outcome) -> list:
    assert out.ok, out
    return out.rows


def answer(conn, who, sql, params) -> tuple:
    """('ok', rows) or (sqlstate, message, detail) with what was passed in replaced by a placeholder."""
    out = run_as(conn, who, sql, params)
    if out.ok:
        return ("ok", out.rows)
    text = out.message
    detail = json.dumps(out.detail, sort_keys=True, default=str)
    # What the caller typed comes back in the answer: ORG/SLUG whole, or its org part.
    typed = {str(v) for v in params if v} | {str(v).split("/")[0] for v in params if v}
    for value in sorted(typed, key=len, reverse=True):
        text, detail = text.replace(value, "<ref>"), detail.replace(value, "<ref>")
    return (out.code, text, detail)


def test_lists_show_the_org_they_are_asked_about_only(shared):
    conn, world = shared
    viewer, service = world["viewer"], world["service"]
    with conn.transaction(force_rollback=True):
        automations = rows(run_as(conn, viewer, "select * from cfg.list_automations(%s)", (world.org_a,)))
        assert [a["slug"] for a in automations] == ["billing"]
        envs = rows(run_as(conn, viewer, "select * from cfg.list_environments(%s)", (world.org_a,)))
        assert [(e["slug"], e["position"]) for e in envs] == [("dev", 0), ("prod", 2), ("staging", 7)]
        changes = rows(run_as(conn, viewer, "select * from cfg.list_environment_changes(%s, null)", (world.org_a,)))
        assert [(c["environment_slug"], c["change"], c["status"]) for c in changes] == [
            ("staging", {"position": 7}, "applied")]
        # Pending only, by default.
        assert rows(run_as(conn, viewer, "select * from cfg.list_environment_changes(%s)", (world.org_a,))) == []
        b = rows(run_as(conn, service, "select * from cfg.list_automations(%s)", (world.org_b,)))
        assert [a["slug"] for a in b] == ["other"]


# =============================================================================
# find_org / find_automation / find_environment: another org's answers like a missing one
# =============================================================================


@pytest.mark.parametrize("theirs, missing", [
    ("org-b", "org-zz"),
    ("{org_b}", "{random}"),
])
def test_find_org_answers_alike_for_foreign_and_missing(shared, theirs, missing):
    conn, world = shared
    refs = [r.format(org_b=world.org_b, random=uuid.uuid4()) for r in (theirs, missing)]
    with conn.transaction(force_rollback=True):
        got = [answer(conn, world["admin"], "select * from cfg.find_org(%s)", (r,)) for r in refs]
    assert got[0] == got[1] and got[0][0] == "PT404", got


@pytest.mark.parametrize("theirs, missing, org_ref", [
    ("org-b/other", "org-zz/other", None),
    ("org-b/other", "org-b/nope", None),
    ("{automation_b}", "{random}", None),
    ("other", "nope", "org-b"),
    ("other", "other", "org-zz"),
])
def test_find_automation_answers_alike_for_foreign_and_missing(shared, theirs, missing, org_ref):
    conn, world = shared
    ids = {"automation_b": world.automation_b, "automation_a": world.automation_a, "random": uuid.uuid4()}
    refs = [r.format(**ids) for r in (theirs, missing)]
    sql = "select * from cfg.find_automation(%s, %s)"
    with conn.transaction(force_rollback=True):
        got = [answer(conn, world["admin"], sql, (r, org_ref)) for r in refs]
    assert got[0] == got[1] and got[0][0] == "PT404", got


def test_find_resolves_ids_slugs_and_org_slash_slug(shared):
    conn, world = shared
    viewer = world["viewer"]
    with conn.transaction(force_rollback=True):
        for ref in ("org-a", str(world.org_a), str(world.org_a).upper()):
            assert answer(conn, viewer, "select id from cfg.find_org(%s)", (ref,)) == ("ok", [{"id": world.org_a}])
        for ref, org_ref in (("org-a/billing", None), (str(world.automation_a), None), ("billing", "org-a"),
                             ("billing", str(world.org_a)), (str(world.automation_a), "org-a")):
            assert answer(conn, viewer, "select id from cfg.find_automation(%s, %s)", (ref, org_ref)) == (
                "ok", [{"id": world.automation_a}]), (ref, org_ref)
        # The service key sees every org; a slug without its org is a usage error.
        assert answer(conn, world["service"], "select id from cfg.find_automation('org-b/other')", ())[0] == "ok"
        # An id named together with an org must be in that org.
        assert answer(conn, world["service"], "select * from cfg.find_automation(%s, 'org-b')",
                      (str(world.automation_a),))[0] == "PT404"
        for bad in ("billing", "", None):
            code, message, _ = answer(conn, viewer, "select * from cfg.find_automation(%s)", (bad,))
            assert code == "PT422" and "ORG/SLUG" in message, bad


@pytest.mark.parametrize("ref", ["x' or '1'='1", "org-a'; delete from cfg.orgs; --", "%", "org-a/%",
                                 "../org-a", "a" * 5000])
def test_sql_looking_refs_are_just_not_found(shared, ref):
    conn, world = shared
    count = "select count(*) as n from cfg.orgs"
    with conn.transaction(force_rollback=True):
        before = conn.execute(count).fetchone()["n"]
        assert answer(conn, world["admin"], "select * from cfg.find_org(%s)", (ref,))[0] == "PT404"
        assert answer(conn, world["admin"], "select * from cfg.find_automation(%s, 'org-a')", (ref,))[0] == "PT404"
        assert answer(conn, world["admin"], "select * from cfg.find_environment(%s, %s)",
                      (world.org_a, ref))[0] == "PT404"
        assert conn.execute(count).fetchone()["n"] == before


def test_find_environment_names_the_available_ones_to_members_only(shared):
    conn, world = shared
    sql = "select * from cfg.find_environment(%s, 'qa')"
    with conn.transaction(force_rollback=True):
        mine = answer(conn, world["viewer"], sql, (world.org_a,))
        theirs = answer(conn, world["admin"], sql, (world.org_b,))
    assert mine[0] == "PT404" and json.loads(mine[2])["available"] == ["dev", "prod", "staging"]
    assert theirs[0] == "PT404" and json.loads(theirs[2])["available"] is None


def test_unknown_change_status_is_invalid(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        for status in ("done", "PENDING", "'; drop table cfg.orgs; --"):
            code, message, _ = answer(conn, world["viewer"], "select * from cfg.list_environment_changes(%s, %s)",
                                      (world.org_a, status))
            assert code == "PT422" and "unknown change status" in message
        assert answer(conn, world["viewer"], "select * from cfg.list_environment_changes(%s, null)",
                      (world.org_a,))[0] == "ok"


def test_my_invitations_are_those_addressed_to_me(conn, world):
    admin = world["admin"]
    sent = rows(run_as(conn, admin, "select id from cfg.invite_member(%s, 'OUTSIDER@example.test', 'editor')",
                       (world.org_a,)))[0]["id"]
    assert run_as(conn, admin, "select cfg.invite_member(%s, 'someone.else@example.test', 'viewer')",
                  (world.org_a,)).ok
    # The inviting admin reads every invitation of the org, and is invited to none.
    assert rows(run_as(conn, admin, "select * from cfg.my_invitations()")) == []
    mine = rows(run_as(conn, world["outsider"], "select * from cfg.my_invitations()"))
    assert [(i["id"], i["org_id"], i["role"]) for i in mine] == [(sent, world.org_a, "editor")]


# =============================================================================
# select_automations: the one reading of a selection (bulk operations, exports)
# =============================================================================


def select(conn, who, org, selection) -> Outcome:
    return run_as(conn, who, "select * from cfg.select_automations(%s, %s)", (org, json.dumps(selection)))


def test_a_selection_by_ids_reports_foreign_and_unknown_ids_alike_as_not_found(shared):
    conn, world = shared
    mine = world.automation_a
    theirs = conn.execute("select id from cfg.automations where org_id = %s", (world.org_b,)).fetchone()["id"]
    unknown = uuid.uuid4()
    with conn.transaction(force_rollback=True):
        ids = [str(theirs), str(mine), str(unknown), str(mine)]
        got = rows(select(conn, world["viewer"], world.org_a, {"ids": ids}))
    # In the order given, the first mention of a repeated id counts, no slug for what is not found.
    assert [(r["automation_id"], r["slug"], r["found"]) for r in got] == [
        (theirs, None, False), (mine, "billing", True), (unknown, None, False)]
    # Capital hex digits spell the same id.
    with conn.transaction(force_rollback=True):
        got = rows(select(conn, world["viewer"], world.org_a, {"ids": [str(unknown), str(mine).upper()]}))
    assert [(r["automation_id"], r["found"], r["ord"]) for r in got] == [(unknown, False, 1), (mine, True, 2)]


def test_a_selection_by_filter_matches_type_status_tags_environment_and_text(shared):
    conn, world = shared
    admin = world["admin"]
    with conn.transaction(force_rollback=True):
        for slug, tags, status in [("api-one", ["edge", "eu"], "active"), ("api-two", ["edge"], "paused")]:
            out = run_as(conn, admin, "select cfg.create_automation(%s, %s, %s, 'service', %s)",
                         (world.org_a, slug.upper(), slug, tags))
            assert out.ok, out
            conn.execute("update cfg.automations set status = %s where slug = %s", (status, slug))

        def slugs(where) -> list[str]:
            return [r["slug"] for r in rows(select(conn, world["viewer"], world.org_a, {"where": where}))]

        assert slugs({}) == ["api-one", "api-two", "billing"]
        assert slugs({"tags": ["edge", "eu"]}) == ["api-one", "api-two"]
        assert slugs({"tags": ["edge", "eu"], "tags_match": "all"}) == ["api-one"]
        assert slugs({"status": "paused"}) == ["api-two"]
        assert slugs({"text": "API-T"}) == ["api-two"]
        assert slugs({"type": "service", "status": "active", "tags": ["eu"]}) == ["api-one"]
        assert slugs({"text": "'; drop table cfg.automations; --"}) == []
        assert slugs({"deployed_in": "dev"}) == ["billing"]


@pytest.mark.parametrize("selection", [
    None, [], {}, {"ids": "x"}, {"ids": ["not-a-uuid"]}, {"ids": [1]}, {"ids": [], "where": {}},
    {"ids": [None]}, {"ids": [uuid.uuid4().hex]}, {"ids": [f"{{{uuid.uuid4()}}}"]},
    {"where": {"colour": "red"}}, {"where": {"status": "gone"}}, {"where": {"tags": "edge"}},
    {"where": {"tags_match": "some"}}, {"where": {"text": "x" * 201}}, {"where": {"deployed_in": "moon"}},
    {"ids": [str(uuid.uuid4())] * 50001},
])
def test_a_malformed_selection_is_refused_clearly(shared, selection):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        out = select(conn, world["viewer"], world.org_a, selection)
    assert out.code == "PT422", out
