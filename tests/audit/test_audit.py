"""The audit log: who, what and when; append-only; retention; redaction; the audit_events RPC."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from sync_service.db import CfgError, acting_as
from tests.support.world import add_member, create_user

SECRET = "sk_live_hunter2"


@pytest.fixture(autouse=True)
def _autocommit(conn, world):
    # Superuser reads between acting_as blocks must not open a transaction that would
    # turn the next acting_as into a savepoint (whose SET LOCAL role would outlive it).
    conn.autocommit = True


def audit_rows(conn, **where) -> list[dict]:
    clauses = " and ".join(f"{k} = %({k})s" for k in where) or "true"
    return conn.execute(
        "select * from cfg.audit_log where " + clauses + " order by id", where  # noqa: S608 (keys are ours)
    ).fetchall()


# =============================================================================
# Who, what, when
# =============================================================================


def test_insert_records_actor_table_row_org_automation_and_transaction(conn, world):
    editor = world["editor"]
    with acting_as(conn, editor) as cur:
        entry = cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
            "values (%s, %s, %s, 'timeout', '30') returning id, created_at",
            (world.org_a, world.automation_a, world.section_a),
        ).fetchone()
        txid = cur.execute("select txid_current() as t").fetchone()["t"]
    [row] = audit_rows(conn, row_id=entry["id"])
    assert row["actor_id"] == editor.user_id
    assert row["actor_email"] == "editor@example.test"
    assert row["actor_role"] == "authenticated"
    assert row["table_name"] == "config_entries"
    assert row["operation"] == "INSERT"
    assert row["org_id"] == world.org_a
    assert row["automation_id"] == world.automation_a
    assert row["txid"] == txid
    assert row["created_at"] == entry["created_at"]  # transaction time
    assert row["old_values"] is None
    assert row["new_values"]["key"] == "timeout" and row["new_values"]["value"] == 30


def test_update_records_only_changed_fields(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("update cfg.automations set description = 'Bills people', tags = '{prod}' "
                    "where id = %s", (world.automation_a,))
    [row] = [r for r in audit_rows(conn, row_id=world.automation_a) if r["operation"] == "UPDATE"]
    # updated_at changes on every write and is left out; nothing else changed.
    assert row["old_values"] == {"description": "", "tags": []}
    assert row["new_values"] == {"description": "Bills people", "tags": ["prod"]}
    assert row["automation_id"] == world.automation_a and row["org_id"] == world.org_a
    assert row["actor_id"] == world["admin"].user_id


def test_update_that_changes_nothing_leaves_no_row(conn, world):
    before = len(audit_rows(conn, org_id=world.org_a))
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("update cfg.automations set name = name where id = %s", (world.automation_a,))
        assert cur.rowcount == 1
    assert len(audit_rows(conn, org_id=world.org_a)) == before


def test_delete_records_the_old_row_and_cascades_share_a_transaction(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.delete_automation(%s)", (world.automation_a,))
    deletes = [r for r in audit_rows(conn, org_id=world.org_a) if r["operation"] == "DELETE"]
    # Versions and deployments go with the automation too (their own audit rows).
    assert {r["table_name"] for r in deletes} >= {
        "automations", "config_sections", "config_entries", "entry_secrets"}
    assert len({r["txid"] for r in deletes}) == 1
    # Secret value rows carry no automation_id; once a cascade removed their entry, the
    # entry's own DELETE row (same txid) names the automation.
    assert all(r["automation_id"] == world.automation_a for r in deletes if r["table_name"] != "entry_secrets")
    automation = next(r for r in deletes if r["table_name"] == "automations")
    assert automation["new_values"] is None and automation["old_values"]["slug"] == "billing"
    assert automation["actor_email"] == "admin@example.test"


def test_org_rows_use_the_org_id_and_no_automation(conn, world):
    [row] = [r for r in audit_rows(conn, table_name="orgs") if r["row_id"] == world.org_a]
    assert row["org_id"] == world.org_a and row["automation_id"] is None
    assert row["operation"] == "INSERT" and row["actor_id"] == world["admin"].user_id


def test_service_role_is_recorded_as_service_role(conn, world):
    with acting_as(conn, world["service"]) as cur:
        cur.execute("update cfg.automations set status = 'paused' where id = %s", (world.automation_a,))
    row = audit_rows(conn, row_id=world.automation_a)[-1]
    assert row["actor_role"] == "service_role"
    assert row["actor_id"] is None and row["actor_email"] is None
    assert row["new_values"] == {"status": "paused"}


def test_dba_work_is_recorded_with_the_database_role(conn, world):
    conn.execute("update cfg.automations set status = 'archived' where id = %s", (world.automation_a,))
    conn.commit()
    row = audit_rows(conn, row_id=world.automation_a)[-1]
    assert row["actor_role"] == "postgres" and row["actor_id"] is None
    # Another DBA role (here Supabase's own superuser) is named as itself, not as the
    # owner of the security-definer audit trigger.
    with conn.transaction():
        conn.execute("set local role supabase_admin")
        conn.execute("update cfg.automations set status = 'active' where id = %s", (world.automation_a,))
    row = audit_rows(conn, row_id=world.automation_a)[-1]
    assert row["actor_role"] == "supabase_admin"


def test_every_cfg_table_writes_audit_rows(conn, world):
    tables = {r["table_name"] for r in audit_rows(conn, org_id=world.org_a)}
    assert tables >= {"orgs", "org_members", "environments", "automations", "config_sections",
                      "config_entries", "entry_secrets", "config_versions", "deployments"}


# =============================================================================
# Append-only
# =============================================================================


@pytest.mark.parametrize("actor", ["admin", "editor", "service"])
@pytest.mark.parametrize("statement", [
    "update cfg.audit_log set actor_email = 'forged@example.test'",
    "delete from cfg.audit_log",
    "truncate cfg.audit_log",
])
def test_api_roles_cannot_change_the_log(conn, world, actor, statement):
    before = conn.execute("select count(*), md5(string_agg(t::text, '' order by id)) from cfg.audit_log t"
                          ).fetchone()
    conn.commit()
    with pytest.raises(CfgError) as info, acting_as(conn, world[actor]) as cur:
        cur.execute(statement)
    assert info.value.code == "42501"
    assert "permission denied for table audit_log" in str(info.value)
    after = conn.execute("select count(*), md5(string_agg(t::text, '' order by id)) from cfg.audit_log t"
                         ).fetchone()
    assert after == before


@pytest.mark.parametrize("statement", [
    "update cfg.audit_log set actor_email = 'forged@example.test'",
    "delete from cfg.audit_log",
    "truncate cfg.audit_log",
])
def test_even_the_superuser_cannot_change_the_log(conn, world, statement):
    count = conn.execute("select count(*) from cfg.audit_log").fetchone()["count"]
    conn.commit()
    with pytest.raises(psycopg.Error) as info:
        conn.execute(statement)
    conn.rollback()
    assert info.value.sqlstate == "PT403"
    assert "append-only" in str(info.value)
    assert "purge_audit_log" in info.value.diag.message_hint
    assert conn.execute("select count(*) from cfg.audit_log").fetchone()["count"] == count


def test_the_retention_switch_cannot_be_flipped_by_a_user(conn, world):
    # The trigger lets deletes through only inside purge_audit_log; a user setting the
    # same GUC still lacks the table privilege.
    with pytest.raises(CfgError) as info, acting_as(conn, world["admin"]) as cur:
        cur.execute("select set_config('cfgctl.audit_retention', 'on', true)")
        cur.execute("delete from cfg.audit_log")
    assert info.value.code == "42501"


# =============================================================================
# Retention
# =============================================================================


def _age_rows(conn, org_id, count: int, age: timedelta) -> None:
    # Written as the superuser: inserting is the one write the log accepts.
    conn.execute(
        "insert into cfg.audit_log (org_id, actor_role, table_name, row_id, operation, created_at) "
        "select %s, 'postgres', 'orgs', %s, 'INSERT', now() - %s from generate_series(1, %s)",
        (org_id, org_id, age, count),
    )
    conn.commit()


def test_purge_removes_old_rows_and_keeps_recent_ones(conn, world):
    _age_rows(conn, world.org_a, 3, timedelta(days=400))
    _age_rows(conn, world.org_a, 2, timedelta(days=20))
    recent = conn.execute("select count(*) from cfg.audit_log where created_at > now() - interval '1 day'"
                          ).fetchone()["count"]
    with acting_as(conn, world["service"]) as cur:
        removed = cur.execute("select cfg_private.purge_audit_log(interval '1 year') as n").fetchone()["n"]
    assert removed == 3
    ages = conn.execute(
        "select count(*) filter (where created_at < now() - interval '1 year') as old, "
        "count(*) filter (where created_at < now() - interval '10 days') as month, "
        "count(*) filter (where created_at > now() - interval '1 day') as recent from cfg.audit_log"
    ).fetchone()
    assert ages == {"old": 0, "month": 2, "recent": recent}
    # The switch is off again after the purge: a plain delete is still refused.
    with pytest.raises(psycopg.Error) as info:
        conn.execute("delete from cfg.audit_log")
    conn.rollback()
    assert info.value.sqlstate == "PT403"


@pytest.mark.parametrize("keep", ["23 hours", "0 seconds", "-1 day", None])
def test_purge_refuses_to_keep_less_than_a_day(conn, world, keep):
    count = conn.execute("select count(*) from cfg.audit_log").fetchone()["count"]
    conn.commit()
    with pytest.raises(psycopg.Error) as info:
        conn.execute("select cfg_private.purge_audit_log(%s::interval)", (keep,))
    conn.rollback()
    assert info.value.sqlstate == "PT422"
    assert "at least one day" in str(info.value)
    assert conn.execute("select count(*) from cfg.audit_log").fetchone()["count"] == count


@pytest.mark.parametrize("actor", ["admin", "editor", "viewer", "anon"])
def test_purge_is_not_executable_by_api_users(conn, world, actor):
    _age_rows(conn, world.org_a, 1, timedelta(days=800))
    with pytest.raises(CfgError) as info, acting_as(conn, world[actor]) as cur:
        cur.execute("select cfg_private.purge_audit_log(interval '1 day')")
    assert info.value.code == "42501"
    assert "permission denied" in str(info.value)
    old = conn.execute("select count(*) from cfg.audit_log where created_at < now() - interval '2 years'"
                       ).fetchone()["count"]
    assert old == 1


# =============================================================================
# Redaction: the secret value never reaches the log, whatever path wrote it.
# =============================================================================


def _log_mentions(conn, needle: str) -> int:
    return conn.execute(
        "select count(*) from cfg.audit_log t where t::text like %s", (f"%{needle}%",)
    ).fetchone()["count"]


def test_secret_values_never_reach_the_audit_log(conn, world):
    # The world already inserted a secret entry holding SECRET.
    editor = world["editor"]
    with acting_as(conn, editor) as cur:
        # A new secret entry, then its value rotated through config_entries.
        new_id = cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret) "
            "values (%s, %s, %s, 'db_password', %s, true) returning id",
            (world.org_a, world.automation_a, world.section_a, f'"{SECRET}-db"'),
        ).fetchone()["id"]
        cur.execute("update cfg.config_entries set value = %s where id = %s",
                    (f'"{SECRET}-rotated"', new_id))
        # Directly through config_entries once more (entry_secrets takes no API writes).
        cur.execute("update cfg.config_entries set value = %s where id = %s",
                    (f'"{SECRET}-direct"', world.secret_entry_a))
        # A plain entry becoming secret with a new value.
        cur.execute("update cfg.config_entries set is_secret = true, value = %s where id = %s",
                    (f'"{SECRET}-flipped"', world.entry_a))
        # A secret entry becoming plain: the stored secret is deleted (and audited).
        cur.execute("update cfg.config_entries set is_secret = false, value = '\"public\"' where id = %s",
                    (new_id,))
        cur.execute("delete from cfg.config_entries where id = %s", (world.secret_entry_a,))
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.delete_automation(%s)", (world.automation_a,))
    assert _log_mentions(conn, "sk_live") == 0
    assert _log_mentions(conn, "hunter2") == 0
    # Yet the log did record those changes, with the value redacted.
    secret_rows = audit_rows(conn, table_name="entry_secrets")
    rotated = [r for r in secret_rows if r["operation"] == "UPDATE"]
    assert rotated and all(r["automation_id"] == world.automation_a for r in rotated)
    assert {r["operation"] for r in secret_rows} == {"INSERT", "UPDATE", "DELETE"}
    for r in secret_rows:
        for values in (r["old_values"], r["new_values"]):
            # Its Vault id and token are redacted too; the value was never in the row.
            assert values is None or (values.get("secret_id", "[redacted]") == "[redacted]"
                                      and values.get("token", "[redacted]") == "[redacted]"
                                      and "value" not in values)
    # Nor the outbox.
    assert conn.execute("select count(*) from cfg_private.events t where t::text like '%%hunter2%%'"
                        ).fetchone()["count"] == 0


# =============================================================================
# The audit_events RPC
# =============================================================================


def events(conn, identity, org_id, **kwargs) -> list[dict]:
    args = ", ".join(f"{k} => %({k})s" for k in kwargs)
    with acting_as(conn, identity) as cur:
        return cur.execute(
            f"select * from cfg.audit_events(%(org)s{', ' if args else ''}{args})",  # noqa: S608
            {"org": org_id, **kwargs},
        ).fetchall()


def test_audit_events_filters_by_automation(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        second = cur.execute("select id from cfg.create_automation(%s, 'Second', 'second')",
                             (world.org_a,)).fetchone()["id"]
    rows = events(conn, world["editor"], world.org_a, automation_id=second)
    assert [(r["table_name"], r["operation"]) for r in rows] == [("automations", "INSERT")]
    rows = events(conn, world["editor"], world.org_a, automation_id=world.automation_a)
    assert {r["automation_id"] for r in rows} == {world.automation_a}
    assert {r["table_name"] for r in rows} >= {"automations", "config_sections", "config_entries"}


def test_audit_events_filters_by_actor(conn, world):
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.automations set description = 'by editor' where id = %s", (world.automation_a,))
    with acting_as(conn, world["service"]) as cur:
        cur.execute("update cfg.automations set description = 'by service' where id = %s", (world.automation_a,))
    by_email = events(conn, world["admin"], world.org_a, actor="editor@example.test")
    # Besides the edit: accepting their invitation (membership and invitation rows).
    assert [r["new_values"]["description"] for r in by_email if r["table_name"] == "automations"] == [
        "by editor"]
    assert events(conn, world["admin"], world.org_a, actor="EDITOR@example.test") == by_email
    by_id = events(conn, world["admin"], world.org_a, actor=str(world["editor"].user_id))
    assert by_id == by_email
    by_service = events(conn, world["admin"], world.org_a, actor="service_role")
    assert [r["new_values"]["description"] for r in by_service] == ["by service"]
    by_admin = events(conn, world["admin"], world.org_a, actor="admin@example.test", max_rows=10000)
    assert by_admin and {r["actor_id"] for r in by_admin} == {world["admin"].user_id}
    assert events(conn, world["admin"], world.org_a, actor="nobody@example.test") == []


def test_audit_events_matches_emails_whatever_their_case(conn, world):
    # Emails in auth.users (and so in the JWT) may carry capitals, e.g. from an SSO provider.
    mixed = create_user(conn, "Mixed.Case@Example.test")
    add_member(conn, world["admin"], world.org_a, mixed, "editor")
    with acting_as(conn, mixed) as cur:
        cur.execute("update cfg.automations set description = 'mixed' where id = %s", (world.automation_a,))
    for spelling in ("Mixed.Case@Example.test", "mixed.case@example.test", "MIXED.CASE@EXAMPLE.TEST"):
        rows = events(conn, world["admin"], world.org_a, actor=spelling)
        rows = [r for r in rows if r["table_name"] == "automations"]  # not their acceptance
        assert [r["new_values"]["description"] for r in rows] == ["mixed"], spelling


def test_audit_events_filters_by_time_range_newest_first(conn, world):
    _age_rows(conn, world.org_a, 1, timedelta(days=10))
    _age_rows(conn, world.org_a, 1, timedelta(days=5))
    now = conn.execute("select now() as n").fetchone()["n"]
    conn.commit()
    all_rows = events(conn, world["admin"], world.org_a, max_rows=10000)
    assert [r["created_at"] for r in all_rows] == sorted((r["created_at"] for r in all_rows), reverse=True)
    window = events(conn, world["admin"], world.org_a,
                    since=now - timedelta(days=7), until=now - timedelta(days=1))
    assert len(window) == 1
    old = events(conn, world["admin"], world.org_a, until=now - timedelta(days=1))
    assert len(old) == 2
    recent = events(conn, world["admin"], world.org_a, since=now - timedelta(days=1), max_rows=10000)
    assert len(recent) == len(all_rows) - 2
    # until is exclusive, since inclusive.
    oldest = old[-1]["created_at"]
    assert len(events(conn, world["admin"], world.org_a, since=oldest, until=oldest)) == 0
    assert len(events(conn, world["admin"], world.org_a, since=oldest,
                      until=oldest + timedelta(microseconds=1))) == 1


def test_audit_events_max_rows(conn, world):
    total = conn.execute("select count(*) from cfg.audit_log where org_id = %s", (world.org_a,)
                         ).fetchone()["count"]
    conn.commit()
    assert total > 3
    assert len(events(conn, world["admin"], world.org_a, max_rows=1)) == 1
    assert len(events(conn, world["admin"], world.org_a, max_rows=3)) == 3
    assert len(events(conn, world["admin"], world.org_a, max_rows=10000)) == total
    assert len(events(conn, world["admin"], world.org_a)) == min(total, 100)


@pytest.mark.parametrize("max_rows", [0, -1, 10001, None])
def test_audit_events_refuses_max_rows_out_of_bounds(conn, world, max_rows):
    with pytest.raises(CfgError) as info:
        events(conn, world["admin"], world.org_a, max_rows=max_rows)
    assert info.value.code == "PT422"
    assert "between 1 and 10000" in str(info.value)
    assert info.value.detail == {"max_rows": max_rows}


def test_audit_events_refuses_viewers(conn, world):
    with pytest.raises(CfgError) as info:
        events(conn, world["viewer"], world.org_a)
    assert info.value.code == "PT403"
    assert "requires the editor role; you are viewer" in str(info.value)


@pytest.mark.parametrize("actor", ["other_admin", "outsider"])
def test_audit_events_hides_other_orgs(conn, world, actor):
    with pytest.raises(CfgError) as info:
        events(conn, world[actor], world.org_a)
    assert info.value.code == "PT404"
    assert "organisation not found" in str(info.value)
    # And an admin of org B asking for org B sees only org B.
    rows = events(conn, world["other_admin"], world.org_b, max_rows=10000)
    assert rows and {r["org_id"] for r in rows} == {world.org_b}


def test_setting_the_versioned_write_flag_does_not_skip_audit_or_versioning(conn, world):
    """The flag that lets save_config skip per-row audit is honoured only inside its
    security-definer writes; an editor setting it by hand is still audited and versioned."""
    versions_before = conn.execute(
        "select count(*) as n from cfg.config_versions where automation_id = %s", (world.automation_a,)
    ).fetchone()["n"]
    conn.commit()
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("select set_config('cfgctl.versioned_write', 'on', true)")
        cur.execute("update cfg.config_entries set value = '1234' where id = %s", (world.entry_a,))
    row = audit_rows(conn, row_id=world.entry_a)[-1]
    assert row["operation"] == "UPDATE" and row["new_values"] == {"value": 1234}
    assert row["actor_email"] == world["editor"].email
    versions_after = conn.execute(
        "select count(*) as n from cfg.config_versions where automation_id = %s", (world.automation_a,)
    ).fetchone()["n"]
    assert versions_after == versions_before + 1


def test_audit_rows_of_admin_only_tables_are_read_by_admins_only(conn, world):
    """Editors cannot read webhook endpoints or allowlisted hosts, so neither may they
    read them through the audit log (endpoint filters, hosts)."""
    from tests.support.webhooks import create_endpoint

    create_endpoint(conn, world["admin"], world.org_a, "https://hooks.example.com/cfgctl")
    # Operators allowlist hosts (cfgctl webhook allow-host, as the service role).
    with acting_as(conn, world["service"]) as cur:
        cur.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, 'hooks.internal')",
                    (world.org_a,))
    admin_only = ("webhook_endpoints", "webhook_allowed_hosts", "org_invitations")
    seen_by = {}
    for name in ("editor", "admin"):
        with acting_as(conn, world[name]) as cur:
            rows = cur.execute("select table_name from cfg.audit_log where org_id = %s", (world.org_a,)).fetchall()
        seen_by[name] = {r["table_name"] for r in rows}
        listed = {r["table_name"] for r in events(conn, world[name], world.org_a, max_rows=10000)}
        assert listed == seen_by[name]
    assert seen_by["admin"] >= set(admin_only)
    assert seen_by["editor"].isdisjoint(admin_only)
    assert "automations" in seen_by["editor"]
