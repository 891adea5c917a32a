"""Every RPC given another org's id answers exactly as for an id that does not exist
(issue 8): same SQLSTATE, same message, same detail once the id itself is set aside.
The caller is org A's admin, the strongest role that is still a stranger to org B."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service.db import acting_as
from tests.support.act import attempt
from tests.support.cluster import create_database, drop_database
from tests.support.vaults import add_backend, bind
from tests.support.versioning import content, save
from tests.support.webhooks import create_endpoint
from tests.support.world import build_world

MISSING_DELIVERY = 9_000_000_000


@pytest.fixture(scope="module")
def foreign(pg_cluster, template_url):
    """Org B with one of everything: an automation with versions, a pending prod
    promotion, a webhook endpoint with a delivery, an invitation, a pipeline change."""
    name = f"foreign_ids_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_cluster, name)
    conn = psycopg.connect(url, row_factory=dict_row)
    world = build_world(conn)
    b, boss = world.automation_b, world["other_admin"]
    save(conn, boss, b, 0, content({"main": {"x": 1}}))
    save(conn, boss, b, 1, content({"main": {"x": 2}}))
    with acting_as(conn, boss) as cur:
        cur.execute("select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (b,))
        request = cur.execute("select cfg.promote(%s, 'staging', 'prod', dry_run => false) as r", (b,)).fetchone()["r"]
        invitation = cur.execute("select id from cfg.invite_member(%s, 'someone@example.test', 'viewer')",
                                 (world.org_b,)).fetchone()["id"]
        env = cur.execute("select id from cfg.environments where org_id = %s and slug = 'staging'",
                          (world.org_b,)).fetchone()["id"]
        change = cur.execute("select id from cfg.request_environment_change(%s, '{\"position\": 7}')",
                             (env,)).fetchone()["id"]
    endpoint = create_endpoint(conn, boss, world.org_b, "https://hooks.example.com/b")["id"]
    with acting_as(conn, boss) as cur:
        cur.execute("select cfg.send_test_webhook(%s)", (endpoint,))
    delivery = conn.execute("select max(id) as id from cfg_private.webhook_deliveries").fetchone()["id"]
    versions = conn.execute("select version, id from cfg.config_versions where automation_id = %s order by version",
                            (b,)).fetchall()
    conn.commit()
    backend, binding, conflict, reveal = external_vault_rows(conn, world)
    automation_type = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                                   (world.org_b,)).fetchone()["id"]
    rule = conn.execute("insert into cfg.validation_rules (org_id, type_id, name, scope, schema) "
                        "values (%s, %s, 'b-rule', 'content', '{}') returning id",
                        (world.org_b, automation_type)).fetchone()["id"]
    template = conn.execute("insert into cfg.templates (org_id, type_id, slug, name) values (%s, %s, 'b-tpl', 'B') "
                            "returning id", (world.org_b, automation_type)).fetchone()["id"]
    saved_filter = conn.execute("insert into cfg.saved_filters (org_id, owner_id, name, shared) "
                                "values (%s, %s, 'b', true) returning id", (world.org_b, boss.user_id)).fetchone()["id"]
    conn.commit()
    with acting_as(conn, boss) as cur:
        schedule = cur.execute("select cfg.add_schedule(%s, '{\"action\": \"status\", \"status\": \"paused\"}', "
                               "at => '2030-01-01T00:00') as s", (b,)).fetchone()["s"]["id"]
    conn.commit()
    ids = {
        "org": world.org_b, "automation": b, "version_1": versions[0]["id"], "version_2": versions[1]["id"],
        "request": request.get("request_id") or request.get("id"), "invitation": invitation, "environment": env,
        "change": change, "endpoint": endpoint, "delivery": delivery, "member": boss.user_id,
        "backend": backend, "binding": binding, "conflict": conflict, "reveal": reveal,
        "automation_type": automation_type, "rule": rule, "template": template,
        "saved_filter": saved_filter,
        "operation": bulk_operation(conn, world),
        "schedule": schedule,
    }
    assert all(ids.values()), ids
    yield conn, world, ids
    conn.close()
    drop_database(pg_cluster, name)


def bulk_operation(conn, world):
    """Org B's bulk operation."""
    selection = {"ids": [str(world.automation_b)]}
    with acting_as(conn, world["other_admin"]) as cur:
        return cur.execute("select cfg.bulk_apply(%s, %s::jsonb, 'tag', %s::jsonb) ->> 'id' as r", (
            world.org_b, json.dumps(selection), json.dumps({"tags": ["b"], "batch_size": 1}),
        )).fetchone()["r"]


