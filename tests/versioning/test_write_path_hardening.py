"""Issue 8 on the write path: settings a client can set switch nothing off, secret
tokens are no oracle, foreign ids are PT404 first, direct writes and saves do not
deadlock, and pathological content is refused fast."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service.db import CfgError, acting_as
from tests.support.versioning import content, head, refused, rpc, save, version_id


def versions_of(conn, automation_id) -> int:
    n = conn.execute(
        "select count(*) as n from cfg.config_versions where automation_id = %s", (automation_id,)
    ).fetchone()["n"]
    conn.commit()
    return n


def audit_count(conn, **where) -> int:
    clauses = " and ".join(f"{k} = %s" for k in where)
    n = conn.execute(f"select count(*) as n from cfg.audit_log where {clauses}", tuple(where.values())).fetchone()["n"]  # noqa: S608
    conn.commit()
    return n


# =============================================================================
# 3. No client-settable setting switches a safeguard off
# =============================================================================


def test_forged_versioned_automations_setting_does_not_skip_versioning(conn, world):
    """The per-transaction 'already versioned' state lived in a setting: a user who
    listed their automation there wrote without a version."""
    before = versions_of(conn, world.automation_a)
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("select set_config('cfgctl.versioned_automations', %s, true)", (f"{world.automation_a},",))
        cur.execute("update cfg.config_entries set value = '4242' where id = %s", (world.entry_a,))
    assert versions_of(conn, world.automation_a) == before + 1


def test_forged_versioned_write_flag_does_not_skip_audit_of_cascaded_deletes(conn, world):
    """Cascaded deletes run as the table owner, where the flag used to count: an admin
    who set it deleted an automation without an audit row for its entries."""
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select set_config('cfgctl.versioned_write', 'on', true)")
        cur.execute("select cfg.delete_automation(%s)", (world.automation_a,))
    assert audit_count(conn, row_id=world.entry_a, operation="DELETE") == 1
    assert audit_count(conn, row_id=world.section_a, operation="DELETE") == 1


def test_forged_versioned_write_flag_does_not_skip_audit_of_promotion_deployments(conn, world):
    save(conn, world["editor"], world.automation_a, head(conn, world.automation_a), content({"http": {"port": 1}}))
    before = audit_count(conn, table_name="deployments")
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select set_config('cfgctl.versioned_write', 'on', true)")
        cur.execute("select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (world.automation_a,))
    assert audit_count(conn, table_name="deployments") == before + 1


def test_a_save_still_skips_per_row_audit_of_what_it_versions(conn, world):
    """The mark keeps the fast path: a save's own entry writes are recorded by its
    version row, not row by row."""
    before = audit_count(conn, table_name="config_entries")
    body = content({"http": {f"k{i}": i for i in range(20)}})
    save(conn, world["editor"], world.automation_a, head(conn, world.automation_a), body)
    assert audit_count(conn, table_name="config_entries") == before
    leftover = conn.execute("select count(*) as n from cfg_private.transaction_marks where mark = 'versioned_write'")
    assert leftover.fetchone()["n"] == 0


def test_audit_retention_switch_is_not_a_setting(conn, world):
    """Even the database owner cannot delete audit rows by setting the old switch;
    only purge_audit_log (which writes a private mark) may."""
    with pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("select set_config('cfgctl.audit_retention', 'on', true)")
        conn.execute("delete from cfg.audit_log")
    conn.rollback()
    assert conn.execute("select cfg_private.purge_audit_log(interval '1 day') as n").fetchone()["n"] == 0
    conn.commit()


# =============================================================================
# 5. Secret tokens are no guessing oracle
# =============================================================================


def secret_token_of(conn, automation_id, section="http", key="api_key") -> str:
    row = conn.execute(
        "select content -> 'sections' -> %s -> 'entries' -> %s ->> 'digest' as t from cfg.config_versions "
        "where automation_id = %s order by version desc limit 1",
        (section, key, automation_id),
    ).fetchone()
    conn.commit()
    return row["t"]


def test_equal_secrets_in_other_automations_and_orgs_give_other_tokens(conn, world):
    """The attack: a viewer of org A creates org C, saves candidate values there and
    compares the visible tokens with org A's snapshot."""
    body = content({"http": {"api_key": ("secret", "hunter2")}})
    save(conn, world["editor"], world.automation_a, head(conn, world.automation_a), body)
    target = secret_token_of(conn, world.automation_a)

    viewer = world["viewer"]
    org_c = rpc(conn, viewer, "select id from cfg.create_org('Mine', 'mine')")["id"]
    own = rpc(conn, viewer, "select id from cfg.create_automation(%s, 'Probe', 'probe')", (org_c,))["id"]
    save(conn, viewer, own, 0, body)
    assert secret_token_of(conn, own) != target
    # The viewer can read org A's snapshot, but nothing they can run yields its token.
    with pytest.raises(CfgError) as info:
        rpc(conn, viewer, "select cfg_private.editor_snapshot(%s, %s::jsonb)", (world.automation_a, json.dumps(body)))
    assert info.value.code == "PT403"
    for fn in ("cfg_private.secret_token(%s, '\"hunter2\"')", "cfg_private.content_snapshot(%s, '{}')"):
        with pytest.raises(CfgError) as info:
            rpc(conn, viewer, f"select {fn}", (world.automation_a,))
        assert info.value.code == "42501"


