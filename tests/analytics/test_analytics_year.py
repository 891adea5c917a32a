"""Analytics over a year (2025) on top of the known history: weekly rows inside the range,
daily and hourly ones at its partial edges, the sources after the watermark; every chart
gives the answers of the sources alone. The year is written, counted from the sources and
rolled up once per module (set-based SQL); each test runs in a transaction rolled back."""

from __future__ import annotations

import pytest

from tests.analytics.history import call, write_history
from tests.support.rls import shared_world

# A Wednesday morning to a Thursday: partial weeks at both ends; the watermark goes to a
# Wednesday afternoon in between, so the live tail is a partial week too.
YEAR_SINCE, YEAR_UNTIL, YEAR_MARK = "2025-01-08 10:00Z", "2025-12-18 09:00Z", "2025-11-19 13:00Z"


def _write_year(conn, world) -> None:
    """Every 13 hours of 2025 in org A: a version (billing or web, editor or admin) saved into dev;
    every 4th promoted straight to staging; every 5th requested into prod an hour later and
    decided 1 hour + s minutes after that (every 10th rejected, the rest applied then); audit
    rows of both people and the service key; validation events every 9th."""
    envs = world.history["envs"]
    params = {"org": world.org_a, "billing": world.history["billing"], "web": world.history["web"],
              "editor": world["editor"].user_id, "admin": world["admin"].user_id, **envs}
    conn.execute("""
        create temporary table year on commit drop as
        select s, gen_random_uuid() as version_id, gen_random_uuid() as request_id,
               case when mod(s, 2) = 0 then %(billing)s::uuid else %(web)s::uuid end as automation_id,
               u.id as actor_id, u.email, timestamptz '2025-01-01 05:00Z' + s * interval '13 hours' as at
        from generate_series(1, 672) as s
        join auth.users as u on u.id = case when mod(s, 3) = 0 then %(admin)s::uuid else %(editor)s::uuid end""",
                 params)
    conn.execute("""
        insert into cfg.config_versions (id, org_id, automation_id, version, content, content_hash, author_id,
                                         author_email, author_role, created_at)
        select version_id, %(org)s, automation_id, 1000 + s, '{"sections": {}}', 'h', actor_id, email,
               'authenticated', at from year""", params)
    conn.execute("""
        insert into cfg.promotion_requests (id, org_id, automation_id, from_environment_id, to_environment_id,
                                            version, version_id, status, decided_at, applied_at, created_at,
                                            decision_comment)
        select request_id, %(org)s, automation_id, %(staging)s, %(prod)s, 1000 + s, version_id,
               (case when mod(s, 10) = 0 then 'rejected' else 'applied' end)::cfg.promotion_status,
               at + interval '2 hours' + s * interval '1 minute',
               case when mod(s, 10) <> 0 then at + interval '2 hours' + s * interval '1 minute' end,
               at + interval '1 hour', 'ok'
        from year where mod(s, 5) = 0""", params)
    conn.execute("""
        insert into cfg.deployment_history (org_id, automation_id, environment_id, version, version_id, source,
                                            request_id, actor_id, actor_email, created_at)
        select %(org)s, automation_id, %(dev)s, 1000 + s, version_id, 'save', null::uuid, actor_id, email, at from year
        union all
        select %(org)s, automation_id, %(staging)s, 1000 + s, version_id, 'promotion', null, actor_id, email,
               at + interval '30 minutes' from year where mod(s, 4) = 0
        union all
        select %(org)s, automation_id, %(prod)s, 1000 + s, version_id, 'promotion', request_id, actor_id, email,
               at + interval '2 hours' + s * interval '1 minute' from year where mod(s, 5) = 0 and mod(s, 10) <> 0""",
                 params)
    conn.execute("""
        insert into cfg.audit_log (org_id, actor_id, actor_email, actor_role, table_name, row_id, operation, created_at)
        select %(org)s, case when mod(s, 7) <> 0 then actor_id end, case when mod(s, 7) <> 0 then email end,
               'authenticated', 'automations', version_id, 'UPDATE', at + interval '5 minutes' from year""", params)
    conn.execute("""
        insert into cfg_private.events (org_id, type, subject_type, subject_id, automation_id, environment_id,
                                        payload, created_at)
        select %(org)s, 'validation.status_changed', 'automation', automation_id, automation_id,
               case when mod(s, 2) = 0 then %(prod)s::uuid else %(staging)s::uuid end,
               jsonb_build_object('from', 'valid', 'to', case when mod(s, 4) = 1 then 'warnings' else 'errors' end), at
        from year where mod(s, 9) = 0""", params)


