"""Who may join which private channel: topics x roles x extensions (receive, track presence,
send a broadcast), checked exactly as Supabase Realtime checks a joining client
(tests/support/realtime.py), against the policies on realtime.messages."""

from __future__ import annotations

import uuid

import pytest

from sync_service.db import acting_as
from tests.support.realtime import read_check, write_check
from tests.support.rls import ACTORS, shared_world

shared = shared_world("realtime_authorization")

TOPICS = {
    "org:A": lambda w: f"org:{w.org_a}",
    "automation:A": lambda w: f"automation:{w.automation_a}",
    "org:B": lambda w: f"org:{w.org_b}",
    "automation:B": lambda w: f"automation:{w.automation_b}",
    "org:unknown": lambda w: f"org:{uuid.uuid4()}",
    "automation:unknown": lambda w: f"automation:{uuid.uuid4()}",
    "org:A-uppercase": lambda w: f"org:{str(w.org_a).upper()}",
    "public": lambda w: "room:lobby",
}

# Per topic, the actors (tests/support/rls.py order) who may: receive broadcasts, receive
# presence, track presence, send broadcasts. service_role bypasses RLS, as in Realtime.
MEMBERS_A = "-YYY--Y"
MEMBERS_B = "----Y-Y"
NOBODY = "------Y"
EXPECTED = {
    #                        receive   presence  track     send
    "org:A":                (MEMBERS_A, MEMBERS_A, NOBODY, NOBODY),
    "automation:A":         (MEMBERS_A, MEMBERS_A, MEMBERS_A, NOBODY),
    "org:B":                (MEMBERS_B, MEMBERS_B, NOBODY, NOBODY),
    "automation:B":         (MEMBERS_B, MEMBERS_B, MEMBERS_B, NOBODY),
    "org:unknown":          (NOBODY, NOBODY, NOBODY, NOBODY),
    "automation:unknown":   (NOBODY, NOBODY, NOBODY, NOBODY),
    "org:A-uppercase":      (NOBODY, NOBODY, NOBODY, NOBODY),
    "public":               (NOBODY, NOBODY, NOBODY, NOBODY),
}


@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("actor", ACTORS)
def test_who_may_join_which_channel(shared, topic, actor):
    conn, world = shared
    name = TOPICS[topic](world)
    read = read_check(conn, world[actor], name)
    write = write_check(conn, world[actor], name)
    index = ACTORS.index(actor)
    receive, presence, track, send = (cells[index] == "Y" for cells in EXPECTED[topic])
    assert read == {"broadcast": receive, "presence": presence}
    assert write == {"broadcast": send, "presence": track}


def test_the_check_follows_the_rows_topic_not_only_the_setting(shared):
    """realtime.topic is a setting anyone can set: a member who sets it to their own org's
    topic still reads no row of another topic (the policy compares the row's topic)."""
    conn, world = shared
    with conn.transaction(force_rollback=True):
        conn.execute("select realtime.send('{\"n\": 1}', 'x', %s)", (f"org:{world.org_b}",))
        conn.execute("select realtime.send('{\"n\": 2}', 'x', %s)", (f"org:{world.org_a}",))
        with acting_as(conn, world["viewer"]) as cur:
            cur.execute("select set_config('realtime.topic', %s, true)", (f"org:{world.org_a}",))
            seen = {r["topic"] for r in cur.execute("select topic from realtime.messages")}
        assert seen == {f"org:{world.org_a}"}
        with acting_as(conn, world["outsider"]) as cur:
            cur.execute("select set_config('realtime.topic', %s, true)", (f"org:{world.org_a}",))
            assert cur.execute("select count(*) from realtime.messages").fetchone()["count"] == 0


def test_a_member_who_leaves_may_no_longer_join(shared):
    conn, world = shared
    with conn.transaction(force_rollback=True):
        conn.execute("delete from cfg.org_members where org_id = %s and user_id = %s",
                     (world.org_a, world["viewer"].user_id))
        assert read_check(conn, world["viewer"], f"org:{world.org_a}") == {"broadcast": False, "presence": False}
