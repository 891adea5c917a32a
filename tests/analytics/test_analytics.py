"""Analytics against a history with known answers (tests/analytics/history.py): exact
counts, zeros in empty buckets, medians and p90s; the same answers from the rollup and from
the sources on both sides of the watermark; another org's numbers never counted; bad input."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.analytics.history import at, write_history
from tests.support.act import attempt
from tests.support.rls import shared_world
from tests.support.versioning import content, save

SINCE, UNTIL = at(2, 0), at(9, 23)  # the days 2-9 March: 8 day buckets, 2 weeks


def _setup(conn, world):
    world.history = write_history(conn, world)


shared = shared_world("analytics", _setup)


@pytest.fixture
def hist(shared):
    """(conn, world) in a transaction rolled back after the test."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        yield conn, world


def call(conn, who, fn: str, *args, **named):
    """cfg.<fn>(args, name => value) as who; the jsonb answer, or raises AssertionError with the refusal."""
    params = [*args, *named.values()]
    placeholders = [*["%s"] * len(args), *[f"{k} => %s" for k in named]]
    outcome = attempt(conn, who, f"select cfg.{fn}({', '.join(placeholders)}) as r", params)
    assert outcome.ok, (outcome.code, outcome.message, outcome.detail)
    return outcome.rows[0]["r"]


def refused(conn, who, fn: str, *args, **named):
    params = [*args, *named.values()]
    placeholders = [*["%s"] * len(args), *[f"{k} => %s" for k in named]]
    outcome = attempt(conn, who, f"select cfg.{fn}({', '.join(placeholders)}) as r", params)
    assert not outcome.ok, outcome.rows
    return outcome


def days(answer, field="changes"):
    """[(day, count)] of a series, or of an answer's "series"."""
    series = answer["series"] if isinstance(answer, dict) else answer
    return [(point["at"][:10], point[field]) for point in series]


def everything(conn, world) -> dict:
    """Every analytics answer for the known period, as the viewer."""
    viewer, org = world["viewer"], world.org_a
    return {
        "changes_day": call(conn, viewer, "analytics_changes", org, SINCE, UNTIL),
        "changes_hour": call(conn, viewer, "analytics_changes", org, at(2, 0), at(2, 23), bucket="hour"),
        "changes_prod": call(conn, viewer, "analytics_changes", org, SINCE, UNTIL, bucket="week", environment="prod"),
        "changes_editor": call(conn, viewer, "analytics_changes", org, SINCE, UNTIL, author="editor@example.test"),
        "top": call(conn, viewer, "analytics_top_automations", org, SINCE, UNTIL),
        "promotions": call(conn, viewer, "analytics_promotions", org, SINCE, UNTIL),
        "users": call(conn, viewer, "analytics_active_users", org, SINCE, UNTIL),
        "validation": call(conn, viewer, "analytics_validation_failures", org, SINCE, UNTIL),
    }


# =============================================================================
# Known answers
# =============================================================================


def test_change_frequency_by_day_hour_and_week_with_zeros_and_filters(hist):
    conn, world = hist
    got = everything(conn, world)
    by_day = got["changes_day"]
    assert days(by_day) == [("2026-03-02", 4), ("2026-03-03", 0), ("2026-03-04", 2), ("2026-03-05", 0),
                            ("2026-03-06", 0), ("2026-03-07", 0), ("2026-03-08", 0), ("2026-03-09", 1)]
    assert by_day["total"] == 7 and by_day["source"] == "versions"
    assert by_day["since"] == "2026-03-02T00:00:00Z" and by_day["until"] == "2026-03-10T00:00:00Z"
    hours = {p["at"][11:13]: p["changes"] for p in got["changes_hour"]["series"]}
    assert len(hours) == 24 and hours["09"] == 2 and hours["10"] == 1 and hours["14"] == 1
    assert sum(hours.values()) == 4
    # Into prod: 11:10 on 2 March, 10:00 and 12:00 on 4 March; weeks start on Monday.
    assert days(got["changes_prod"]) == [("2026-03-02", 3), ("2026-03-09", 0)]
    assert got["changes_prod"]["source"] == "deployments"
    assert got["changes_editor"]["total"] == 4
    web = world.history["web"]
    only_web = call(conn, world["viewer"], "analytics_changes", world.org_a, SINCE, UNTIL, automation_id=web)
    assert days(only_web)[:3] == [("2026-03-02", 1), ("2026-03-03", 0), ("2026-03-04", 2)]
    by_id = call(conn, world["viewer"], "analytics_changes", world.org_a, SINCE, UNTIL,
                 author=str(world["admin"].user_id))
    assert by_id["total"] == 3