def year_answers(conn, world) -> dict:
    """Every chart over (most of) the year, as the viewer: each bucket the RPC offers."""
    viewer, org, y = world["viewer"], world.org_a, (YEAR_SINCE, YEAR_UNTIL)
    return {
        "day": call(conn, viewer, "analytics_changes", org, *y),
        "week": call(conn, viewer, "analytics_changes", org, *y, bucket="week"),
        # At most 5,000 hours a chart: 200 days, across the watermark.
        "hour": call(conn, viewer, "analytics_changes", org, "2025-05-06 10:00Z", "2025-11-22 09:00Z", bucket="hour"),
        "week_prod_editor": call(conn, viewer, "analytics_changes", org, *y, bucket="week", environment="prod",
                                 author="editor@example.test"),
        "day_web": call(conn, viewer, "analytics_changes", org, *y, automation_id=world.history["web"]),
        "top": call(conn, viewer, "analytics_top_automations", org, *y),
        "promotions": call(conn, viewer, "analytics_promotions", org, *y),
        "users": call(conn, viewer, "analytics_active_users", org, *y),
        "validation_day": call(conn, viewer, "analytics_validation_failures", org, *y),
        "validation_week": call(conn, viewer, "analytics_validation_failures", org, *y, bucket="week",
                                environment="prod"),
    }


# The last 30 days of the rolled-up history as a dashboard asks for them: from a Wednesday
# 10:00 to a Thursday 15:00, past the mark (Wednesday 13:00), so every chart has partial
# weeks and days at both ends, hours before the mark and the tail after it.
MONTH_SINCE, MONTH_UNTIL = "2025-10-22 10:00Z", "2025-11-20 15:00Z"


def month_answers(conn, world) -> dict:
    """The charts filtered by automation, environment or person (the rollup rows that keep
    them, not the totals) and those that read per-person rows, over MONTH."""
    viewer, org, m = world["viewer"], world.org_a, (MONTH_SINCE, MONTH_UNTIL)
    web = world.history["web"]
    return {
        "week_prod_editor": call(conn, viewer, "analytics_changes", org, *m, bucket="week", environment="prod",
                                 author="editor@example.test"),
        "day_web": call(conn, viewer, "analytics_changes", org, *m, automation_id=web),
        "hour_web_admin": call(conn, viewer, "analytics_changes", org, *m, bucket="hour", automation_id=web,
                               author="admin@example.test"),
        "day_staging": call(conn, viewer, "analytics_changes", org, *m, environment="staging"),
        "top": call(conn, viewer, "analytics_top_automations", org, *m),
        "users": call(conn, viewer, "analytics_active_users", org, *m),
        "validation_week": call(conn, viewer, "analytics_validation_failures", org, *m, bucket="week",
                                environment="prod"),
    }


def _roll_up_to(conn, mark: str) -> None:
    while conn.execute("select cfg_private.roll_up_activity(%s) as n", (mark,)).fetchone()["n"]:
        pass


def _setup(conn, world):
    """The year written; its answers counted from the sources alone; then rolled up to YEAR_MARK."""
    world.history = write_history(conn, world)
    _write_year(conn, world)
    world.from_sources = year_answers(conn, world)
    world.month_from_sources = month_answers(conn, world)
    _roll_up_to(conn, YEAR_MARK)
    assert conn.execute("select rolled_up_to from cfg_private.activity_watermark").fetchone()["rolled_up_to"] \
        .isoformat() == "2025-11-19T13:00:00+00:00"


shared = shared_world("analytics_year", _setup)