def external_vault_rows(conn, world) -> tuple:
    """Org B's vault backend, a binding of a secret of its automation, an open conflict on
    it and a pending reveal."""
    b, boss = world.automation_b, world["other_admin"]
    backend = add_backend(conn, boss, world.org_b, "b-aws")["id"]
    with acting_as(conn, boss) as cur:
        section = cur.execute("insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, 'http') "
                              "returning id", (world.org_b, b)).fetchone()["id"]
        cur.execute("insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
                    "values (%s, %s, %s, 'api_key', '\"b-secret\"', true)", (world.org_b, b, section))
    binding = bind(conn, boss, b, backend, "aws-sm://b/api")["id"]
    conflict = conn.execute("insert into cfg.secret_conflicts (org_id, binding_id, automation_id, external_version) "
                            "values (%s, %s, %s, 'v9') returning id", (world.org_b, binding, b)).fetchone()["id"]
    reveal = conn.execute("insert into cfg_private.external_reveals (org_id, binding_id, requested_by) "
                          "values (%s, %s, %s) returning id", (world.org_b, binding, boss.user_id)).fetchone()["id"]
    conn.commit()
    return backend, binding, conflict, reveal


# (sql, which foreign ids it takes): each is called once with org B's ids and once with
# ids that exist nowhere.
CALLS = {
    "get_config": ("select cfg.get_config(%s)", ["automation"]),
    "config_history": ("select * from cfg.config_history(%s)", ["automation"]),
    "save_config": ("select cfg.save_config(%s, 2, '{\"sections\": {}}')", ["automation"]),
    "patch_config": ("select cfg.patch_config(%s, 2, unset => '{\"main\": [\"x\"]}')", ["automation"]),
    "rollback": ("select cfg.rollback(%s, 1)", ["automation"]),
    "diff_versions": ("select cfg.diff_versions(%s, %s)", ["version_1", "version_2"]),
    "merge_config": ("select cfg.merge_config(%s, %s, '{\"sections\": {}}')", ["version_1", "version_2"]),
    "promote": ("select cfg.promote(%s, 'dev', 'staging')", ["automation"]),
    "approve_promotion": ("select cfg.approve_promotion(%s)", ["request"]),
    "apply_promotion": ("select cfg.apply_promotion(%s)", ["request"]),
    "reject_promotion": ("select cfg.reject_promotion(%s, 'no')", ["request"]),
    "deployment_status": ("select cfg.deployment_status(%s)", ["org"]),
    "list_promotion_requests": ("select * from cfg.list_promotion_requests(%s)", ["org"]),
    "delete_automation": ("select cfg.delete_automation(%s)", ["automation"]),
    # The dependency graph (tests/graph/).
    "impact": ("select cfg.impact(%s)", ["automation"]),
    "resolve_config": ("select cfg.resolve_config(%s, 'dev')", ["automation"]),
    "dependency_graph": ("select cfg.dependency_graph(%s, version => 1, automation_id => %s)", ["org", "automation"]),
    "reveal_secret": ("select cfg.reveal_secret(%s, 'http', 'api_key')", ["automation"]),
    "list_secrets": ("select * from cfg.list_secrets(%s)", ["automation"]),
    "set_secret_rotation": ("select cfg.set_secret_rotation(%s, 'http', 'api_key', '30 days')", ["automation"]),
    "set_secret_reveal_role": ("select * from cfg.set_secret_reveal_role(%s, 'admin')", ["org"]),
    "create_automation": ("select cfg.create_automation(%s, 'X', 'x')", ["org"]),
    "list_members": ("select * from cfg.list_members(%s)", ["org"]),
    "set_member_role": ("select cfg.set_member_role(%s, %s, 'viewer')", ["org", "member"]),
    "remove_member": ("select cfg.remove_member(%s, %s)", ["org", "member"]),
    "audit_events": ("select * from cfg.audit_events(%s)", ["org"]),
    "invite_member": ("select cfg.invite_member(%s, 'x@example.test', 'viewer')", ["org"]),
    "list_invitations": ("select * from cfg.list_invitations(%s)", ["org"]),
    "revoke_invitation": ("select cfg.revoke_invitation(%s)", ["invitation"]),
    "accept_invitation": ("select cfg.accept_invitation(%s)", ["invitation"]),
    "request_environment_change": ("select cfg.request_environment_change(%s, '{\"position\": 9}')",
                                   ["environment"]),
    "approve_environment_change": ("select cfg.approve_environment_change(%s)", ["change"]),
    "reject_environment_change": ("select cfg.reject_environment_change(%s, 'no')", ["change"]),
    "create_webhook_endpoint": ("select cfg.create_webhook_endpoint(%s, 'https://hooks.example.com/x')", ["org"]),
    "delete_webhook_endpoint": ("select cfg.delete_webhook_endpoint(%s)", ["endpoint"]),
    "rotate_webhook_secret": ("select cfg.rotate_webhook_secret(%s)", ["endpoint"]),
    "set_webhook_endpoint_enabled": ("select cfg.set_webhook_endpoint_enabled(%s, false)", ["endpoint"]),
    "send_test_webhook": ("select cfg.send_test_webhook(%s)", ["endpoint"]),
    "retry_failed_webhook_deliveries": ("select cfg.retry_failed_webhook_deliveries(%s, now() - interval '1 day')",
                                        ["endpoint"]),
    "webhook_deliveries": ("select * from cfg.webhook_deliveries(%s)", ["endpoint"]),
    "retry_webhook_delivery": ("select cfg.retry_webhook_delivery(%s)", ["delivery"]),
    "webhook_delivery_attempts": ("select * from cfg.webhook_delivery_attempts(%s)", ["delivery"]),
    # What the CLI and a dashboard read (tests/tenancy/test_lookups.py), and the host allowlist.
    "find_environment": ("select * from cfg.find_environment(%s, 'dev')", ["org"]),
    "list_environments": ("select * from cfg.list_environments(%s)", ["org"]),
    "list_automations": ("select * from cfg.list_automations(%s)", ["org"]),
    "select_automations": ("select * from cfg.select_automations(%s, '{\"ids\": []}')", ["org"]),
    "list_environment_changes": ("select * from cfg.list_environment_changes(%s)", ["org"]),
    "changes_since": ("select cfg.changes_since(%s)", ["org"]),
    "list_webhook_endpoints": ("select * from cfg.list_webhook_endpoints(%s)", ["org"]),
    "list_webhook_allowed_hosts": ("select * from cfg.list_webhook_allowed_hosts(%s)", ["org"]),
    "allow_webhook_host": ("select cfg.allow_webhook_host(%s, '10.0.0.1')", ["org"]),
    "disallow_webhook_host": ("select cfg.disallow_webhook_host(%s, '10.0.0.1')", ["org"]),
    # External vaults (tests/secrets/test_external_sync.py).
    "add_vault_backend": ("select cfg.add_vault_backend(%s, 'x', 'aws_sm', '{\"region\": \"r\"}', "
                          "'{\"access_key_id\": \"a\", \"secret_access_key\": \"b\"}')", ["org"]),
    "list_vault_backends": ("select * from cfg.list_vault_backends(%s)", ["org"]),
    "test_vault_backend": ("select cfg.test_vault_backend(%s)", ["backend"]),
    "remove_vault_backend": ("select cfg.remove_vault_backend(%s)", ["backend"]),
    "bind_secret": ("select cfg.bind_secret(%s, 'http', 'api_key', %s, 'aws-sm://x')", ["automation", "backend"]),
    "unbind_secret": ("select cfg.unbind_secret(%s)", ["binding"]),
    "sync_secret_binding": ("select cfg.sync_secret_binding(%s)", ["binding"]),
    "list_secret_bindings": ("select * from cfg.list_secret_bindings(%s)", ["automation"]),
    "list_secret_conflicts": ("select * from cfg.list_secret_conflicts(%s)", ["org"]),
    "resolve_secret_conflict": ("select cfg.resolve_secret_conflict(%s, 'keep_local')", ["conflict"]),
    "collect_revealed_secret": ("select cfg.collect_revealed_secret(%s)", ["reveal"]),
    # Validation (tests/validation/).
    "add_automation_type": ("select cfg.add_automation_type(%s, 'x', 'X')", ["org"]),
    "list_automation_types": ("select * from cfg.list_automation_types(%s)", ["org"]),
    "remove_automation_type": ("select cfg.remove_automation_type(%s)", ["automation_type"]),
    "add_validation_rule": ("select cfg.add_validation_rule(%s, '{\"name\": \"x\", \"scope\": \"content\"}')",
                            ["automation_type"]),
    "edit_validation_rule": ("select cfg.edit_validation_rule(%s, '{}')", ["rule"]),
    "remove_validation_rule": ("select cfg.remove_validation_rule(%s)", ["rule"]),
    "list_validation_rules": ("select * from cfg.list_validation_rules(%s)", ["org"]),
    "test_validation_rule": ("select * from cfg.test_validation_rule(%s, '{\"scope\": \"content\"}')",
                             ["automation_type"]),
    "validate_config": ("select cfg.validate_config(%s)", ["automation"]),
    # Templates and cloning (tests/templates/).
    "add_template": ("select cfg.add_template(%s, 'service', 'x', 'X', '{\"sections\": {}}')", ["org"]),
    "edit_template": ("select cfg.edit_template(%s)", ["template"]),
    "get_template": ("select cfg.get_template(%s)", ["template"]),
    "list_templates": ("select * from cfg.list_templates(%s)", ["org"]),
    "create_automation_from_template": ("select cfg.create_automation_from_template(%s, %s, 'X', 'x')",
                                        ["org", "template"]),
    "template_drift": ("select cfg.template_drift(%s)", ["automation"]),
    "apply_template": ("select cfg.apply_template(%s)", ["automation"]),
    "clone_automation": ("select cfg.clone_automation(%s, 'X', 'x')", ["automation"]),
    "automation_origin": ("select cfg.automation_origin(%s)", ["automation"]),
    # Search and saved filters (tests/search/).
    "search": ("select cfg.search('x', %s)", ["org"]),
    "save_filter": ("select cfg.save_filter(%s, 'x')", ["org"]),
    "reindex_search": ("select cfg.reindex_search(%s)", ["org"]),
    # No id argument (its rows carry org_id and automation_id): the caller's orgs only.
    "quick_find": ("select * from cfg.quick_find('other')", []),
    "list_saved_filters": ("select * from cfg.list_saved_filters(%s)", ["org"]),
    "run_saved_filter": ("select cfg.run_saved_filter(%s)", ["saved_filter"]),
    "delete_saved_filter": ("select cfg.delete_saved_filter(%s)", ["saved_filter"]),
    # Bulk operations (tests/bulk/).
    "bulk_apply": ("select cfg.bulk_apply(%s, '{\"ids\": []}', 'tag', '{\"tags\": [\"x\"]}')", ["org"]),
    "bulk_continue": ("select cfg.bulk_continue(%s)", ["operation"]),
    "cancel_bulk_operation": ("select cfg.cancel_bulk_operation(%s)", ["operation"]),
    "get_bulk_operation": ("select cfg.get_bulk_operation(%s)", ["operation"]),
    "list_bulk_operations": ("select * from cfg.list_bulk_operations(%s)", ["org"]),
    "decide_bulk_promotions": ("select cfg.decide_bulk_promotions(%s, true)", ["operation"]),
    # Schedules (tests/schedules/).
    "add_schedule": ("select cfg.add_schedule(%s, '{\"action\": \"status\", \"status\": \"paused\"}', "
                     "at => '2030-01-01T00:00')", ["automation"]),
    "edit_schedule": ("select cfg.edit_schedule(%s, '{}')", ["schedule"]),
    "pause_schedule": ("select cfg.pause_schedule(%s)", ["schedule"]),
    "resume_schedule": ("select cfg.resume_schedule(%s)", ["schedule"]),
    "cancel_schedule": ("select cfg.cancel_schedule(%s)", ["schedule"]),
    "approve_schedule": ("select cfg.approve_schedule(%s)", ["schedule"]),
    "list_schedules": ("select * from cfg.list_schedules(%s)", ["org"]),
    "schedule_timeline": ("select * from cfg.schedule_timeline(%s)", ["org"]),
    # Export and import (tests/export/).
    "export_automations": ("select cfg.export_automations(%s, '{\"ids\": []}')", ["org"]),
    "import_automations": ("select cfg.import_automations(%s, '{}')", ["org"]),
    # Analytics (tests/analytics/).
    "analytics_changes": ("select cfg.analytics_changes(%s, automation_id => %s)", ["org", "automation"]),
    "analytics_top_automations": ("select cfg.analytics_top_automations(%s)", ["org"]),
    "analytics_promotions": ("select cfg.analytics_promotions(%s)", ["org"]),
    "analytics_active_users": ("select cfg.analytics_active_users(%s)", ["org"]),
    "analytics_validation_failures": ("select cfg.analytics_validation_failures(%s)", ["org"]),
    # No id argument (its rows carry org_id): the caller's own invitations, none of org B's.
    "my_invitations": ("select * from cfg.my_invitations()", []),
}


