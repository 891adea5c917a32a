"""Schedules against the clock: cron occurrences computed by the schedules worker
(croniter + zoneinfo) and applied by the tick through daylight-saving nights in
Europe/Berlin and America/New_York; the worker itself; the pg_cron job really firing;
the tick run by a login role that is not a superuser (as postgres is on hosted Supabase)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service.db import SERVICE, acting_as
from sync_service.workers.schedules import ScheduleMaterialiser, ScheduleSettings, occurrences
from tests.support.workers import WorkerThread
from tests.support.world import build_world

PAUSE = json.dumps({"action": "status", "status": "paused"})


def add_cron(conn, who, automation, cron, zone, **extra):
    conn.commit()
    names = "".join(f", {k} => %({k})s" for k in extra)
    with acting_as(conn, who) as cur:
        return cur.execute(f"select cfg.add_schedule(%(a)s, %(c)s, cron => %(cron)s, timezone => %(tz)s{names}) as s",
                           {"a": automation, "c": PAUSE, "cron": cron, "tz": zone} | extra).fetchone()["s"]


def record(conn, schedule, due):
    conn.commit()
    with acting_as(conn, SERVICE) as cur:
        cur.execute("select cfg_private.record_occurrences(%s, (select change_hash from cfg.schedules where id = %s), "
                    "%s::timestamptz[], %s, null)", (schedule, schedule, due, due[-1]))


def night(conn, schedule, zone, start_utc, hours=4):
    """Ticks every minute through the night; the local times at which the schedule applied."""
    applied = []
    for minute in range(hours * 60):
        at = start_utc + timedelta(minutes=minute)
        if conn.execute("select cfg_private.run_schedules(%s) as r", (at,)).fetchone()["r"]["applied"]:
            applied.append(at.astimezone(ZoneInfo(zone)))
        conn.commit()
    return [t.strftime("%H:%M %Z") for t in applied]


@pytest.mark.parametrize(("zone", "cron", "start", "expected"), [
    # Spring forward: 02:30 does not exist; it runs once, at what the clock shows as 03:30.
    ("Europe/Berlin", "30 2 * * *", datetime(2027, 3, 28, 0, 0, tzinfo=UTC), ["03:30 CEST"]),
    # Fall back: 02:30 happens twice; it runs once, at the first (summer time).
    ("Europe/Berlin", "30 2 * * *", datetime(2027, 10, 30, 23, 0, tzinfo=UTC), ["02:30 CEST"]),
    ("America/New_York", "30 2 * * *", datetime(2027, 3, 14, 5, 0, tzinfo=UTC), ["03:30 EDT"]),
    # In New York the hour that repeats is 01:00-02:00.
    ("America/New_York", "30 1 * * *", datetime(2027, 11, 7, 4, 0, tzinfo=UTC), ["01:30 EDT"]),
])
def test_a_daily_job_on_daylight_saving_nights(conn, world, zone, cron, start, expected):
    s = add_cron(conn, world["editor"], world.automation_a, cron, zone)
    due, _ = occurrences(cron, zone, start - timedelta(days=1), start + timedelta(days=1))
    record(conn, s["id"], due)
    assert night(conn, s["id"], zone, start) == expected


def test_hourly_runs_through_the_night_clocks_go_back_in_berlin():
    # Local 02:30 comes twice: the first one runs; every other hour once.
    due, ended = occurrences("30 * * * *", "Europe/Berlin", datetime(2027, 10, 30, 22, tzinfo=UTC),
                             datetime(2027, 10, 31, 4, tzinfo=UTC))
    local = [d.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M %Z") for d in due]
    assert local == ["00:30 CEST", "01:30 CEST", "02:30 CEST", "03:30 CET", "04:30 CET"] and not ended
    assert occurrences("0 2 * * *", "UTC", datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC),
                       until=datetime(2027, 1, 3, 12, tzinfo=UTC))[1] is True


def test_the_worker_writes_cron_occurrences_ahead_and_marks_what_croniter_refuses(conn, world, db_url):
    hourly = add_cron(conn, world["editor"], world.automation_a, "0 * * * *", "Europe/Berlin", max_runs=30)
    broken = add_cron(conn, world["editor"], world.automation_a, "*/0 * * * *", "UTC")
    settings = ScheduleSettings(poll_interval=0.2)
    with WorkerThread(ScheduleMaterialiser(db_url, settings)):
        for _ in range(100):
            states = {str(r["id"]): r for r in conn.execute("select id, state, error, materialised_until "
                                                       "from cfg.schedules").fetchall()}
            conn.commit()
            if states[broken["id"]]["state"] == "invalid" and states[hourly["id"]]["materialised_until"]:
                break
            time.sleep(0.1)
    assert states[broken["id"]]["state"] == "invalid" and "croniter refuses" in states[broken["id"]]["error"]
    due = [r["due_at"] for r in conn.execute("select due_at from cfg.schedule_occurrences where schedule_id = %s "
                                             "order by due_at", (hourly["id"],))]
    assert len(due) == 30 and all(d.minute == 0 and d > datetime.now(UTC) for d in due)
    assert states[hourly["id"]]["materialised_until"] == datetime.max.replace(tzinfo=UTC)  # the series ended
    conn.commit()
    with acting_as(conn, world["viewer"]) as cur:
        timeline = cur.execute("select * from cfg.schedule_timeline(%s)", (world.org_a,)).fetchall()
    assert [t["due_at"] for t in timeline] == due[:len(timeline)] and timeline[0]["preview"]["to"] == "paused"
    assert conn.execute("select 1 from cfg_private.events where type = 'schedule.invalid'").fetchone()


def test_the_tick_runs_as_a_login_role_that_is_not_a_superuser(conn, world, pg_cluster, db_url):
    """As on hosted Supabase: postgres is no superuser, bypasses RLS and is a member of
    authenticated. SET ROLE authenticated and back needs nothing more."""
    role = f"tick_{uuid.uuid4().hex[:8]}"
    database = conn.info.dbname
    s = add_cron(conn, world["editor"], world.automation_a, "0 3 * * *", "UTC")
    record(conn, s["id"], [datetime(2030, 1, 1, 3, tzinfo=UTC)])
    conn.execute(f"create role {role} login password 'pw' nosuperuser bypassrls in role authenticated")
    conn.execute(f"grant usage on schema cfg, cfg_private, extensions to {role}")
    conn.execute(f"grant all on all tables in schema cfg, cfg_private to {role}")
    conn.execute(f"grant execute on all functions in schema cfg, cfg_private to {role}")
    conn.commit()
    try:
        url = f"postgresql://{role}:pw@127.0.0.1:{pg_cluster.port}/{database}"
        with psycopg.connect(url, row_factory=dict_row) as tick:
            assert not tick.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()["rolsuper"]
            result = tick.execute("select cfg_private.run_schedules('2030-01-01 03:00:30+00') as r").fetchone()["r"]
            after = tick.execute("select current_user as u").fetchone()["u"]
            tick.commit()
        assert result["applied"] == 1 and after == role
        audit = conn.execute("select actor_email, actor_role from cfg.audit_log where table_name = 'automations' "
                             "and operation = 'UPDATE' order by id desc limit 1").fetchone()
        assert audit == {"actor_email": "editor@example.test", "actor_role": "authenticated"}
    finally:
        conn.rollback()
        conn.execute(f"drop owned by {role}")
        conn.execute(f"drop role {role}")
        conn.commit()


def test_the_pg_cron_job_is_registered_and_really_fires(pg_cluster, template_url):
    """The one test that waits for the clock (up to a minute and a bit)."""
    from sync_service import local_stack as local

    local.provision(pg_cluster.db_url, seed=False)  # the database pg_cron lives in
    with psycopg.connect(pg_cluster.db_url, row_factory=dict_row) as conn:
        job = conn.execute("select schedule, command, username from cron.job "
                           "where jobname = 'cfgctl-schedules-tick'").fetchone()
        version = conn.execute("select extversion from pg_extension where extname = 'pg_cron'").fetchone()
        minor = tuple(int(p) for p in version["extversion"].split("-")[0].split("."))
        assert job["schedule"] == ("10 seconds" if minor >= (1, 5) else "* * * * *")
        assert job["command"] == "select cfg_private.run_schedules()"
        world = build_world(conn)
        # One second after the server's own now(): the soonest `at` add_schedule accepts
        # whatever the load; the wait is then mostly for pg_cron's next 10-second tick.
        with acting_as(conn, world["editor"]) as cur:
            s = cur.execute("select cfg.add_schedule(%s, %s, at => (now() at time zone 'UTC') + interval '1 second')"
                            " as s", (world.automation_a, PAUSE)).fetchone()["s"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            occ = conn.execute("select status, error, lateness from cfg.schedule_occurrences where schedule_id = %s",
                               (s["id"],)).fetchone()
            conn.commit()
            if occ["status"] != "pending":
                break
            time.sleep(0.25)
        assert occ["status"] == "applied", occ
        assert occ["lateness"] <= timedelta(seconds=62)
        assert conn.execute("select status from cfg.automations where id = %s",
                            (world.automation_a,)).fetchone()["status"] == "paused"