def test_most_edited_automations(hist):
    conn, world = hist
    top = everything(conn, world)["top"]["automations"]
    assert [(t["slug"], t["changes"], t["authors"]) for t in top] == [("billing", 4, 1), ("web", 3, 1)]
    one = call(conn, world["viewer"], "analytics_top_automations", world.org_a, SINCE, UNTIL, max_rows=1)
    assert [t["slug"] for t in one["automations"]] == ["billing"]
    empty = call(conn, world["viewer"], "analytics_top_automations", world.org_a, at(5, 0), at(8, 0))
    assert empty["automations"] == []


def test_promotion_outcomes_rates_lead_time_and_approval_wait(hist):
    conn, world = hist
    answer = everything(conn, world)["promotions"]
    envs = {e["environment"]: e for e in answer["environments"]}
    assert set(envs) == {"staging", "prod"}  # promotions go into the environments after the first
    prod = envs["prod"]
    outcomes = ("requested", "pending", "applied", "rejected", "superseded")
    assert [prod[k] for k in outcomes] == [5, 1, 2, 1, 1]
    assert (prod["applied_rate"], prod["rejected_rate"], prod["superseded_rate"]) == (0.5, 0.25, 0.25)
    assert prod["direct"] == 1  # web v101 went to prod without a request
    # Waits 1 h, 30 min, 3 h: median 1 h; p90 interpolated 3600 + 0.8 * 7200.
    assert prod["approval_wait"] == {"count": 3, "median_seconds": 3600.0, "p90_seconds": 9360.0}
    staging = envs["staging"]
    assert (staging["requested"], staging["direct"], staging["applied_rate"]) == (0, 2, None)
    assert staging["approval_wait"]["count"] == 0 and staging["approval_wait"]["median_seconds"] is None
    # dev -> prod: 2 h, 48 h (web v101) and 4 h: median 4 h, p90 14400 + 0.8 * 158400.
    assert answer["lead_time"] == {"from": "dev", "to": "prod", "count": 3,
                                   "median_seconds": 14400.0, "p90_seconds": 141120.0}


def test_active_users_daily_weekly_and_who(hist):
    conn, world = hist
    users = everything(conn, world)["users"]
    assert days(users["daily"], "users") == [("2026-03-02", 2), ("2026-03-03", 0), ("2026-03-04", 1),
                                            ("2026-03-05", 0), ("2026-03-06", 0), ("2026-03-07", 0),
                                            ("2026-03-08", 0), ("2026-03-09", 1)]
    assert days(users["weekly"], "users") == [("2026-03-02", 2), ("2026-03-09", 1)]
    assert [(u["email"], u["actions"], u["active_days"], u["last_active_day"]) for u in users["users"]] == [
        ("editor@example.test", 4, 2, "2026-03-04T00:00:00Z"),
        ("admin@example.test", 3, 2, "2026-03-09T00:00:00Z"),
    ]


def test_validation_failures_over_time(hist):
    conn, world = hist
    series = everything(conn, world)["validation"]["series"]
    assert [(p["at"][:10], p["errors"], p["warnings"]) for p in series if p["errors"] or p["warnings"]] == [
        ("2026-03-03", 1, 1), ("2026-03-09", 1, 0)]
    assert len(series) == 8
    prod = call(conn, world["viewer"], "analytics_validation_failures", world.org_a, SINCE, UNTIL, environment="prod")
    assert sum(p["errors"] for p in prod["series"]) == 2 and sum(p["warnings"] for p in prod["series"]) == 0


# =============================================================================
# The rollup: the same answers on both sides of the watermark, current to the second
# =============================================================================


def test_rollup_gives_the_answers_of_the_sources_on_both_sides_of_the_watermark(hist):
    conn, world = hist
    tail_only = everything(conn, world)
    assert conn.execute("select count(*) as n from cfg_private.activity_rollup").fetchone()["n"] == 0
    # Watermark in the middle of the period (4 March 09:00): before it from the rollup, after from the sources.
    assert conn.execute("select cfg_private.roll_up_activity(%s) as n", (at(4, 9, 30),)).fetchone()["n"] > 0
    mark = conn.execute("select rolled_up_to from cfg_private.activity_watermark").fetchone()["rolled_up_to"]
    assert mark == at(4, 9)
    assert everything(conn, world) == tail_only
    # Then all of it (31 days per run; past the history).
    conn.execute("select cfg_private.roll_up_activity()")
    mark = conn.execute("select rolled_up_to from cfg_private.activity_watermark").fetchone()["rolled_up_to"]
    assert mark > at(10, 0)
    assert everything(conn, world) == tail_only
    # The answers really come from the rollup now: day charts from the daily totals, or the daily
    # rows per person with an author filter; hour charts from the hourly ones.
    conn.execute("update cfg_private.activity_totals set n = n * 2 where org_id = %s and kind = 'version' "
                 "and grain = 'day'", (world.org_a,))
    conn.execute("update cfg_private.activity_rollup set n = n * 3 where org_id = %s and kind = 'version' "
                 "and grain = 'day'", (world.org_a,))
    doubled = everything(conn, world)
    assert doubled["changes_day"]["total"] == 14 and doubled["changes_hour"] == tail_only["changes_hour"]
    assert doubled["changes_editor"]["total"] == 12


