"""No missed change under concurrent saves. Saves to different automations do not wait for
one another on the cursor; a change committed late with an older cursor is not skipped;
and a client that follows the broadcasts (in commit order, from the WAL of
realtime.messages, as Realtime reads them), drops some while "disconnected" and catches up
with cfg.changes_since as docs/realtime.md says, ends with exactly the database's state."""

from __future__ import annotations

import json
import random
import threading
import time

import psycopg
from psycopg.rows import dict_row

from sync_service.db import acting_as
from tests.support.realtime import head_cursor, wal_messages
from tests.support.versioning import content, rpc


def changes_since(conn, who, org_id, after, max_rows=100) -> dict:
    return rpc(conn, who, "select cfg.changes_since(%s, %s, %s) as r", (org_id, after, max_rows))["r"]


def save_body(port: int) -> str:
    return json.dumps(content({"http": {"port": port}}))


def test_concurrent_saves_do_not_wait_and_a_late_commit_is_not_skipped(db_url, conn, world):
    editor = world["editor"]
    other = rpc(conn, world["admin"], "select id from cfg.create_automation(%s, 'Other', 'other-a')",
                (world.org_a,))["id"]
    start = head_cursor(conn, world.org_a)
    # A wait on the first save would fail the second on its lock timeout.
    with (psycopg.connect(db_url, row_factory=dict_row) as first,
          psycopg.connect(db_url, row_factory=dict_row, options="-c lock_timeout=2s") as second):
        first_tx = acting_as(first, editor)
        cur = first_tx.__enter__()
        cur.execute("select cfg.save_config(%s, 1, %s::jsonb)", (world.automation_a, save_body(1)))  # not committed
        started = time.monotonic()
        with acting_as(second, editor) as cur2:
            cur2.execute("select cfg.save_config(%s, 0, %s::jsonb)", (other, save_body(2)))
        assert time.monotonic() - started < 1.5
        # The second save is committed and visible, but its transaction is younger than the
        # open first one: serving it now would let the first commit later behind the cursor.
        visible = conn.execute("select type from cfg_private.changes where automation_id = %s "
                               "and message ->> 'cursor' > %s", (other, start)).fetchall()
        conn.commit()
        assert [v["type"] for v in visible] == ["deployment.moved", "config.saved"]
        assert changes_since(conn, world["viewer"], world.org_a, start)["changes"] == []
        first_tx.__exit__(None, None, None)
    served = changes_since(conn, world["viewer"], world.org_a, start)["changes"]
    assert [(c["automation_id"], c["type"]) for c in served] == [
        (str(world.automation_a), "deployment.moved"), (str(world.automation_a), "config.saved"),
        (str(other), "deployment.moved"), (str(other), "config.saved"),
    ]


class Follower:
    """A dashboard tab: live messages of the org's topic applied as they come, a resume point
    moved by each message's `stable`, and catch-up with changes_since after a reconnect."""

    def __init__(self, conn, who, org_id):
        self.conn, self.who, self.org_id = conn, who, org_id
        self.applied: dict[str, dict] = {}  # cursor -> message
        self.versions: dict[str, int] = {}
        self.resume = changes_since(conn, who, org_id, None)["next"]

    def apply(self, message: dict) -> None:
        if message["cursor"] in self.applied:
            return  # already applied (live and caught up): idempotent
        self.applied[message["cursor"]] = message
        if message["type"] == "config.saved":
            automation = message["automation_id"]
            self.versions[automation] = max(self.versions.get(automation, 0), message["data"]["version"])

    def live(self, message: dict) -> None:
        self.apply(message)
        self.resume = max(self.resume, message["stable"])

    def catch_up(self) -> None:
        first_head, after = None, self.resume
        while True:
            page = changes_since(self.conn, self.who, self.org_id, after, 50)
            assert not page["resync"]
            first_head = first_head or page["head"]
            for message in page["changes"]:
                self.apply(message)
            after = page["next"]
            if not page["more"] and after >= first_head:
                break
            if not page["more"]:
                time.sleep(0.05)  # a transaction older than the head is still running
        self.resume = max(self.resume, after)


def test_a_follower_ends_with_exactly_the_databases_state(db_url, conn, world):
    org = world.org_a
    automations = [rpc(conn, world["admin"], "select id from cfg.create_automation(%s, %s, %s)",
                       (org, f"A{i}", f"a{i}"))["id"] for i in range(4)]
    conn.execute("set synchronous_commit = on")
    conn.execute("select pg_create_logical_replication_slot('follower', 'wal2json')")
    conn.commit()
    follower = Follower(conn, world["viewer"], org)
    start = head_cursor(conn, org)

    # Saves 4 to 6 wait for the tab to disconnect, the last for it to reconnect: however
    # fast the machine, some saves are missed live and some arrive after the catch-up.
    disconnected, reconnected = threading.Event(), threading.Event()

    def writer(automation) -> None:
        rng = random.Random(str(automation))
        with psycopg.connect(db_url, row_factory=dict_row, options="-c synchronous_commit=on") as own:
            for version in range(8):
                if version == 4:
                    disconnected.wait(10)
                elif version == 7:
                    reconnected.wait(10)
                with acting_as(own, world["editor"]) as cur:
                    cur.execute("select cfg.save_config(%s, %s, %s::jsonb)", (automation, version, save_body(version)))
                    time.sleep(rng.random() * 0.03)  # commits land out of xid order

    def stream() -> list[dict]:
        return [m["payload"] for m in wal_messages(conn, "follower") if m["topic"] == f"org:{org}"]

    try:
        threads = [threading.Thread(target=writer, args=(a,)) for a in automations]
        for t in threads:
            t.start()
        rounds = 0
        while any(t.is_alive() for t in threads):
            messages = stream()
            # Rounds 3 to 5: disconnected, these broadcasts never reach the tab.
            if rounds == 3:
                disconnected.set()
            if rounds == 6:
                # Reconnected: what arrives meanwhile waits until the catch-up is done.
                follower.catch_up()
                reconnected.set()
            if rounds not in (3, 4, 5):
                for m in messages:
                    follower.live(m)
            rounds += 1
            time.sleep(0.05)
        for t in threads:
            t.join()
        for m in stream():
            follower.live(m)
        follower.catch_up()
    finally:
        conn.rollback()
        conn.execute("select pg_drop_replication_slot('follower')")
        conn.commit()

    assert rounds > 6, "the writers finished before the tab disconnected"
    logged = {r["c"] for r in conn.execute(
        "select message ->> 'cursor' as c from cfg_private.changes where org_id = %s and message ->> 'cursor' > %s",
        (org, start))}
    heads = {str(r["automation_id"]): r["v"] for r in conn.execute(
        "select automation_id, max(version) as v from cfg.config_versions where automation_id = any(%s) "
        "group by automation_id", (automations,))}
    conn.commit()
    assert len(logged) == 4 * 8 * 2
    assert set(follower.applied) - {c for c in follower.applied if c <= start} == logged
    assert {a: v for a, v in follower.versions.items() if a in heads} == heads == {str(a): 8 for a in automations}
