"""Deployments per environment, promotion along the pipeline, approvals, status (issue 3, part 5)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sync_service.db import acting_as
from tests.support.versioning import content, events, refused, rpc, save
from tests.support.world import add_member, create_user

PROMOTE = "select cfg.promote(%s, %s, %s, %s, %s) as r"


def promote(conn, who, automation_id, src, dst, dry_run=False, reason=None) -> dict:
    return rpc(conn, who, PROMOTE, (automation_id, src, dst, dry_run, reason))["r"]


def deployed(conn, automation_id) -> dict:
    rows = conn.execute(
        "select e.slug, d.version from cfg.deployments d join cfg.environments e on e.id = d.environment_id "
        "where d.automation_id = %s", (automation_id,),
    ).fetchall()
    conn.commit()
    return {r["slug"]: r["version"] for r in rows}


def env_id(conn, org_id, slug):
    row = conn.execute("select id from cfg.environments where org_id = %s and slug = %s", (org_id, slug)).fetchone()
    conn.commit()
    return row["id"]


def request_row(conn, request_id) -> dict:
    row = conn.execute("select * from cfg.promotion_requests where id = %s", (request_id,)).fetchone()
    conn.commit()
    return row


def bump(conn, world, expected: int, port: int) -> dict:
    return save(conn, world["editor"], world.automation_a, expected,
                content({"http": {"port": port, "api_key": ("secret",)}}), f"port {port}")


@pytest.fixture
def staged(conn, world):
    """billing: v1 in dev and staging; v2 saved (dev)."""
    promote(conn, world["editor"], world.automation_a, "dev", "staging")
    bump(conn, world, 1, 9090)
    return world


def test_dry_run_shows_the_diff_and_changes_nothing(conn, staged):
    world = staged
    before_events = len(events(conn))
    result = promote(conn, world["editor"], world.automation_a, "dev", "staging", dry_run=True)
    assert result["action"] == "preview" and result["dry_run"] is True
    assert result["from"]["version"] == 2 and result["to"]["version"] == 1
    assert result["diff"]["changes"] == [{
        "section": "http", "key": "port", "change": "changed", "secret": False, "fields": ["value"],
        "old_value": 8080, "new_value": 9090,
    }]
    assert deployed(conn, world.automation_a) == {"dev": 2, "staging": 1}
    assert len(events(conn)) == before_events
    # The default is a dry run.
    with acting_as(conn, world["editor"]) as cur:
        default = cur.execute("select cfg.promote(%s, 'dev', 'staging') as r", (world.automation_a,)).fetchone()
    assert default["r"]["action"] == "preview"


def test_editor_promotes_to_the_next_environment(conn, staged):
    world = staged
    result = promote(conn, world["editor"], world.automation_a, "dev", "staging")
    assert result["action"] == "promoted"
    assert deployed(conn, world.automation_a) == {"dev": 2, "staging": 2}
    history = conn.execute(
        "select h.version, h.previous_version, h.source, h.actor_email, e.slug from cfg.deployment_history h "
        "join cfg.environments e on e.id = h.environment_id where h.automation_id = %s order by h.created_at, h.id",
        (world.automation_a,),
    ).fetchall()
    staging = [h for h in history if h["slug"] == "staging"]
    assert [(h["version"], h["previous_version"], h["source"]) for h in staging] == [
        (1, None, "promotion"), (2, 1, "promotion"),
    ]
    assert staging[-1]["actor_email"] == "editor@example.test"
    applied = events(conn, "promotion.applied")[-1]
    assert applied["environment_id"] == env_id(conn, world.org_a, "staging")
    assert applied["payload"]["version"] == 2 and applied["payload"]["previous_version"] == 1
    # Again: nothing left to promote.
    refused(conn, world["editor"], PROMOTE, (world.automation_a, "dev", "staging", False, None), "PT409")


def test_pipeline_order_rules(conn, staged):
    world, a = staged, staged.automation_a
    err = refused(conn, world["editor"], PROMOTE, (a, "dev", "prod", False, "hotfix"), "PT403")
    assert err.detail["next"] == "staging" and err.detail["skipped"] == ["staging"]
    refused(conn, world["editor"], PROMOTE, (a, "dev", "prod", True, None), "PT403")  # even a dry run
    err = refused(conn, world["admin"], PROMOTE, (a, "dev", "prod", False, None), "PT422")
    assert err.detail["field"] == "reason"
    refused(conn, world["admin"], PROMOTE, (a, "dev", "prod", False, "   "), "PT422")
    err = refused(conn, world["admin"], PROMOTE, (a, "staging", "dev", False, "back"), "PT422")
    assert err.detail["pipeline"] == ["dev", "staging", "prod"]
    refused(conn, world["editor"], PROMOTE, (a, "dev", "dev", False, None), "PT422")
    err = refused(conn, world["editor"], PROMOTE, (a, "dev", "qa", False, None), "PT404")
    assert err.detail["available"] == ["dev", "staging", "prod"]
    refused(conn, world["editor"], PROMOTE, (a, "nope", "staging", False, None), "PT404")
    refused(conn, world["viewer"], PROMOTE, (a, "dev", "staging", True, None), "PT403")
    refused(conn, world["other_admin"], PROMOTE, (a, "dev", "staging", True, None), "PT404")
    refused(conn, world["anon"], PROMOTE, (a, "dev", "staging", True, None), "42501")
    # Another org's automation, and its environments by slug, stay invisible.
    refused(conn, world["admin"], PROMOTE, (world.automation_b, "dev", "staging", True, None), "PT404")


def test_nothing_deployed_in_the_source_is_a_conflict(conn, world):
    err = refused(conn, world["editor"], PROMOTE, (world.automation_a, "staging", "prod", False, None), "PT409")
    assert err.detail["environment"] == "staging"


def test_admin_skips_a_step_with_a_reason_into_an_approval_request(conn, staged):
    world = staged
    result = promote(conn, world["admin"], world.automation_a, "dev", "prod", reason="hotfix for incident 42")
    assert result["action"] == "requested" and result["skipped"] == ["staging"]
    request = request_row(conn, result["request_id"])
    assert request["status"] == "pending" and request["skip_reason"] == "hotfix for incident 42"
    assert request["version"] == 2 and request["target_version"] is None
    assert deployed(conn, world.automation_a) == {"dev": 2, "staging": 1}
    requested = events(conn, "promotion.requested")[-1]
    assert requested["environment_id"] == env_id(conn, world.org_a, "prod")
    assert requested["payload"]["reason"] == "hotfix for incident 42"


def test_admin_skip_into_an_environment_without_approval_applies(conn, world):
    """A four-step pipeline: dev -> qa -> staging -> prod; dev -> staging skips qa."""
    conn.execute("update cfg.environments set position = position + 1 where org_id = %s and position > 0",
                 (world.org_a,))
    conn.execute("insert into cfg.environments (org_id, name, slug, position) values (%s, 'QA', 'qa', 1)",
                 (world.org_a,))
    conn.commit()
    result = promote(conn, world["admin"], world.automation_a, "dev", "staging", reason="qa is down")
    assert result["action"] == "promoted" and result["skipped"] == ["qa"]
    row = conn.execute("select reason from cfg.deployment_history where source = 'promotion'").fetchone()
    assert row["reason"] == "qa is down"


def test_approval_lifecycle_pending_approved_applied(conn, staged):
    world, a = staged, staged.automation_a
    result = promote(conn, world["editor"], a, "staging", "prod")
    assert result["action"] == "requested" and result["status"] == "pending"
    request_id = result["request_id"]
    approve = "select * from cfg.approve_promotion(%s, %s, %s)"
    refused(conn, world["viewer"], approve, (request_id, None, True), "PT403")
    refused(conn, world["editor"], approve, (request_id, None, True), "PT403")
    refused(conn, world["other_admin"], approve, (request_id, None, True), "PT404")
    refused(conn, world["anon"], approve, (request_id, None, True), "42501")
    approved = rpc(conn, world["admin"], approve, (request_id, "looks good", False))
    assert approved["status"] == "approved" and approved["decided_by"] == world["admin"].user_id
    assert approved["decision_comment"] == "looks good" and approved["applied_at"] is None
    assert "prod" not in deployed(conn, a)
    refused(conn, world["admin"], approve, (request_id, None, True), "PT409")  # not pending any more
    refused(conn, world["viewer"], "select * from cfg.apply_promotion(%s)", (request_id,), "PT403")
    applied = rpc(conn, world["editor"], "select * from cfg.apply_promotion(%s)", (request_id,))
    assert applied["status"] == "applied" and applied["applied_at"] is not None
    assert deployed(conn, a)["prod"] == 1
    refused(conn, world["editor"], "select * from cfg.apply_promotion(%s)", (request_id,), "PT409")
    prod = env_id(conn, world.org_a, "prod")
    for kind in ("promotion.requested", "promotion.approved", "promotion.applied"):
        matching = [e for e in events(conn, kind) if e["payload"].get("request_id") == str(request_id)]
        assert len(matching) == 1, kind
        assert matching[0]["environment_id"] == prod and matching[0]["automation_id"] == a


def test_self_approval_is_refused(conn, staged):
    world = staged
    result = promote(conn, world["admin"], world.automation_a, "staging", "prod")
    err = refused(conn, world["admin"], "select * from cfg.approve_promotion(%s)", (result["request_id"],), "PT403")
    assert "own" in str(err)
    assert request_row(conn, result["request_id"])["status"] == "pending"


def test_approval_is_bound_to_the_requested_version(conn, staged):
    world, a = staged, staged.automation_a
    promote(conn, world["editor"], a, "dev", "staging")  # staging: v2
    request_id = promote(conn, world["editor"], a, "staging", "prod")["request_id"]  # for v2
    bump(conn, world, 2, 7000)  # dev moves on: v3
    promote(conn, world["editor"], a, "dev", "staging")  # staging: v3 (no new prod request)
    applied = rpc(conn, world["admin"], "select * from cfg.approve_promotion(%s)", (request_id,))
    assert applied["status"] == "applied" and applied["version"] == 2
    assert deployed(conn, a) == {"dev": 3, "staging": 3, "prod": 2}


def test_duplicate_and_superseded_requests(conn, staged):
    world, a = staged, staged.automation_a
    first = promote(conn, world["editor"], a, "staging", "prod")["request_id"]  # v1
    err = refused(conn, world["editor"], PROMOTE, (a, "staging", "prod", False, None), "PT409")
    assert err.detail["request_id"] == str(first) and err.detail["status"] == "pending"
    promote(conn, world["editor"], a, "dev", "staging")  # staging: v2
    second = promote(conn, world["editor"], a, "staging", "prod")
    assert second["supersedes"] == str(first)
    old = request_row(conn, first)
    assert old["status"] == "superseded" and str(old["superseded_by"]) == second["request_id"]
    err = refused(conn, world["admin"], "select * from cfg.approve_promotion(%s)", (first,), "PT409")
    assert err.detail["status"] == "superseded" and err.detail["superseded_by"] == second["request_id"]
    refused(conn, world["admin"], "select * from cfg.reject_promotion(%s, 'old')", (first,), "PT409")
    assert rpc(conn, world["admin"], "select * from cfg.approve_promotion(%s)", (second["request_id"],))["version"] == 2


def test_stale_request_after_the_target_moved_is_refused(conn, staged):
    world, a = staged, staged.automation_a
    request_id = promote(conn, world["editor"], a, "staging", "prod")["request_id"]
    # prod stops requiring approval for a moment and moves on without the request.
    conn.execute("update cfg.environments set requires_approval = false where org_id = %s and slug = 'prod'",
                 (world.org_a,))
    conn.commit()
    promote(conn, world["editor"], a, "staging", "prod")
    conn.execute("update cfg.environments set requires_approval = true where org_id = %s and slug = 'prod'",
                 (world.org_a,))
    conn.commit()
    err = refused(conn, world["admin"], "select * from cfg.approve_promotion(%s)", (request_id,), "PT409")
    assert err.detail["stale"] is True and err.detail["target_version_now"] == 1


def test_rejection_needs_an_admin_and_a_reason(conn, staged):
    world = staged
    request_id = promote(conn, world["editor"], world.automation_a, "staging", "prod")["request_id"]
    reject = "select * from cfg.reject_promotion(%s, %s)"
    refused(conn, world["editor"], reject, (request_id, "no"), "PT403")
    refused(conn, world["viewer"], reject, (request_id, "no"), "PT403")
    refused(conn, world["admin"], reject, (request_id, " "), "PT422")
    refused(conn, world["admin"], reject, (request_id, None), "PT422")
    rejected = rpc(conn, world["admin"], reject, (request_id, "not during the freeze"))
    assert rejected["status"] == "rejected" and rejected["decision_comment"] == "not during the freeze"
    refused(conn, world["admin"], "select * from cfg.approve_promotion(%s)", (request_id,), "PT409")
    event = events(conn, "promotion.rejected")[-1]
    assert event["payload"]["reason"] == "not during the freeze"
    assert event["environment_id"] == env_id(conn, world.org_a, "prod")
    assert "prod" not in deployed(conn, world.automation_a)
    refused(conn, world["admin"], reject, ("00000000-0000-0000-0000-000000000000", "x"), "PT404")


def test_status_shows_versions_per_environment_and_drift(conn, staged):
    world = staged
    with acting_as(conn, world["viewer"]) as cur:
        rows = cur.execute("select * from cfg.deployment_status(%s)", (world.org_a,)).fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert row["slug"] == "billing" and row["latest_version"] == 2 and row["drift"] is True
    assert [(e["environment"], e["version"], e["same_as_previous"]) for e in row["environments"]] == [
        ("dev", 2, None), ("staging", 1, False), ("prod", None, False),
    ]
    promote(conn, world["editor"], world.automation_a, "dev", "staging")
    request_id = promote(conn, world["editor"], world.automation_a, "staging", "prod")["request_id"]
    with acting_as(conn, world["viewer"]) as cur:
        row = cur.execute("select * from cfg.deployment_status(%s)", (world.org_a,)).fetchone()
    assert row["pending_requests"] == 1
    rpc(conn, world["admin"], "select * from cfg.approve_promotion(%s)", (request_id,))
    with acting_as(conn, world["viewer"]) as cur:
        row = cur.execute("select * from cfg.deployment_status(%s, %s)", (world.org_a, world.automation_a)).fetchone()
    assert row["drift"] is False and row["pending_requests"] == 0
    assert [e["version"] for e in row["environments"]] == [2, 2, 2]
    refused(conn, world["other_admin"], "select * from cfg.deployment_status(%s)", (world.org_a,), "PT404")


def test_promotion_payloads_never_carry_secret_values(conn, staged):
    world = staged
    save(conn, world["editor"], world.automation_a, 2,
         content({"http": {"port": 9090, "api_key": ("secret", "rotated-secret-value")}}))
    result = promote(conn, world["editor"], world.automation_a, "dev", "staging", dry_run=True)
    promote(conn, world["editor"], world.automation_a, "dev", "staging")
    promote(conn, world["editor"], world.automation_a, "staging", "prod")
    text = json.dumps(result) + json.dumps([e["payload"] for e in events(conn)])
    assert "rotated-secret-value" not in text and "sk_live_hunter2" not in text


def test_a_confirmed_preview_promotes_only_the_version_it_showed(conn, staged):
    world, a = staged, staged.automation_a
    preview = promote(conn, world["editor"], a, "dev", "staging", dry_run=True)
    bump(conn, world, 2, 7777)  # dev moves on between the preview and the confirmation
    sql = "select cfg.promote(%s, 'dev', 'staging', false, null, null, %s)"
    err = refused(conn, world["editor"], sql, (a, preview["from"]["version"]), "PT409")
    assert err.detail == {"environment": "dev", "expected_version": 2, "current_version": 3}
    assert rpc(conn, world["editor"], sql + " as r", (a, 3))["r"]["action"] == "promoted"


# =============================================================================
# Issue 8: invoker RPCs with role-checking definer helpers; the two-person rule.
# =============================================================================

FUNCTION_FILES = ("functions/50_promotion.sql", "functions/22_tenancy_pipeline.sql")
# Called only by other security definer functions (as their owner), or triggers: no API role.
INTERNAL = {"request_for", "require_request_status", "apply_request", "apply_environment_change",
            "pending_environment_change", "guard_environment_change"}
REQUEST_CHANGE = ("select * from cfg.request_environment_change("
                  "(select id from cfg.environments where org_id = %s and slug = %s), %s::jsonb, %s)")
OFF = '{"requires_approval": false}'


def defined_functions() -> set[tuple[str, str]]:
    root = Path(__file__).resolve().parents[2]
    text = "".join((root / f).read_text() for f in FUNCTION_FILES)
    return set(re.findall(r"create or replace function (cfg|cfg_private)\.(\w+)\(", text))


def test_promotion_rpcs_are_invoker_and_every_function_is_granted_to_its_callers_only(conn):
    functions = defined_functions()
    assert ("cfg", "promote") in functions and ("cfg_private", "guard_environment_change") in functions
    rows = conn.execute(
        """
        select n.nspname as schema, p.proname as name, p.prosecdef as definer,
               array(select coalesce(r.rolname, 'PUBLIC')
                     from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                     left join pg_roles r on r.oid = a.grantee
                     where a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner order by 1) as grantees
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where (n.nspname, p.proname) in (select * from unnest(%s::text[], %s::text[]))
        """,
        ([s for s, _ in functions], [n for _, n in functions]),
    ).fetchall()
    conn.commit()
    assert {(r["schema"], r["name"]) for r in rows} == functions
    for row in rows:
        where = (row["schema"], row["name"])
        if row["schema"] == "cfg":
            assert not row["definer"], where  # Supabase lint 0029
        expected = [] if row["name"] in INTERNAL else ["authenticated", "service_role"]
        assert row["grantees"] == expected, where


def test_environment_by_slug_answers_another_orgs_environment_like_a_missing_one(conn, world):
    sql = "select * from cfg_private.environment_by_slug(%s, %s)"
    found = refused(conn, world["admin"], sql, (world.org_b, "prod"), "PT404")
    missing = refused(conn, world["admin"], sql, (world.org_b, "nope"), "PT404")
    assert found.detail == {"environment": "prod", "available": None}
    assert missing.detail == {"environment": "nope", "available": None}
    assert str(found).replace("prod", "nope") == str(missing)
    # Members still get the list of what exists.
    err = refused(conn, world["viewer"], sql, (world.org_a, "nope"), "PT404")
    assert err.detail["available"] == ["dev", "staging", "prod"]
    assert rpc(conn, world["viewer"], sql, (world.org_a, "prod"))["slug"] == "prod"


def test_definer_helpers_check_the_callers_role_themselves(conn, staged):
    world, a = staged, staged.automation_a
    confirm = "select cfg_private.confirm_promotion(%s, %s, %s, null, null, null) as r"
    refused(conn, world["viewer"], confirm, (a, "dev", "staging"), "PT403")
    refused(conn, world["other_admin"], confirm, (a, "dev", "staging"), "PT404")
    refused(conn, world["editor"], confirm, (a, "dev", "prod"), "PT403")  # skipping is for admins
    # Called directly, the helper still turns a promotion into prod into a request.
    assert rpc(conn, world["editor"], confirm, (a, "staging", "prod"))["r"]["action"] == "requested"
    assert deployed(conn, a) == {"dev": 2, "staging": 1}
    request_id = request_row_for(conn, a)["id"]
    refused(conn, world["editor"], "select cfg_private.approve_promotion(%s, null, true)", (request_id,), "PT403")
    refused(conn, world["other_admin"], "select cfg_private.reject_promotion(%s, 'no')", (request_id,), "PT404")
    refused(conn, world["viewer"], "select cfg_private.apply_promotion(%s)", (request_id,), "PT403")
    prod = env_id(conn, world.org_a, "prod")
    change = "select cfg_private.request_environment_change(%s, %s::jsonb, null)"
    refused(conn, world["editor"], change, (prod, OFF), "PT403")
    refused(conn, world["other_admin"], change, (prod, OFF), "PT404")
    for internal in ("select cfg_private.request_for(%s, 'viewer', 'x')",
                     "select cfg_private.pending_environment_change(%s, 'x')"):
        refused(conn, world["admin"], internal, (request_id,), "42501")


def request_row_for(conn, automation_id) -> dict:
    row = conn.execute("select * from cfg.promotion_requests where automation_id = %s and status = 'pending'",
                       (automation_id,)).fetchone()
    conn.commit()
    return row


def environment(conn, org_id, slug) -> dict | None:
    row = conn.execute("select * from cfg.environments where org_id = %s and slug = %s", (org_id, slug)).fetchone()
    conn.commit()
    return row


def pipeline(conn, org_id) -> list[str]:
    rows = conn.execute("select slug from cfg.environments where org_id = %s order by position", (org_id,)).fetchall()
    conn.commit()
    return [r["slug"] for r in rows]


def second_admin(conn, world):
    world.users["admin2"] = create_user(conn, "admin2@example.test")
    add_member(conn, world["admin"], world.org_a, world["admin2"], "admin")
    return world["admin2"]


@pytest.mark.parametrize("who", ["admin", "service"])
def test_loosening_the_pipeline_directly_is_refused(conn, world, who):
    org, actor = world.org_a, world[who]
    err = refused(conn, actor, "update cfg.environments set requires_approval = false "
                  "where org_id = %s and slug = 'prod'", (org,), "PT403")
    assert err.detail["change"] == {"requires_approval": False}
    assert err.detail["request_with"] == "cfg.request_environment_change"
    assert "request" in str(err) and "request-change" in err.hint
    err = refused(conn, actor, "update cfg.environments set position = 7 where org_id = %s and slug = 'prod'",
                  (org,), "PT403")
    assert err.detail["change"] == {"position": 7}
    refused(conn, actor, "delete from cfg.environments where org_id = %s and slug = 'prod'", (org,), "PT403")
    # Renaming prod's slug would let an unguarded environment take its name.
    refused(conn, actor, "update cfg.environments set slug = 'prod-old' where org_id = %s and slug = 'prod'",
            (org,), "PT403")
    # A gap (made by a DBA) does not let a new environment slip in before prod.
    conn.execute("update cfg.environments set position = 10 where org_id = %s and slug = 'prod'", (org,))
    conn.commit()
    refused(conn, actor, "insert into cfg.environments (org_id, name, slug, position) values (%s, 'QA', 'qa', 5)",
            (org,), "PT403")
    assert environment(conn, org, "prod")["requires_approval"] is True
    # Tightening and harmless edits need nobody.
    for sql in ("update cfg.environments set requires_approval = true where org_id = %s and slug = 'dev'",
                "update cfg.environments set name = 'Live' where org_id = %s and slug = 'prod'",
                "insert into cfg.environments (org_id, name, slug, position) values (%s, 'DR', 'dr', 11)",
                "delete from cfg.environments where org_id = %s and slug = 'dr'"):
        with acting_as(conn, actor) as cur:
            assert cur.execute(sql, (org,)).rowcount == 1, sql
    assert environment(conn, org, "dev")["requires_approval"] is True


def test_the_only_admin_changes_directly_and_it_says_so(conn, staged):
    world, org = staged, staged.org_a
    row = rpc(conn, world["admin"], REQUEST_CHANGE, (org, "prod", OFF, "release freeze is over"))
    assert row["status"] == "applied" and row["decided_by"] == row["requested_by"] == world["admin"].user_id
    assert row["decision_comment"] == "applied directly: the organisation has no other admin"
    assert environment(conn, org, "prod")["requires_approval"] is False
    changed = events(conn, "environment.changed")[-1]
    assert changed["payload"]["direct"] is True and "no other admin" in changed["payload"]["note"]
    assert changed["environment_id"] == env_id(conn, org, "prod")
    assert events(conn, "environment.change_requested") == []
    audited = conn.execute("select operation, new_values from cfg.audit_log where table_name = "
                           "'environment_change_requests' and row_id = %s order by id", (row["id"],)).fetchall()
    conn.commit()
    assert [a["operation"] for a in audited] == ["INSERT", "UPDATE"]
    assert "no other admin" in audited[0]["new_values"]["decision_comment"]
    # And prod promotes without a request now.
    assert promote(conn, world["editor"], world.automation_a, "staging", "prod")["action"] == "promoted"


def test_another_admin_must_approve_switching_approval_off(conn, staged):
    world, org = staged, staged.org_a
    admin2 = second_admin(conn, world)
    row = rpc(conn, world["admin"], REQUEST_CHANGE, (org, "prod", OFF, "incident 42"))
    assert row["status"] == "pending" and row["before"] == {"requires_approval": True, "position": 2}
    assert environment(conn, org, "prod")["requires_approval"] is True
    requested = events(conn, "environment.change_requested")[-1]
    assert requested["payload"]["change"] == {"requires_approval": False}
    assert requested["payload"]["reason"] == "incident 42"
    refused(conn, world["admin"], REQUEST_CHANGE, (org, "prod", '{"position": 0}', None), "PT409")  # one pending
    approve = "select * from cfg.approve_environment_change(%s, %s)"
    err = refused(conn, world["admin"], approve, (row["id"], None), "PT403")
    assert "another admin" in str(err)
    refused(conn, world["editor"], approve, (row["id"], None), "PT403")
    refused(conn, world["other_admin"], approve, (row["id"], None), "PT404")
    # Still refused directly while the request is pending.
    refused(conn, world["admin"], "update cfg.environments set requires_approval = false "
            "where org_id = %s and slug = 'prod'", (org,), "PT403")
    done = rpc(conn, admin2, approve, (row["id"], "ok for the incident"))
    assert done["status"] == "applied" and done["decided_by"] == admin2.user_id
    assert environment(conn, org, "prod")["requires_approval"] is False
    assert events(conn, "environment.change_approved")[-1]["payload"]["approved_by"] == admin2.email
    changed = events(conn, "environment.changed")[-1]["payload"]
    assert changed["direct"] is False and changed["requested_by"] == world["admin"].email
    refused(conn, admin2, approve, (row["id"], None), "PT409")


def test_a_rejected_change_changes_nothing(conn, world):
    org = world.org_a
    admin2 = second_admin(conn, world)
    row = rpc(conn, world["admin"], REQUEST_CHANGE, (org, "prod", '{"delete": true}', None))
    reject = "select * from cfg.reject_environment_change(%s, %s)"
    refused(conn, admin2, reject, (row["id"], "  "), "PT422")
    refused(conn, world["viewer"], reject, (row["id"], "no"), "PT403")
    rejected = rpc(conn, admin2, reject, (row["id"], "not during the freeze"))
    assert rejected["status"] == "rejected" and rejected["decision_comment"] == "not during the freeze"
    assert events(conn, "environment.change_rejected")[-1]["payload"]["reason"] == "not during the freeze"
    refused(conn, world["admin"], "select * from cfg.approve_environment_change(%s)", (row["id"],), "PT409")
    assert pipeline(conn, org) == ["dev", "staging", "prod"]


def test_reordering_swaps_and_a_stale_request_is_refused(conn, world):
    org = world.org_a
    admin2 = second_admin(conn, world)
    approve = "select * from cfg.approve_environment_change(%s)"
    stale = rpc(conn, world["admin"], REQUEST_CHANGE, (org, "prod", '{"position": 0}', None))
    swap = rpc(conn, admin2, REQUEST_CHANGE, (org, "staging", '{"position": 2}', "prod before staging"))
    assert rpc(conn, world["admin"], approve, (swap["id"],))["status"] == "applied"
    assert pipeline(conn, org) == ["dev", "prod", "staging"]
    # prod moved since its own request was made: approving it would apply something unreviewed.
    err = refused(conn, admin2, approve, (stale["id"],), "PT409")
    assert err.detail["stale"] is True and err.detail["now"] == {"requires_approval": True, "position": 1}


def test_deleting_an_environment_that_requires_approval_by_request(conn, world):
    org = world.org_a
    admin2 = second_admin(conn, world)
    row = rpc(conn, admin2, REQUEST_CHANGE, (org, "prod", '{"delete": true}', None))
    done = rpc(conn, world["admin"], "select * from cfg.approve_environment_change(%s)", (row["id"],))
    assert done["status"] == "applied" and done["environment_slug"] == "prod"
    assert pipeline(conn, org) == ["dev", "staging"]
    kept = conn.execute("select environment_id, status from cfg.environment_change_requests where id = %s",
                        (row["id"],)).fetchone()
    conn.commit()
    assert kept == {"environment_id": None, "status": "applied"}


def test_the_service_key_cannot_approve_its_own_request(conn, world):
    row = rpc(conn, world["service"], REQUEST_CHANGE, (world.org_a, "prod", OFF, None))
    assert row["status"] == "pending"  # the org has an admin, who is not the requester
    refused(conn, world["service"], "select * from cfg.approve_environment_change(%s)", (row["id"],), "PT403")
    assert rpc(conn, world["admin"], "select * from cfg.approve_environment_change(%s)", (row["id"],))[
        "status"] == "applied"


def test_cli_pipeline_changes(conn, world, cfgctl):
    second_admin(conn, world)
    admin, admin2 = ("--as", "admin@example.test"), ("--as", "admin2@example.test")
    assert cfgctl("env", "request-change", "org-a", "prod", "--approval-off", "--position", "1", *admin).code == 2
    out = cfgctl("env", "request-change", "org-a", "prod", "--approval-off", "--reason", "freeze over", *admin)
    assert out.code == 0 and "pending another admin's approval" in out.output, out.output
    pending = cfgctl("env", "changes", "org-a", "--json", "--as", "viewer@example.test").json()
    assert [(r["environment_slug"], r["change"]) for r in pending] == [("prod", {"requires_approval": False})]
    change_id = pending[0]["id"]
    assert cfgctl("env", "approve-change", change_id, *admin).code == 4
    assert cfgctl("env", "request-change", "org-a", "qa", "--delete", *admin).code == 3
    out = cfgctl("env", "approve-change", change_id, *admin2)
    assert out.code == 0 and "now applied" in out.output
    out = cfgctl("env", "request-change", "org-a", "staging", "--position", "5", *admin)
    change_id = out.output.split()[1]
    assert cfgctl("env", "reject-change", change_id, "--reason", " ", *admin2).code == 6
    out = cfgctl("env", "reject-change", change_id, "--reason", "no", *admin2)
    assert out.code == 0 and "now rejected" in out.output
