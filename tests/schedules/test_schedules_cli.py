"""`cfgctl schedule …` against a world: add (one-off with a window, recurring), list, the
timeline grouped by day, pause, resume, cancel, approve; exit codes."""

from __future__ import annotations

import json

ADMIN = ("--as", "admin@example.test")
EDITOR = ("--as", "editor@example.test")
VIEWER = ("--as", "viewer@example.test")
OTHER = ("--as", "other_admin@example.test")


def test_schedules_from_the_cli(cfgctl, world, conn):
    added = cfgctl("schedule", "add", "org-a/billing", "--at", "2030-06-01T02:00", "--tz", "Europe/Berlin",
                   "--window", "2 hours", "--set", "flags.maintenance=true", "--set", "http.port=9090", *EDITOR,
                   "--json")
    assert added.code == 0, added.output
    one_off = added.json()
    assert one_off["run_at"] == "2030-06-01T00:00:00+00:00" and one_off["revert_after"] == "02:00:00"
    assert one_off["change"]["set"] == {"flags": {"maintenance": {"value": True}}, "http": {"port": {"value": 9090}}}
    recurring = cfgctl("schedule", "add", "org-a/billing", "--cron", "0 3 * * 1-5", "--tz", "America/New_York",
                       "--status", "paused", "--count", "5", *EDITOR, "--json")
    assert recurring.code == 0, recurring.output
    promote = cfgctl("schedule", "add", "org-a/billing", "--at", "2030-06-02T02:00+02:00", "--promote", "staging:prod",
                     "--window", "3 hours", *EDITOR, "--json").json()
    assert promote["needs_approval"] and not promote["armed"] and promote["revert_after"] == "03:00:00"

    listed = cfgctl("schedule", "list", "org-a", *VIEWER, "--json").json()
    assert {s["action"] for s in listed} == {"patch", "status", "promote"}
    table = cfgctl("schedule", "list", "org-a", *VIEWER)
    assert table.code == 0 and "billing" in table.out

    timeline = cfgctl("schedule", "timeline", "org-a", "--days", "3650", "--tz", "Europe/Berlin", *VIEWER)
    assert timeline.code == 0, timeline.output
    assert "2030-06-01" in timeline.out and "2030-06-02" in timeline.out  # a table per day
    rows = cfgctl("schedule", "timeline", "org-a", "--days", "3650", "--env", "prod", *VIEWER, "--json").json()
    assert [(r["action"], r["phase"]) for r in rows] == [("promote", "apply"), ("promote", "revert")]

    assert cfgctl("schedule", "approve", promote["id"], *EDITOR).code == 4
    assert cfgctl("schedule", "approve", promote["id"], *ADMIN, "--json").json()["armed"]
    assert cfgctl("schedule", "pause", one_off["id"], *EDITOR, "--json").json()["state"] == "paused"
    assert cfgctl("schedule", "pause", one_off["id"], *EDITOR).code == 5
    assert cfgctl("schedule", "resume", one_off["id"], *EDITOR, "--json").json()["state"] == "active"
    edited = cfgctl("schedule", "edit", one_off["id"], "--fields", json.dumps({"message": "later"}), *EDITOR, "--json")
    assert edited.json()["message"] == "later"
    assert cfgctl("schedule", "cancel", one_off["id"], *VIEWER).code == 4
    assert cfgctl("schedule", "cancel", one_off["id"], *OTHER).code == 3
    assert cfgctl("schedule", "cancel", one_off["id"], *EDITOR, "--json").json()["state"] == "cancelled"


def test_bad_schedules_exit_with_their_code(cfgctl, world):
    bad_cron = cfgctl("schedule", "add", "org-a/billing", "--cron", "99 * * * *", "--status", "paused", *EDITOR)
    assert bad_cron.code == 6 and "invalid cron expression" in bad_cron.output
    assert bad_cron.detail["errors"][0]["path"] == "cron"
    assert cfgctl("schedule", "add", "org-a/billing", "--at", "2030-01-01T00:00", "--tz", "Nowhere/Land",
                  "--status", "paused", *EDITOR).code == 6
    assert cfgctl("schedule", "add", "org-a/billing", "--at", "2030-01-01T00:00", *EDITOR).code == 2  # no change
    rotation = cfgctl("schedule", "add", "org-a/billing", "--at", "2030-01-01T00:00", "--rotate", "http.api_key",
                      "--window", "1 hour", *EDITOR)
    assert rotation.code == 6 and "retired credential" in rotation.output
    assert cfgctl("schedule", "add", "org-a/billing", "--at", "2030-01-01T00:00", "--set", "nokey=1",
                  *EDITOR).code == 2
