"""The webhook host allowlist (issue 9, item 3): the operator (service key) writes it through
allow_webhook_host / disallow_webhook_host, the org's admins read it through
list_webhook_allowed_hosts; and the `cfgctl webhook allow-host / disallow-host /
allowed-hosts` commands. Matrix lines: tests/webhooks/test_webhooks_rls.py."""

from __future__ import annotations

import json
import uuid

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.act import attempt


def allowlist(conn, org) -> list[str]:
    return [r["host"] for r in conn.execute(
        "select host from cfg.webhook_allowed_hosts where org_id = %s order by host", (org,))]


def audit_rows(conn, org) -> list[tuple]:
    return [(r["operation"], r["actor_role"]) for r in conn.execute(
        "select operation, actor_role from cfg.audit_log where org_id = %s and table_name = 'webhook_allowed_hosts' "
        "order by id", (org,))]


def as_service(conn, world, sql, *params):
    """The call as the operator; it must succeed: its rows."""
    out = attempt(conn, world["service"], sql, params)
    assert out.ok, out
    return out.rows


def test_admins_list_their_orgs_allowed_hosts_only(conn, world):
    as_service(conn, world, "select cfg.allow_webhook_host(%s, '10.1.2.3')", world.org_a)
    hosts = attempt(conn, world["admin"], "select * from cfg.list_webhook_allowed_hosts(%s)", (world.org_a,))
    assert [h["host"] for h in hosts.rows] == ["10.1.2.3"]
    assert as_service(conn, world, "select * from cfg.list_webhook_allowed_hosts(%s)", world.org_b) == []


@pytest.mark.parametrize("given, stored", [
    ("Hooks.Internal.", "hooks.internal"),
    ("  10.0.0.5 ", "10.0.0.5"),
    ("10.0.0.9/8", "10.0.0.0/8"),
    ("0:0:0:0:0:0:0:1", "::1"),
    ("[fd00::1]", "fd00::1"),
    ("fd00::1/64", "fd00::/64"),
    ("localhost", "localhost"),
])
def test_allowed_hosts_are_normalised_as_the_guard_compares_them(conn, world, given, stored):
    row = as_service(conn, world, "select * from cfg.allow_webhook_host(%s, %s)", world.org_a, given)[0]
    assert row["host"] == stored and row["org_id"] == world.org_a
    assert allowlist(conn, world.org_a) == [stored]


def test_allowing_is_idempotent_and_audited_once(conn, world):
    first = as_service(conn, world, "select * from cfg.allow_webhook_host(%s, '10.0.0.0/24')", world.org_a)[0]
    again = as_service(conn, world, "select * from cfg.allow_webhook_host(%s, '10.0.0.7/24')", world.org_a)[0]
    assert again["id"] == first["id"] and allowlist(conn, world.org_a) == ["10.0.0.0/24"]
    assert audit_rows(conn, world.org_a) == [("INSERT", "service_role")]
    # The entry does what it says: an admin may now add an endpoint on that network.
    added = attempt(conn, world["admin"], "select cfg.create_webhook_endpoint(%s, 'http://10.0.0.5:8080/hook')",
                    (world.org_a,))
    assert added.ok, added
    gone = as_service(conn, world, "select * from cfg.disallow_webhook_host(%s, '10.0.0.0/24')", world.org_a)[0]
    assert gone["id"] == first["id"] and allowlist(conn, world.org_a) == []
    assert audit_rows(conn, world.org_a) == [("INSERT", "service_role"), ("DELETE", "service_role")]
    refused = attempt(conn, world["admin"], "select cfg.create_webhook_endpoint(%s, 'http://10.0.0.6:8080/hook')",
                      (world.org_a,))
    assert refused.code == "PT422"


@pytest.mark.parametrize("host", ["", "   ", None, "127.1", "2130706433", "0x7f.1", "10.0.0.01", "a..b",
                                  "host:80", "http://hooks.internal", "hooks.internal/path", "10.0.0.0/33",
                                  "::1/129", "10.0.0.0/", "x'; delete from cfg.webhook_allowed_hosts; --",
                                  "bücher.example", "a" * 254, "*.internal"])
def test_bad_hosts_are_refused_and_change_nothing(conn, world, host):
    as_service(conn, world, "select cfg.allow_webhook_host(%s, 'kept.internal')", world.org_a)
    for rpc in ("allow_webhook_host", "disallow_webhook_host"):
        error = attempt(conn, world["service"], f"select cfg.{rpc}(%s, %s)", (world.org_a, host))  # noqa: S608
        assert error.code == "PT422", (rpc, host)
        assert "invalid webhook host" in error.message and error.detail["field"] == "host"
    assert allowlist(conn, world.org_a) == ["kept.internal"]


