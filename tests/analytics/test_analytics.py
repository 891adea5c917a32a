"""Analytics against a history with known answers (tests/analytics/history.py): exact
counts, zeros in empty buckets, medians and p90s; the same answers from the rollup and from
the sources on both sides of the watermark; another org's numbers never counted; bad input."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.analytics.history import at, call, write_history
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