@pytest.fixture
def year(shared):
    """(conn, world, answers from the sources) in a transaction rolled back after the test."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        yield conn, world, world.from_sources


def test_a_year_from_weeks_days_hours_and_the_tail_gives_the_answers_of_the_sources(year):
    conn, world, from_sources = year
    assert year_answers(conn, world) == from_sources
    # Not vacuous: the year is busy in every chart, and the tail after the mark counts too.
    day = from_sources["day"]
    assert day["total"] == sum(p["changes"] for p in day["series"]) > 600
    assert sum(p["changes"] for p in day["series"] if p["at"] >= "2025-11-19T13") > 50
    assert len(from_sources["hour"]["series"]) == 4800 and from_sources["hour"]["total"] > 300
    assert from_sources["week_prod_editor"]["total"] > 20 and len(from_sources["week"]["series"]) == 50
    assert from_sources["promotions"]["lead_time"]["count"] > 50
    assert len(from_sources["users"]["users"]) == 2 and len(from_sources["users"]["weekly"]) == 50
    assert sum(p["errors"] for p in from_sources["validation_week"]["series"]) > 10


def _bump(conn, world, table: str, where: str) -> int:
    """Adds 1000 to the org A rows of a rollup table that match; how many rows."""
    return conn.execute(f"update cfg_private.{table} set n = n + 1000 where org_id = %s and {where}",  # noqa: S608
                        (world.org_a,)).rowcount


def test_a_year_reads_the_coarsest_rows_that_fit_the_bucket(year):
    conn, world, from_sources = year
    versions = "kind = 'version' and "
    # Totals: a whole week (week charts only), a whole day (8 January: day charts; week charts read
    # its week whole), and the hours of 19 November before the mark (every chart: the week chart's
    # last week is 17 and 18 November from the days, then those hours, then the sources).
    assert _bump(conn, world, "activity_totals", versions + "grain = 'week' and bucket = '2025-06-02Z'") == 1
    assert _bump(conn, world, "activity_totals", versions + "grain = 'day' and bucket = '2025-01-08Z'") == 1
    assert _bump(conn, world, "activity_totals", versions + "grain = 'hour' and bucket >= '2025-11-19Z'"
                 " and bucket < '2025-11-19 13:00Z'") == 1
    # Per automation and person, for most edited: 8 January is in the range's first, partial week.
    bumped = _bump(conn, world, "activity_rollup", versions + "grain = 'day' and bucket = '2025-01-08Z'")
    bumped += _bump(conn, world, "activity_rollup", versions + "grain = 'week' and bucket = '2025-06-02Z'")
    # Weekly active users from the weekly rows per person; daily ones from the daily rows.
    conn.execute("delete from cfg_private.activity_rollup where org_id = %s and kind = 'action' and grain = 'week'"
                 " and bucket = '2025-06-02Z'", (world.org_a,))
    got = year_answers(conn, world)
    assert got["week"]["total"] == from_sources["week"]["total"] + 2000
    assert got["day"]["total"] == from_sources["day"]["total"] + 2000
    assert got["hour"]["total"] == from_sources["hour"]["total"] + 1000
    assert sum(t["changes"] for t in got["top"]["automations"]) == sum(
        t["changes"] for t in from_sources["top"]["automations"]) + 1000 * bumped
    weekly = {p["at"][:10]: p["users"] for p in got["users"]["weekly"]}
    assert weekly["2025-06-02"] == 0 and weekly["2025-06-09"] == 2
    assert got["users"]["daily"] == from_sources["users"]["daily"]


def test_year_long_lead_times_come_from_the_stored_durations_unless_the_pipeline_changed(year):
    conn, world, from_sources = year
    conn.execute("update cfg_private.promotion_rollup set arrived_at = arrived_at - interval '1 day' "
                 "where org_id = %s", (world.org_a,))
    shifted = year_answers(conn, world)["promotions"]["lead_time"]
    assert shifted["median_seconds"] > from_sources["promotions"]["lead_time"]["median_seconds"] + 80_000
    # Measured from another first environment: the period is counted from the sources again.
    conn.execute("update cfg_private.promotion_rollup set from_environment_id = %s where org_id = %s",
                 (world.history["envs"]["staging"], world.org_a))
    assert year_answers(conn, world)["promotions"] == from_sources["promotions"]


def test_thirty_days_filtered_with_edges_mid_week_and_mid_day_give_the_answers_of_the_sources(year):
    conn, world, _ = year
    expected = world.month_from_sources
    assert month_answers(conn, world) == expected
    # Not vacuous: every filtered chart counts something, before the mark and after it.
    for name in ("week_prod_editor", "day_web", "hour_web_admin", "day_staging"):
        series = expected[name]["series"]
        assert expected[name]["total"] > 0, name
        assert any(p["changes"] for p in series if p["at"] < "2025-11-19T13"), name
    assert any(p["changes"] for p in expected["day_web"]["series"] if p["at"] >= "2025-11-19T13")
    assert {t["slug"] for t in expected["top"]["automations"]} == {"billing", "web"}
    assert len(expected["users"]["users"]) == 2 and sum(p["errors"] for p in expected["validation_week"]["series"])
    # The rollup answers them: the daily rows of web inside the range are read, with the filter.
    bumped = _bump(conn, world, "activity_rollup", f"kind = 'version' and grain = 'day' and bucket = '2025-11-03Z' "
                   f"and automation_id = '{world.history['web']}'")
    assert bumped > 0
    assert month_answers(conn, world)["day_web"]["total"] == expected["day_web"]["total"] + 1000 * bumped

