"""The RLS matrix lines of the webhook tables and RPCs, run by tests/support/rls.py on a
world with an endpoint of org A, an allowed host and a failed delivery; and the private
tables and dispatcher functions, out of reach of every API role but the service key."""

from __future__ import annotations

import pytest

from tests.support.act import attempt
from tests.support.rls import (
    DENIED,
    Rpc,
    Table,
    by_id,
    expect,
    rpc_matrix_test,
    shared_world,
    table_matrix_test,
)
from tests.support.webhooks import PUBLIC_URL, allow_host, claim_and_record, create_endpoint, deliveries, emit

#                          select      insert      update      delete     (the actors: tests/support/rls.py)
MATRIX = {
    "webhook_endpoints":     ("---Y--Y", "---Y--Y", "---Y--Y", "---Y--Y"),
    # Managed by the service key only (the operators' allowlist); admins read it.
    "webhook_allowed_hosts": ("---Y--Y", "!!!!!!Y", "!!!!!!Y", "!!!!!!Y"),
}

TABLES = {
    "webhook_endpoints": Table(
        by_id("webhook_endpoints", "endpoint"),
        lambda w: ("insert into cfg.webhook_endpoints (org_id, url) values (%(org)s, %(url)s)",
                   {"org": w.org_a, "url": PUBLIC_URL}),
        update=("description", "changed"),
    ),
    "webhook_allowed_hosts": Table(
        lambda w: ("select id from cfg.webhook_allowed_hosts where org_id = %(org)s", {"org": w.org_a}),
        lambda w: ("insert into cfg.webhook_allowed_hosts (org_id, host) values (%(org)s, '10.0.0.1')",
                   {"org": w.org_a}),
        update=("host", "10.0.0.2"),
    ),
}

ADMINS = expect(DENIED, "PT403", "PT403", "ok", "PT404", "PT404", "ok")
OPERATOR = expect(DENIED, "PT403", "PT403", "PT403", "PT404", "PT404", "ok")


def _allowed_hosts(w):
    return ("select count(*) from cfg.webhook_allowed_hosts where org_id = %(org)s", {"org": w.org_a})


def _endpoints(w):
    return ("select count(*) from cfg.webhook_endpoints where org_id = %(org)s", {"org": w.org_a})


def _on_endpoint(template: str):
    return lambda w: (template, {"id": w.endpoint})


def _on_delivery(template: str):
    return lambda w: (template, {"id": w.delivery})


def _delivery_status(w):
    return ("select status::text from cfg_private.webhook_deliveries where id = %(id)s", {"id": w.delivery})


RPCS = {
    "create_webhook_endpoint": Rpc(
        lambda w: ("select cfg.create_webhook_endpoint(%(org)s, %(url)s)", {"org": w.org_a, "url": PUBLIC_URL}),
        ADMINS, effect=_endpoints),
    "rotate_webhook_secret": Rpc(_on_endpoint("select cfg.rotate_webhook_secret(%(id)s)"), ADMINS),
    "send_test_webhook": Rpc(_on_endpoint("select cfg.send_test_webhook(%(id)s)"), ADMINS,
                             effect=lambda w: ("select count(*) from cfg_private.webhook_deliveries", {})),
    "webhook_deliveries": Rpc(_on_endpoint("select * from cfg.webhook_deliveries(%(id)s)"), ADMINS),
    "webhook_delivery_attempts": Rpc(_on_delivery("select * from cfg.webhook_delivery_attempts(%(id)s)"), ADMINS),
    "retry_webhook_delivery": Rpc(_on_delivery("select * from cfg.retry_webhook_delivery(%(id)s)"), ADMINS,
                                  effect=_delivery_status),
    "retry_failed_webhook_deliveries": Rpc(
        _on_endpoint("select cfg.retry_failed_webhook_deliveries(%(id)s, now() - interval '1 day')"), ADMINS,
        effect=_delivery_status),
    "set_webhook_endpoint_enabled": Rpc(_on_endpoint("select cfg.set_webhook_endpoint_enabled(%(id)s, true)"),
                                        ADMINS),
    "delete_webhook_endpoint": Rpc(_on_endpoint("select cfg.delete_webhook_endpoint(%(id)s)"), ADMINS,
                                   effect=_endpoints),
    # Any signed-in user, not anon.
    "webhook_event_types": Rpc(lambda w: ("select * from cfg.webhook_event_types()", {}),
                               expect(DENIED, "ok", "ok", "ok", "ok", "ok", "ok")),
    "list_webhook_endpoints": Rpc(lambda w: ("select * from cfg.list_webhook_endpoints(%(org)s)", {"org": w.org_a}),
                                  ADMINS),
    "list_webhook_allowed_hosts": Rpc(
        lambda w: ("select * from cfg.list_webhook_allowed_hosts(%(org)s)", {"org": w.org_a}), ADMINS),
    # The allowlist is the operator's (tests/webhooks/test_webhooks_allowlist.py): the service key only.
    "allow_webhook_host": Rpc(
        lambda w: ("select * from cfg.allow_webhook_host(%(org)s, 'hooks.internal')", {"org": w.org_a}),
        OPERATOR, effect=_allowed_hosts),
    "disallow_webhook_host": Rpc(
        lambda w: ("select * from cfg.disallow_webhook_host(%(org)s, '127.0.0.1')", {"org": w.org_a}),
        OPERATOR, effect=_allowed_hosts),
}


def with_a_failed_delivery(conn, world) -> None:
    """world.endpoint (org A, by its admin), 127.0.0.1 allowed in org A, world.delivery failed."""
    allow_host(conn, world.org_a, "127.0.0.1")
    world.endpoint = create_endpoint(conn, world["admin"], world.org_a, PUBLIC_URL)["id"]
    emit(conn, world.org_a)
    claim_and_record(conn, "failed")
    world.delivery = deliveries(conn, world.endpoint)[0]["id"]


shared = shared_world("webhooks", with_a_failed_delivery)
test_table_matrix = table_matrix_test(MATRIX, TABLES)
test_rpc_matrix = rpc_matrix_test(RPCS)

PRIVATE = [
    "select * from cfg_private.webhook_secrets",
    "select * from cfg_private.webhook_deliveries",
    "select * from cfg_private.webhook_attempts",
    "select * from cfg_private.webhook_endpoint_health",
    "select * from cfg_private.event_types",
]
DISPATCHER = [
    "select * from cfg_private.claim_webhook_deliveries('x', 1, '1 minute')",
    "select cfg_private.record_webhook_attempts('x', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
]


@pytest.mark.parametrize("sql", PRIVATE + DISPATCHER)
def test_private_tables_and_dispatcher_functions_are_the_service_keys(shared, sql):
    conn, world = shared
    for who in ("anon", "viewer", "editor", "admin", "other_admin", "outsider"):
        assert attempt(conn, world[who], sql, rollback=True).status == "42501", who
    if sql in PRIVATE:
        assert attempt(conn, world["service"], sql, rollback=True).ok