def test_diffs_still_say_a_secret_changed_and_unchanged_saves_record_nothing(conn, world):
    a = world.automation_a
    editor = world["editor"]
    save(conn, editor, a, head(conn, a), content({"http": {"api_key": ("secret", "one")}}))
    first = head(conn, a)
    save(conn, editor, a, first, content({"http": {"api_key": ("secret", "one")}}))
    assert head(conn, a) == first
    save(conn, editor, a, first, content({"http": {"api_key": ("secret", "two")}}))
    diff = rpc(conn, world["viewer"], "select cfg.diff_versions(%s, %s) as d",
               (version_id(conn, a, first), version_id(conn, a, first + 1)))["d"]
    change = next(c for c in diff["changes"] if c["key"] == "api_key")
    assert change["change"] == "changed" and change["fields"] == ["value"]
    assert "two" not in json.dumps(diff) and "one" not in json.dumps(diff)


# =============================================================================
# 6. Another org's ids answer PT404, before anything else
# =============================================================================


def test_merge_with_another_orgs_version_is_not_found(conn, world):
    a, b = world.automation_a, world.automation_b
    save(conn, world["editor"], a, head(conn, a), content({"http": {"port": 1}}))
    save(conn, world["other_admin"], b, 0, content({"http": {"port": 2}}))
    mine, theirs = version_id(conn, a, head(conn, a)), version_id(conn, b, 1)
    body = json.dumps(content({"http": {"port": 3}}))
    merge = "select cfg.merge_config(%s, %s, %s::jsonb)"
    foreign = refused(conn, world["editor"], merge, (mine, theirs, body), "PT404")
    missing = refused(conn, world["editor"], "select cfg.merge_config(%s, gen_random_uuid(), %s::jsonb)",
                      (mine, body), "PT404")
    assert str(foreign) == str(missing)
    assert str(b) not in json.dumps(foreign.detail)


def test_viewer_cannot_take_the_save_lock(conn, world):
    with pytest.raises(CfgError) as info:
        rpc(conn, world["viewer"], "select cfg_private.automation_for(%s, 'viewer', 'x', true)", (world.automation_a,))
    assert info.value.code == "PT403"


# =============================================================================
# 14. Direct writes and save_config take their locks in one order: no deadlock
# =============================================================================


def test_direct_write_and_save_of_one_automation_do_not_deadlock(db_url, conn, world):
    a = world.automation_a
    expected = head(conn, a)
    with (
        psycopg.connect(db_url, row_factory=dict_row) as direct,
        psycopg.connect(db_url, row_factory=dict_row) as saver,
    ):
        errors: list[Exception] = []
        # Session A: a direct update, left open (it holds the entry row).
        with acting_as(direct, world["editor"]) as cur_a:
            cur_a.execute("update cfg.config_entries set value = '1' where id = %s", (world.entry_a,))

            # Session B: a save of the same automation waits for A's row.
            def run_save():
                try:
                    save(saver, world["admin"], a, expected, content({"http": {"port": 2, "api_key": ("secret",)}}))
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            thread = threading.Thread(target=run_save)
            thread.start()
            waited = time.monotonic() + 10
            while time.monotonic() < waited:
                waiting = conn.execute(
                    "select count(*) as n from pg_stat_activity "
                    "where wait_event_type = 'Lock' and datname = current_database()"
                ).fetchone()["n"]
                conn.commit()
                if waiting:
                    break
                time.sleep(0.02)
            assert waiting, "the save should be waiting for the direct write's row"
            # A commits when the block ends: its commit-time versioning must not wait for B.
        thread.join(15)
        assert not thread.is_alive()
        assert errors == []
    kinds = conn.execute(
        "select kind from cfg.config_versions where automation_id = %s and version > %s order by version",
        (a, expected),
    ).fetchall()
    assert [k["kind"] for k in kinds] == ["direct", "save"]