def answer(conn, who, sql, params) -> tuple:
    """(sqlstate, message, detail) with the ids passed in replaced by a placeholder."""
    out = attempt(conn, who, sql, params)
    if out.ok:
        return ("ok", len(out.rows))
    passed = {str(value) for value in params}
    detail = {k: "<id>" if str(v) in passed else v for k, v in (out.detail or {}).items()}
    return (out.code, out.message, json.dumps(detail, sort_keys=True, default=str))


def test_every_rpc_with_an_id_is_in_the_sweep(foreign):
    conn, _, _ = foreign
    with_ids = conn.execute(
        "select p.proname from pg_proc p where p.pronamespace = 'cfg'::regnamespace "
        "and p.proargnames && array['org_id', 'automation_id', 'request_id', 'endpoint_id', 'delivery_id', "
        "'invitation_id', 'environment_id', 'base_version_id', 'from_version_id', 'backend_id', 'binding_id', "
        "'conflict_id', 'type_id', 'rule_id', 'template_id', 'source_automation_id', 'filter_id', 'operation_id', "
        "'schedule_id'] order by 1"
    ).fetchall()
    conn.commit()
    assert sorted(r["proname"] for r in with_ids) == sorted(CALLS)


@pytest.mark.parametrize("rpc", CALLS)
def test_another_orgs_id_answers_like_a_missing_one(foreign, rpc):
    conn, world, ids = foreign
    sql, kinds = CALLS[rpc]
    theirs = tuple(ids[k] for k in kinds)
    missing = tuple(MISSING_DELIVERY if k == "delivery" else uuid.uuid4() for k in kinds)
    got_theirs = answer(conn, world["admin"], sql, theirs)
    got_missing = answer(conn, world["admin"], sql, missing)
    assert got_theirs == got_missing
    assert got_theirs[0] in ("PT404", "ok"), got_theirs