def test_disallowing_a_host_that_is_not_there_is_not_found(conn, world):
    as_service(conn, world, "select cfg.allow_webhook_host(%s, 'hooks.internal')", world.org_b)
    error = attempt(conn, world["service"], "select cfg.disallow_webhook_host(%s, 'hooks.internal')", (world.org_a,))
    assert error.code == "PT404" and "not on this organisation's webhook allowlist" in error.message
    assert allowlist(conn, world.org_b) == ["hooks.internal"]


def test_entries_written_before_normalisation_can_be_taken_off(conn, world):
    # The earlier `allow-host` stored lower(HOST) as given: such entries are removable as written.
    conn.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, '10.0.0.9/8'), (%s, '127.1')",
                 (world.org_a, world.org_a))
    conn.commit()
    for written in ("10.0.0.9/8", "127.1"):
        gone = as_service(conn, world, "select host from cfg.disallow_webhook_host(%s, %s)", world.org_a, written)
        assert gone[0]["host"] == written
    assert allowlist(conn, world.org_a) == []


def test_admins_read_the_allowlist_but_only_the_operator_changes_it(conn, world):
    error = attempt(conn, world["admin"], "select cfg.allow_webhook_host(%s, '10.0.0.1')", (world.org_a,))
    assert error.code == "PT403" and "operator (the service role)" in error.message
    error = attempt(conn, world["admin"], "select cfg.allow_webhook_host(%s, '10.0.0.1')", (world.org_b,))
    assert error.code == "PT404"
    error = attempt(conn, world["service"], "select cfg.allow_webhook_host(%s, '10.0.0.1')", (uuid.uuid4(),))
    assert error.code == "PT404"
    assert allowlist(conn, world.org_a) == [] and allowlist(conn, world.org_b) == []


def test_no_setting_lets_an_admin_write_the_allowlist(conn, world):
    # The operator check reads the role the transaction runs as, never a client-settable claim.
    # Several statements in one transaction: acting_as itself rather than attempt.
    with pytest.raises(CfgError) as error, acting_as(conn, world["admin"]) as cur:
        cur.execute("select set_config('request.jwt.claims', %s, true)",
                    (json.dumps({"sub": str(world["admin"].user_id), "role": "service_role"}),))
        cur.execute("select set_config('request.jwt.claim.role', 'service_role', true)")
        cur.execute("select cfg.allow_webhook_host(%s, '10.0.0.1')", (world.org_a,))
    assert error.value.code == "PT403"
    assert allowlist(conn, world.org_a) == []


# =============================================================================
# The commands
# =============================================================================

SERVICE_OPT = ("--service", "--json")
ADMIN_OPT = ("--as", "admin@example.test")


def test_webhook_allowlist_commands(cfgctl, world, conn):
    added = cfgctl("webhook", "allow-host", "org-a", "Hooks.Internal", *SERVICE_OPT)
    assert added.code == 0, added.err
    assert added.json()["host"] == "hooks.internal"
    assert cfgctl("webhook", "allow-host", "org-a", "hooks.internal", *SERVICE_OPT).code == 0  # idempotent
    listed = cfgctl("webhook", "allowed-hosts", "org-a", *ADMIN_OPT, "--json")
    assert listed.code == 0 and [h["host"] for h in listed.json()] == ["hooks.internal"]
    table = cfgctl("webhook", "allowed-hosts", "org-a", *ADMIN_OPT)
    assert "hooks.internal" in table.out
    # Exit codes: forbidden 4, invalid 6, not found 3; nothing changes.
    denied = cfgctl("webhook", "allow-host", "org-a", "10.0.0.1", *ADMIN_OPT)
    assert denied.code == 4 and "operator" in denied.err
    assert cfgctl("webhook", "allowed-hosts", "org-a", "--as", "editor@example.test").code == 4
    assert cfgctl("webhook", "allow-host", "org-a", "127.1", *SERVICE_OPT).code == 6
    assert cfgctl("webhook", "allow-host", "org-zz", "10.0.0.1", *SERVICE_OPT).code == 3
    assert cfgctl("webhook", "disallow-host", "org-a", "other.internal", *SERVICE_OPT).code == 3
    assert allowlist(conn, world.org_a) == ["hooks.internal"]
    removed = cfgctl("webhook", "disallow-host", "org-a", "hooks.internal", "--service")
    assert removed.code == 0 and "hooks.internal is no longer allowed" in removed.out
    assert allowlist(conn, world.org_a) == []
