"""Deployments per environment, promotion along the pipeline, approvals, status (issue 3, part 5)."""

from __future__ import annotations

import json

import pytest
from versioning_helpers import content, events, refused, rpc, save

from sync_service.db import acting_as

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