# =============================================================================
# 15. Huge or pathological content gets PT422 fast
# =============================================================================


@pytest.mark.parametrize("shape", ["many_sections", "huge_document"])
def test_pathological_content_is_refused_fast(conn, world, shape):
    if shape == "many_sections":
        body = {"sections": {f"s{i}": {} for i in range(100_000)}}
    else:
        body = {"sections": {f"s{i}": {"entries": {"k": {"value": "x" * 1_000_000}}} for i in range(20)}}
    expected = head(conn, world.automation_a)
    with acting_as(conn, world["editor"]) as cur:
        # Pooled connections reuse generic plans after five calls; plan that way from the start.
        cur.execute("set local plan_cache_mode = force_generic_plan")
        started = time.monotonic()
        with pytest.raises(psycopg.Error) as info:
            cur.execute("select cfg.save_config(%s, %s, %s::jsonb)", (world.automation_a, expected, json.dumps(body)))
        elapsed = time.monotonic() - started
    assert info.value.sqlstate == "PT422"
    assert elapsed < 2, elapsed


def test_a_thousand_sections_save_in_linear_time(conn, world):
    """At the cap, under generic plans, a save stays well inside a request's budget."""
    body = content({f"s{i}": {"k": i} for i in range(1000)})
    expected = head(conn, world.automation_a)
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("set local plan_cache_mode = force_generic_plan")
        started = time.monotonic()
        cur.execute("select cfg.save_config(%s, %s, %s::jsonb)", (world.automation_a, expected, json.dumps(body)))
        elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    assert len(rpc(conn, world["viewer"], "select cfg.get_config(%s) as c", (world.automation_a,))["c"]["content"]
               ["sections"]) == 1000


def test_every_table_whose_triggers_read_the_flag_is_guarded(conn):
    """A trigger that skips rows when cfgctl.versioned_write is on must sit on a table
    where the guard switches a client's own setting off first."""
    unguarded = conn.execute(
        """
        select distinct t.tgrelid::regclass::text as tbl
        from pg_trigger t
        where pg_get_triggerdef(t.oid) like '%cfgctl.versioned_write%'
          and t.tgname <> 'guard_versioned_write'
          and not exists (select 1 from pg_trigger g
                          where g.tgrelid = t.tgrelid and g.tgname = 'guard_versioned_write')
        """
    ).fetchall()
    assert unguarded == []
    guarded = conn.execute("select count(*) as n from pg_trigger where tgname = 'guard_versioned_write'").fetchone()
    # config_sections, config_entries, entry_secrets, deployments, deployment_history, validation_status,
    # bulk_operation_items, version_references.
    assert guarded["n"] == 8


def test_every_copy_of_the_versioned_write_condition_is_identical(conn):
    """The condition is inlined in each trigger's WHEN clause for speed (a function call
    per written row cost a tenth of a save): every copy must say the same."""
    rows = conn.execute(
        """
        select t.tgrelid::regclass::text || '.' || t.tgname as name,
               substring(pg_get_triggerdef(t.oid) from 'WHEN \\((.*)\\) EXECUTE') as condition
        from pg_trigger t
        where pg_get_triggerdef(t.oid) like '%cfgctl.versioned_write%' and t.tgname <> 'guard_versioned_write'
        """
    ).fetchall()
    assert len(rows) >= 9
    # touch_row's clauses add the function's own test after it: "(<condition> AND <test>)".
    touch = [r for r in rows if r["name"].split(".")[-1].startswith("touch_row_")]
    conditions = {r["condition"] for r in rows if r not in touch}
    assert len(conditions) == 1, rows
    assert touch and all(r["condition"].startswith(f"({next(iter(conditions))} AND (") for r in touch), touch
