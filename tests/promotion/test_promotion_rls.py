"""The RLS matrix lines of the promotion tables and RPCs (deployments, their history,
promotion requests, pipeline changes), run by tests/support/rls.py on a world with
deployments and requests in both orgs (tests/support/versioning.py: make_busy). Nobody
writes these tables directly: the RPCs do."""

from __future__ import annotations

from tests.support.act import attempt
from tests.support.rls import (
    DENIED,
    Rpc,
    Table,
    by_id,
    copy_of,
    expect,
    rpc_matrix_test,
    run_as,
    shared_world,
    table_matrix_test,
)
from tests.support.versioning import REQUEST_CHANGE, make_busy

#                                select      insert      update      delete  (the actors: tests/support/rls.py)
MATRIX = {
    "deployments":                 ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "deployment_history":          ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "promotion_requests":          ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
    "environment_change_requests": ("-YYY--Y", "!!!!!!!", "!!!!!!!", "!!!!!!!"),
}


def _first_of_a(table: str):
    return lambda w: (f"select min(id::text)::uuid as id from cfg.{table} where org_id = %(org)s",  # noqa: S608
                      {"org": w.org_a})


UPDATE = ("updated_at", "2030-01-01")
TABLES = {
    "deployments": Table(_first_of_a("deployments"), copy_of("deployments"), UPDATE),
    "deployment_history": Table(_first_of_a("deployment_history"), copy_of("deployment_history"), UPDATE),
    "promotion_requests": Table(by_id("promotion_requests", "pending"), copy_of("promotion_requests"), UPDATE),
    "environment_change_requests": Table(by_id("environment_change_requests", "env_change"),
                                         copy_of("environment_change_requests"), UPDATE),
}

EDITORS = expect(DENIED, "PT403", "ok", "ok", "PT404", "PT404", "ok")
MEMBERS = expect(DENIED, "ok", "ok", "ok", "PT404", "PT404", "ok")
ADMINS = expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")


def _request_status(attr: str):
    return lambda w: ("select status::text from cfg.promotion_requests where id = %(id)s", {"id": getattr(w, attr)})


def _change_status(w):
    return ("select status::text from cfg.environment_change_requests where id = %(id)s", {"id": w.env_change})


def _approve_pending(conn, w) -> None:
    assert run_as(conn, w["admin"], "select cfg.approve_promotion(%s, null, false)", (w.pending,)).ok


RPCS = {
    "promote": Rpc(lambda w: ("select cfg.promote(%(a)s, 'dev', 'staging')", {"a": w.automation_a}), EDITORS),
    "promote: without approval": Rpc(
        lambda w: ("select cfg.promote(%(a)s, 'dev', 'staging', false)", {"a": w.automation_a}), EDITORS),
    "deployment_status": Rpc(lambda w: ("select * from cfg.deployment_status(%(org)s)", {"org": w.org_a}), MEMBERS),
    "list_promotion_requests": Rpc(
        lambda w: ("select * from cfg.list_promotion_requests(%(org)s, null)", {"org": w.org_a}), MEMBERS),
    "approve_promotion": Rpc(lambda w: ("select cfg.approve_promotion(%(id)s)", {"id": w.pending}), ADMINS,
                             effect=_request_status("pending")),
    "reject_promotion": Rpc(lambda w: ("select cfg.reject_promotion(%(id)s, 'no')", {"id": w.pending}), ADMINS,
                            effect=_request_status("pending")),
    "apply_promotion": Rpc(lambda w: ("select cfg.apply_promotion(%(id)s)", {"id": w.pending}), EDITORS,
                           effect=_request_status("pending"), prepare=_approve_pending),
    "request_environment_change": Rpc(lambda w: (REQUEST_CHANGE, (w.org_a, "dev", '{"position": 7}')), ADMINS,
                                      effect=lambda w: ("select count(*) from cfg.environment_change_requests", {})),
    "reject_environment_change": Rpc(
        lambda w: ("select cfg.reject_environment_change(%(id)s, 'no')", {"id": w.env_change}), ADMINS,
        effect=_change_status),
    # Two-person rule: the requester (admin) cannot approve; another admin or the service key can.
    "approve_environment_change": Rpc(
        lambda w: ("select cfg.approve_environment_change(%(id)s)", {"id": w.env_change}),
        {**ADMINS, "admin": "PT403"}, effect=_change_status),
}

shared = shared_world("promotion", make_busy)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)


def test_a_request_of_another_org(shared):
    """The other org's admin requested theirs: they cannot approve it themselves, org A's
    admin cannot see it, the service key can approve it."""
    conn, world = shared
    approve = "select cfg.approve_promotion(%s)"
    expected = {"other_admin": "PT403", "admin": "PT404", "service": "ok"}
    for name, status in expected.items():
        assert attempt(conn, world[name], approve, (world.other_request,), rollback=True).status == status, name


def test_a_second_admin_approves_a_pipeline_change(shared):
    conn, world = shared
    outcome = attempt(conn, world["admin2"], "select cfg.approve_environment_change(%s)", (world.env_change,),
                      rollback=True)
    assert outcome.status == "ok"
