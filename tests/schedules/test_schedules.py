"""Scheduled and recurring config switches (issue 16): applied by the tick at an explicit
"now" (no test waits for the clock), as their author, exactly once, with windows,
approval, the conflict rule, run-time validation, missed runs and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service.db import SERVICE, CfgError, acting_as
from tests.support.versioning import content, save

FAR = datetime(2030, 6, 1, 12, 0)  # a wall time comfortably in the future
FAR_UTC = FAR.replace(tzinfo=UTC)


def rpc(conn, who, sql, params=()):
    """One statement as who, in a transaction of its own (its first row, if any)."""
    conn.commit()  # else acting_as is a savepoint whose role outlives it
    with acting_as(conn, who) as cur:
        cur.execute(sql, params)
        return cur.fetchone() if cur.description else None


def add(conn, who, automation, change, **when):
    """cfg.add_schedule with named arguments; a one-off at FAR (UTC) unless told."""
    when = {"at": FAR} | when if "cron" not in when else when
    names = ", ".join(f"{k} => %({k})s" for k in when)
    return rpc(conn, who, f"select cfg.add_schedule(%(a)s, %(c)s::jsonb, {names}) as s",  # noqa: S608
               {"a": automation, "c": json.dumps(change)} | when)["s"]


def patch(**keys):
    return {"action": "patch", "set": {"http": {k: {"value": v} for k, v in keys.items()}}}


def tick(conn, at):
    result = conn.execute("select cfg_private.run_schedules(%s) as r", (at,)).fetchone()["r"]
    conn.commit()
    return result


def occurrences(conn, schedule_id):
    return conn.execute("select * from cfg.schedule_occurrences where schedule_id = %s order by due_at, phase",
                        (schedule_id,)).fetchall()


def port(conn, world):
    return rpc(conn, world["viewer"], "select cfg.get_config(%s) as c", (world.automation_a,))["c"][
        "content"]["sections"]["http"]["entries"]["port"]["value"]


def refused(fn, code="PT422"):
    with pytest.raises(CfgError) as caught:
        fn()
    assert caught.value.code == code, caught.value
    return caught.value


# =============================================================================
# Applying
# =============================================================================


def test_a_one_off_patch_applies_once_at_its_time_as_a_scheduled_version_by_its_author(conn, world):
    s = add(conn, world["editor"], world.automation_a, patch(port=9090), message="maintenance")
    assert s["state"] == "active" and s["armed"] and s["change"]["before"] == {"http": {"port": 8080}}
    assert tick(conn, FAR_UTC - timedelta(seconds=1)) == {"applied": 0, "failed": 0, "skipped": 0}
    assert tick(conn, FAR_UTC + timedelta(seconds=30)) == {"applied": 1, "failed": 0, "skipped": 0}
    assert tick(conn, FAR_UTC + timedelta(seconds=90))["applied"] == 0  # once
    [occ] = occurrences(conn, s["id"])
    assert occ["status"] == "applied" and occ["lateness"] == timedelta(seconds=30)
    version = conn.execute("select * from cfg.config_versions where id = %s", (occ["version_id"],)).fetchone()
    assert (version["kind"], version["author_email"], version["message"]) == (
        "scheduled", "editor@example.test", "maintenance")
    assert port(conn, world) == 9090
    source = conn.execute("select source, actor_email from cfg.deployment_history where version_id = %s",
                          (version["id"],)).fetchone()
    assert source == {"source": "scheduled", "actor_email": "editor@example.test"}
    events = conn.execute("select type, actor_email from cfg_private.events where type like 'schedule.%%' "
                          "order by id").fetchall()
    assert [e["type"] for e in events] == ["schedule.created", "schedule.applied", "schedule.completed"]
    assert events[1]["actor_email"] == "editor@example.test"
    assert conn.execute("select state from cfg.schedules where id = %s", (s["id"],)).fetchone()["state"] == "completed"


def test_a_status_change_and_a_rollback_apply_too(conn, world):
    save(conn, world["editor"], world.automation_a, 1, content({"http": {"port": 1}}))
    add(conn, world["editor"], world.automation_a, {"action": "status", "status": "paused"})
    rollback = add(conn, world["editor"], world.automation_a, {"action": "rollback", "version": 1},
                   at=FAR + timedelta(hours=1))
    assert tick(conn, FAR_UTC + timedelta(minutes=1))["applied"] == 1, conn.execute(
        "select error from cfg.schedule_occurrences").fetchall()
    assert conn.execute("select status from cfg.automations where id = %s",
                        (world.automation_a,)).fetchone()["status"] == "paused"
    assert tick(conn, FAR_UTC + timedelta(hours=1))["applied"] == 1, conn.execute(
        "select error from cfg.schedule_occurrences").fetchall()
    assert port(conn, world) == 8080
    version = conn.execute("select kind, restored_from from cfg.config_versions where id = %s",
                           (occurrences(conn, rollback["id"])[0]["version_id"],)).fetchone()
    assert version == {"kind": "rollback", "restored_from": 1}  # a rollback stays one, deployed as scheduled


def test_a_window_reverts_to_the_values_before_its_start(conn, world):
    s = add(conn, world["editor"], world.automation_a,
            {"action": "patch", "set": {"flags": {"maintenance": {"value": True}}}}, revert_at=FAR + timedelta(hours=2))
    assert [o["phase"] for o in occurrences(conn, s["id"])] == ["apply", "revert"]
    tick(conn, FAR_UTC)
    flags = rpc(conn, world["viewer"], "select cfg.get_config(%s) as c", (world.automation_a,))["c"]["content"]
    assert flags["sections"]["flags"]["entries"]["maintenance"]["value"] is True
    tick(conn, FAR_UTC + timedelta(hours=2))
    after = rpc(conn, world["viewer"], "select cfg.get_config(%s) as c", (world.automation_a,))["c"]["content"]
    assert "maintenance" not in after["sections"]["flags"]["entries"]  # it did not exist before: removed
    assert [o["status"] for o in occurrences(conn, s["id"])] == ["applied", "applied"]


def test_a_window_does_not_revert_keys_edited_in_between_unless_forced(conn, world):
    s = add(conn, world["editor"], world.automation_a, patch(port=9090), revert_after="2 hours")
    forced = add(conn, world["editor"], world.automation_a, {"action": "status", "status": "paused"},
                 revert_after="2 hours", force=True)
    tick(conn, FAR_UTC)
    rpc(conn, world["admin"], "select cfg.patch_config(%s, set => '{\"http\": {\"port\": {\"value\": 7}}}')",
        (world.automation_a,))
    rpc(conn, world["admin"], "update cfg.automations set status = 'archived' where id = %s", (world.automation_a,))
    tick(conn, FAR_UTC + timedelta(hours=2))
    revert = occurrences(conn, s["id"])[1]
    assert revert["status"] == "failed" and "changed during the window" in revert["error"]
    assert port(conn, world) == 7  # the edit stands
    # force: the status goes back to what it was before the start.
    assert occurrences(conn, forced["id"])[1]["status"] == "applied"
    assert conn.execute("select status from cfg.automations where id = %s",
                        (world.automation_a,)).fetchone()["status"] == "active"


def test_a_patch_fails_if_its_keys_changed_since_it_was_scheduled_unless_forced(conn, world):
    s = add(conn, world["editor"], world.automation_a, patch(port=9090))
    forced = add(conn, world["editor"], world.automation_a, patch(port=9191), at=FAR + timedelta(minutes=1), force=True)
    rpc(conn, world["admin"], "select cfg.patch_config(%s, set => '{\"http\": {\"port\": {\"value\": 7}}}')",
        (world.automation_a,))
    versions = conn.execute("select count(*) from cfg.config_versions").fetchone()["count"]
    tick(conn, FAR_UTC)
    [occ] = occurrences(conn, s["id"])
    assert occ["status"] == "failed" and "changed since it was scheduled" in occ["error"]
    assert occ["outcome"] == {"sqlstate": "PT409"}
    assert conn.execute("select count(*) from cfg.config_versions").fetchone()["count"] == versions
    tick(conn, FAR_UTC + timedelta(minutes=1))
    assert occurrences(conn, forced["id"])[0]["status"] == "applied" and port(conn, world) == 9191
    assert conn.execute("select type from cfg_private.events where type = 'schedule.failed'").fetchone()


def test_run_time_validation_refuses_what_the_rules_now_forbid(conn, world):
    s = add(conn, world["editor"], world.automation_a, patch(port="not-a-port"))
    type_id = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                           (world.org_a,)).fetchone()["id"]
    conn.commit()
    rpc(conn, world["admin"], "select * from cfg.add_validation_rule(%s, %s::jsonb)", (type_id, json.dumps(
        {"name": "port", "section": "http", "key": "port", "schema": {"type": "integer"}})))
    tick(conn, FAR_UTC)
    [occ] = occurrences(conn, s["id"])
    assert occ["status"] == "failed" and occ["outcome"] == {"sqlstate": "PT422"} and "port" in occ["error"]
    assert port(conn, world) == 8080


def test_an_author_who_lost_the_role_makes_the_occurrence_fail(conn, world):
    s = add(conn, world["editor"], world.automation_a, patch(port=9090))
    rpc(conn, world["admin"], "select cfg.set_member_role(%s, %s, 'viewer')", (world.org_a, world["editor"].user_id))
    tick(conn, FAR_UTC)
    [occ] = occurrences(conn, s["id"])
    assert occ["status"] == "failed"
    assert occ["error"] == "the author editor@example.test is no longer an editor of this organisation (now: viewer)"
    assert port(conn, world) == 8080


def test_approval_gates_a_schedule_deploying_where_approval_is_required(conn, world):
    a, editor, admin = world.automation_a, world["editor"], world["admin"]
    rpc(conn, editor, "select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (a,))
    s = add(conn, editor, a, {"action": "promote", "from": "staging", "to": "prod"})
    assert s["needs_approval"] and not s["armed"] and s["environment"] == "prod"
    # The author cannot approve, nor an editor.
    refused(lambda: rpc(conn, editor, "select cfg.approve_schedule(%s)", (s["id"],)), "PT403")
    tick(conn, FAR_UTC)
    [occ] = occurrences(conn, s["id"])
    assert occ["status"] == "failed" and occ["error"].startswith("not approved")
    approved = add(conn, editor, a, {"action": "promote", "from": "staging", "to": "prod"}, at=FAR + timedelta(hours=1))
    assert rpc(conn, admin, "select cfg.approve_schedule(%s) as s", (approved["id"],))["s"]["armed"]
    # Editing resets the approval; approving again re-arms it.
    edited = rpc(conn, editor, "select cfg.edit_schedule(%s, '{\"message\": \"now\"}') as s", (approved["id"],))["s"]
    assert not edited["armed"] and edited["approved_by_email"] is None
    rpc(conn, admin, "select cfg.approve_schedule(%s)", (approved["id"],))
    tick(conn, FAR_UTC + timedelta(hours=1))
    [occ] = occurrences(conn, approved["id"])
    assert occ["status"] == "applied", occ["error"]
    prod = conn.execute("select h.source, h.actor_email from cfg.deployment_history h join cfg.environments e "
                        "on e.id = h.environment_id where e.slug = 'prod' and h.automation_id = %s", (a,)).fetchall()
    assert prod == [{"source": "scheduled", "actor_email": "editor@example.test"}]
    # The definer step the tick uses is refused outside a tick.
    refused(lambda: rpc(conn, editor, "select cfg_private.promote_scheduled(%s, 'staging', 'prod', '')", (a,)), "PT403")


def deployed(conn, automation, env):
    return conn.execute("select d.version from cfg.deployments d join cfg.environments e on e.id = d.environment_id "
                        "where d.automation_id = %s and e.slug = %s", (automation, env)).fetchone()["version"]


def staging_runs_1_and_dev_2(conn, world):
    a, editor = world.automation_a, world["editor"]
    rpc(conn, editor, "select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (a,))
    rpc(conn, editor, "select cfg.patch_config(%s, set => '{\"http\": {\"port\": {\"value\": 9090}}}')", (a,))
    assert (deployed(conn, a, "staging"), deployed(conn, a, "dev")) == (1, 2)


def test_a_promotion_window_deploys_then_restores_what_the_target_ran(conn, world):
    a, editor = world.automation_a, world["editor"]
    staging_runs_1_and_dev_2(conn, world)
    s = add(conn, editor, a, {"action": "promote", "from": "dev", "to": "staging"}, revert_at=FAR + timedelta(hours=2))
    # The timeline previews both ends: 8080 -> 9090 at the start, back at the end.
    conn.commit()
    with acting_as(conn, world["viewer"]) as cur:
        rows = cur.execute("select phase, environment, preview from cfg.schedule_timeline(%s, %s, %s)",
                           (world.org_a, FAR_UTC - timedelta(days=1), FAR_UTC + timedelta(days=1))).fetchall()
    assert [(r["phase"], r["environment"]) for r in rows] == [("apply", "staging"), ("revert", "staging")]
    ports = [[(c["old_value"], c["new_value"]) for c in r["preview"]["changes"] if c["key"] == "port"]
             for r in rows]
    assert ports == [[(8080, 9090)], [(9090, 8080)]], rows
    tick(conn, FAR_UTC)
    assert deployed(conn, a, "staging") == 2
    tick(conn, FAR_UTC + timedelta(hours=2))
    assert deployed(conn, a, "staging") == 1
    apply, revert = occurrences(conn, s["id"])
    assert (apply["status"], revert["status"]) == ("applied", "applied"), revert["error"]
    assert (apply["version"], revert["version"]) == (2, 1)
    history = conn.execute("select h.version, h.previous_version, h.source from cfg.deployment_history h "
                           "join cfg.environments e on e.id = h.environment_id where e.slug = 'staging' "
                           "and h.automation_id = %s order by h.created_at", (a,)).fetchall()
    assert [(h["version"], h["source"]) for h in history][-2:] == [(2, "scheduled"), (1, "scheduled")]
    events = [r["type"] for r in conn.execute("select type from cfg_private.events where type like 'schedule.%%' "
                                               "order by id")]
    assert events == ["schedule.created", "schedule.applied", "schedule.applied", "schedule.completed"]


@pytest.mark.parametrize("force", [False, True])
def test_a_promotion_window_does_not_undo_a_deployment_made_during_it_unless_forced(conn, world, force):
    a, editor = world.automation_a, world["editor"]
    staging_runs_1_and_dev_2(conn, world)
    s = add(conn, editor, a, {"action": "promote", "from": "dev", "to": "staging"}, revert_after="2 hours",
            force=force)
    tick(conn, FAR_UTC)
    # Someone ships version 3 to staging during the window.
    rpc(conn, editor, "select cfg.patch_config(%s, set => '{\"http\": {\"port\": {\"value\": 7}}}')", (a,))
    rpc(conn, editor, "select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (a,))
    tick(conn, FAR_UTC + timedelta(hours=2))
    revert = occurrences(conn, s["id"])[1]
    if force:
        assert revert["status"] == "applied" and deployed(conn, a, "staging") == 1
    else:
        assert revert["status"] == "failed" and revert["outcome"] == {"sqlstate": "PT409"}
        assert "staging was deployed again during the window (now version 3)" in revert["error"]
        assert deployed(conn, a, "staging") == 3


def test_a_promotion_window_cannot_empty_a_target_that_ran_nothing(conn, world):
    s = add(conn, world["editor"], world.automation_a, {"action": "promote", "from": "dev", "to": "staging"},
            revert_after="1 hour", force=True)
    tick(conn, FAR_UTC + timedelta(hours=1))
    apply, revert = occurrences(conn, s["id"])
    assert apply["status"] == "applied" and revert["status"] == "failed"
    assert revert["error"] == "staging ran no version before the window: there is nothing to restore"
    assert deployed(conn, world.automation_a, "staging") == 1


def test_one_approval_arms_both_ends_of_a_promotion_window(conn, world):
    a, editor, admin = world.automation_a, world["editor"], world["admin"]
    staging_runs_1_and_dev_2(conn, world)
    conn.execute("update cfg.environments set requires_approval = true where org_id = %s and slug = 'staging'",
                 (world.org_a,))
    s = add(conn, editor, a, {"action": "promote", "from": "dev", "to": "staging"}, revert_after="1 hour")
    unapproved = add(conn, editor, a, {"action": "promote", "from": "dev", "to": "staging"}, revert_after="1 hour",
                     at=FAR + timedelta(days=1))
    assert s["needs_approval"] and not s["armed"]
    rpc(conn, admin, "select cfg.approve_schedule(%s)", (s["id"],))
    tick(conn, FAR_UTC)
    assert deployed(conn, a, "staging") == 2
    # The window's end needs no approval of its own: it is part of the approved change.
    tick(conn, FAR_UTC + timedelta(hours=1))
    assert [o["status"] for o in occurrences(conn, s["id"])] == ["applied", "applied"]
    assert deployed(conn, a, "staging") == 1
    # Not approved: the start fails, and the end has nothing to revert.
    tick(conn, FAR_UTC + timedelta(days=1, hours=1))
    assert [(o["status"], o["error"][:16]) for o in occurrences(conn, unapproved["id"])] == [
        ("failed", "not approved: st"), ("skipped", "nothing to rever")]
    assert deployed(conn, a, "staging") == 1


def test_pause_resume_and_cancel(conn, world):
    s = add(conn, world["editor"], world.automation_a, patch(port=9090))
    later = add(conn, world["editor"], world.automation_a, patch(port=9191), at=FAR + timedelta(days=1))
    assert rpc(conn, world["editor"], "select cfg.pause_schedule(%s) as s", (s["id"],))["s"]["state"] == "paused"
    refused(lambda: rpc(conn, world["editor"], "select cfg.pause_schedule(%s)", (s["id"],)), "PT409")
    refused(lambda: rpc(conn, world["viewer"], "select cfg.resume_schedule(%s)", (s["id"],)), "PT403")
    assert tick(conn, FAR_UTC)["applied"] == 0
    conn.execute("update cfg.schedule_occurrences set due_at = now() - interval '1 minute' where schedule_id = %s",
                 (s["id"],))
    conn.commit()
    rpc(conn, world["editor"], "select cfg.resume_schedule(%s)", (s["id"],))
    assert occurrences(conn, s["id"])[0]["error"] == "the schedule was paused when this came due"
    cancelled = rpc(conn, world["editor"], "select cfg.cancel_schedule(%s) as s", (later["id"],))["s"]
    assert cancelled["state"] == "cancelled"
    assert occurrences(conn, later["id"]) == []
    assert tick(conn, FAR_UTC + timedelta(days=2))["applied"] == 0
    types = [r["type"] for r in conn.execute("select type from cfg_private.events where type like 'schedule.%%' "
                                             "order by id")]
    assert {"schedule.paused", "schedule.resumed", "schedule.cancelled"} <= set(types)
    audited = conn.execute("select count(*) from cfg.audit_log where table_name = 'schedules' and operation = 'UPDATE'"
                           ).fetchone()["count"]
    assert audited >= 3


def test_missed_runs_follow_the_schedules_policy(conn, world):
    late = add(conn, world["editor"], world.automation_a, patch(port=1), max_lateness="30 minutes")
    too_late = add(conn, world["editor"], world.automation_a, patch(timeout=2), max_lateness="5 minutes")
    skip = add(conn, world["editor"], world.automation_a, patch(retries=3), missed="skip")
    tick(conn, FAR_UTC + timedelta(minutes=20))
    statuses = [occurrences(conn, s["id"])[0]["status"] for s in (late, too_late, skip)]
    assert statuses == ["applied", "skipped", "skipped"]
    skipped = occurrences(conn, skip["id"])[0]
    assert skipped["lateness"] == timedelta(minutes=20) and "skips missed runs" in skipped["error"]


def test_two_concurrent_ticks_apply_each_occurrence_exactly_once(conn, world, db_url):
    # An automation each: a tick applying one holds that automation until it commits.
    automations = [rpc(conn, world["editor"], "select id from cfg.create_automation(%s, %s, %s)",
                       (world.org_a, f"A{i}", f"a{i}"))["id"] for i in range(4)]
    for i, automation in enumerate(automations):
        add(conn, world["editor"], automation, patch(port=i), at=FAR + timedelta(minutes=i))
    with psycopg.connect(db_url, row_factory=dict_row) as one, psycopg.connect(db_url, row_factory=dict_row) as two:
        first = one.execute("select cfg_private.run_schedules(%s, 1) as r", (FAR_UTC + timedelta(minutes=5),)
                            ).fetchone()["r"]
        # The first tick has not committed: the second skips what it holds and takes the rest.
        second = two.execute("select cfg_private.run_schedules(%s) as r", (FAR_UTC + timedelta(minutes=5),)
                             ).fetchone()["r"]
        two.commit()
        one.commit()
    assert (first["applied"], second["applied"]) == (1, 3)
    assert tick(conn, FAR_UTC + timedelta(minutes=10)) == {"applied": 0, "failed": 0, "skipped": 0}
    applied = conn.execute("select count(*) from cfg.schedule_occurrences where status = 'applied'").fetchone()
    versions = conn.execute("select count(*) from cfg.config_versions where kind = 'scheduled'").fetchone()
    assert applied["count"] == versions["count"] == 4


# =============================================================================
# Bad input: a clear error, nothing changed
# =============================================================================


@pytest.mark.parametrize(("when", "path", "words"), [
    ({"cron": "61 * * * *"}, "cron", "invalid cron expression"),
    ({"cron": "every day"}, "cron", "invalid cron expression"),
    ({"at": FAR, "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ({"at": datetime(2020, 1, 1)}, "at", "in the past"),
    ({"at": FAR, "revert_at": FAR - timedelta(hours=1)}, "revert_at", "before at"),
    ({"cron": "0 2 * * *", "until": datetime(2020, 1, 1)}, "until", "end before it starts"),
    ({"at": datetime(2030, 3, 31, 2, 30), "timezone": "Europe/Berlin"}, "at", "does not exist"),
    ({"at": FAR, "cron": "0 2 * * *"}, "at", "exactly one"),
])
def test_bad_schedules_are_refused_with_the_field(conn, world, when, path, words):
    error = refused(lambda: add(conn, world["editor"], world.automation_a, patch(port=1), **when))
    assert error.detail["errors"][0]["path"] == path and words in str(error)
    assert conn.execute("select count(*) from cfg.schedules").fetchone()["count"] == 0


def test_bad_changes_are_refused(conn, world):
    a, editor = world.automation_a, world["editor"]
    for change in ({"action": "explode"}, {"action": "patch"}, {"action": "status", "status": "gone"},
                   {"action": "rollback", "version": 99}, {"action": "rotate", "section": "http", "key": "port"},
                   {"action": "patch", "set": {"http": {"api_key": {"value": "x"}}}},
                   {"action": "patch", "set": {"http": {"token": {"value": "x", "secret": True}}}}):
        refused(lambda change=change: add(conn, editor, a, change))
    refused(lambda: add(conn, editor, a, {"action": "promote", "from": "dev", "to": "moon"}), "PT404")
    window = refused(lambda: add(conn, editor, a, {"action": "rotate", "section": "http", "key": "api_key"},
                                 revert_after="1 hour"))
    assert "would bring back the retired credential" in str(window)
    refused(lambda: add(conn, world["viewer"], a, patch(port=1)), "PT403")
    refused(lambda: add(conn, world["other_admin"], a, patch(port=1)), "PT404")


def test_an_automation_has_at_most_1000_open_schedules(conn, world):
    first = add(conn, world["editor"], world.automation_a, patch(port=1))
    # 998 more as copies (quicker than the RPC); then an editor tries 10,000 in one statement.
    conn.execute("insert into cfg.schedules (org_id, automation_id, action, change, run_at, change_hash, author_id) "
                 "select org_id, automation_id, action, change, run_at, change_hash, author_id "
                 "from cfg.schedules, generate_series(1, 998)")
    conn.commit()
    with pytest.raises(CfgError) as caught, acting_as(conn, world["editor"]) as cur:
        cur.execute("select count(cfg.add_schedule(%s, %s::jsonb, at => %s::timestamp + make_interval(mins => i))) "
                    "from generate_series(1, 10000) as i", (world.automation_a, json.dumps(patch(port=1)), FAR))
    assert caught.value.code == "PT422" and "at most 1000 open schedules" in str(caught.value)
    assert caught.value.detail["limit"] == 1000
    assert conn.execute("select count(*) from cfg.schedules").fetchone()["count"] == 999  # nothing of the 10,000
    rpc(conn, world["editor"], "select cfg.cancel_schedule(%s)", (first["id"],))
    add(conn, world["editor"], world.automation_a, patch(port=2))  # a cancelled one leaves room


def test_a_rotation_puts_a_new_secret_in_vault_and_never_in_the_schedule(conn, world):
    s = add(conn, world["editor"], world.automation_a,
            {"action": "rotate", "section": "http", "key": "api_key", "format": "base64url", "length": 24})
    tick(conn, FAR_UTC)
    [occ] = occurrences(conn, s["id"])
    assert occ["status"] == "applied", occ["error"]
    value = rpc(conn, world["editor"], "select cfg.reveal_secret(%s, 'http', 'api_key') as v",
                (world.automation_a,))["v"]
    text = value["value"] if isinstance(value, dict) else value
    assert text != "sk_live_hunter2" and len(text) == 32
    for table in ("cfg.schedules", "cfg.schedule_occurrences", "cfg_private.events", "cfg.audit_log"):
        assert conn.execute(f"select count(*) from {table} t where t::text like %s",  # noqa: S608
                            (f"%{text}%",)).fetchone()["count"] == 0


def test_the_service_key_cannot_author_a_schedule(conn, world):
    refused(lambda: add(conn, SERVICE, world.automation_a, patch(port=1)))