def test_a_save_counts_at_once_even_with_the_rollup_up_to_date(hist):
    conn, world = hist
    conn.execute("select cfg_private.roll_up_activity()")
    conn.execute("select cfg_private.roll_up_activity()")  # as far as the horizon (this hour)
    before = call(conn, world["viewer"], "analytics_changes", world.org_a, bucket="hour")
    latest = conn.execute("select max(version) as v from cfg.config_versions where automation_id = %s",
                          (world.automation_a,)).fetchone()["v"]
    save(conn, world["editor"], world.automation_a, latest, content({"http": {"port": 9}}))
    after = call(conn, world["viewer"], "analytics_changes", world.org_a, bucket="hour")
    assert after["total"] == before["total"] + 1
    users = call(conn, world["viewer"], "analytics_active_users", world.org_a)
    assert "editor@example.test" in [u["email"] for u in users["users"]]


def test_the_job_never_rolls_up_an_hour_a_running_transaction_could_still_write_to(hist):
    conn, world = hist
    horizon = conn.execute("select cfg_private.activity_horizon() as h, now() as t").fetchone()
    # This test's own transaction is running: the horizon is the hour it started in, at the latest.
    assert horizon["h"] <= horizon["t"] and (horizon["t"] - horizon["h"]).total_seconds() < 3600


# =============================================================================
# A year: weekly rows inside, daily and hourly ones at the edges, the sources after the mark
# =============================================================================

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


def _roll_up_to(conn, mark: str) -> None:
    while conn.execute("select cfg_private.roll_up_activity(%s) as n", (mark,)).fetchone()["n"]:
        pass


@pytest.fixture
def year(hist):
    """The year written; its answers counted from the sources alone; then rolled up to YEAR_MARK."""
    conn, world = hist
    _write_year(conn, world)
    from_sources = year_answers(conn, world)
    _roll_up_to(conn, YEAR_MARK)
    assert conn.execute("select rolled_up_to from cfg_private.activity_watermark").fetchone()["rolled_up_to"] \
        .isoformat() == "2025-11-19T13:00:00+00:00"
    return conn, world, from_sources


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


# =============================================================================
# Tenancy and bad input
# =============================================================================


def test_another_orgs_numbers_are_never_visible(hist):
    conn, world = hist
    for who in ("other_admin", "outsider"):
        for fn in ("analytics_changes", "analytics_top_automations", "analytics_promotions",
                   "analytics_active_users", "analytics_validation_failures"):
            outcome = refused(conn, world[who], fn, world.org_a)
            assert (outcome.code, outcome.message) == ("PT404", "organisation not found")
    unknown = refused(conn, world["viewer"], "analytics_changes", uuid.uuid4())
    assert (unknown.code, unknown.message) == ("PT404", "organisation not found")
    # Org B's admin sees org B's numbers only: 5 versions on 2 March, none of org A's.
    b = call(conn, world["other_admin"], "analytics_changes", world.org_b, SINCE, UNTIL)
    assert days(b)[0] == ("2026-03-02", 5) and b["total"] == 5
    # Another org's automation as a filter, or an unknown environment: not found.
    assert refused(conn, world["viewer"], "analytics_changes", world.org_a,
                   automation_id=world.automation_b).code == "PT404"
    assert refused(conn, world["viewer"], "analytics_changes", world.org_a, environment="qa").code == "PT404"


@pytest.mark.parametrize("named, path", [
    ({"bucket": "month"}, "bucket"),
    ({"since": at(9, 0), "until": at(2, 0)}, "since"),
    ({"since": "2020-01-01", "until": "2026-01-01", "bucket": "hour"}, "until"),
    ({"since": "-infinity"}, "since"),
])
def test_bad_ranges_are_refused_with_the_path(hist, named, path):
    conn, world = hist
    outcome = refused(conn, world["viewer"], "analytics_changes", world.org_a, **named)
    assert outcome.code == "PT422", outcome.message
    assert [e["path"] for e in outcome.detail["errors"]] == [path]
    assert outcome.message == outcome.detail["errors"][0]["message"]


def test_bad_max_rows_and_a_missing_org_come_first(hist):
    conn, world = hist
    bad = refused(conn, world["viewer"], "analytics_top_automations", world.org_a, max_rows=1000)
    assert bad.code == "PT422" and bad.detail["errors"][0]["path"] == "max_rows"
    # Another org's id answers PT404 before the input is even looked at.
    assert refused(conn, world["other_admin"], "analytics_changes", world.org_a, bucket="month").code == "PT404"
    assert json.dumps(bad.detail)
