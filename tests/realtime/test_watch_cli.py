"""`cfgctl watch`: locally from the database (cfg.changes_since); on a hosted project through
supabase-py's `realtime` client against a SCRIPTED Realtime (tests/support/scripted_realtime.py:
the client and its WebSocket frames are real, the Realtime answering them is not)."""

from __future__ import annotations

import json

from tests.support.cli import run_cfgctl
from tests.support.realtime import head_cursor, messages
from tests.support.scripted_realtime import ScriptedRealtime
from tests.support.versioning import content, save

ANON_KEY = "anon-key-of-the-project"


def test_watch_locally_prints_the_changes_after_a_cursor(cfgctl, conn, world):
    start = head_cursor(conn, world.org_a)
    save(conn, world["editor"], world.automation_a, 1, content({"http": {"port": 9090}}), "move")
    run = cfgctl("watch", "org-a", "--as", world["viewer"].email, "--after", start, "--count", "2", "--json")
    assert run.code == 0, run.output
    printed = [json.loads(line) for line in run.out.splitlines()]
    assert [c["type"] for c in printed] == ["deployment.moved", "config.saved"]
    people = cfgctl("watch", "org-a/billing", "--as", world["viewer"].email, "--after", start, "--count", "2")
    assert "config.saved" in people.out and "v2 (from v1): http.api_key, http.port" in people.out
    assert world["editor"].email in people.out


def test_watch_prints_a_bulk_batch_as_one_line(cfgctl, conn, world):
    start = head_cursor(conn, world.org_a)
    ids = [r["id"] for r in conn.execute("select id from cfg.automations where org_id = %s", (world.org_a,))]
    conn.commit()
    run = cfgctl("bulk", "tag", "org-a", "eu-west", "--ids", ",".join(map(str, ids)), "--as", world["editor"].email)
    assert run.code == 0, run.output
    run = cfgctl("bulk", "patch", "org-a", "--set", "http.port=8443", "--ids", str(world.automation_a),
                 "--as", world["editor"].email)
    assert run.code == 0, run.output
    people = cfgctl("watch", "org-a", "--as", world["viewer"].email, "--after", start, "--count", "4")
    assert people.code == 0, people.output
    lines = [line for line in people.out.splitlines() if "automations.bulk_updated" in line]
    assert [line.split(" automations.bulk_updated ", 1)[1].strip().rsplit(" [", 1)[0] for line in lines] == [
        f'tag of {len(ids)} automations: {{"tags": {{"add": ["eu-west"]}}}}', "patch of 1 automations"]


def test_watch_locally_from_now_stops_at_its_timeout(cfgctl, world):
    run = cfgctl("watch", "org-a", "--as", world["viewer"].email, "--timeout", "0.3", "--interval", "0.1",
                 "--json")
    assert run.code == 0 and run.out == ""


def test_watch_locally_answers_only_members(cfgctl, world):
    assert cfgctl("watch", "org-a", "--as", world["outsider"].email, "--timeout", "0").code == 3
    assert cfgctl("watch", "org-a/other", "--as", world["viewer"].email, "--timeout", "0").code == 3
    assert cfgctl("watch", "org-a", "--timeout", "0").code == 1  # nobody to act as


def test_watch_on_a_hosted_project_joins_the_private_channel_with_the_users_token(conn, world):
    save(conn, world["editor"], world.automation_a, 1, content({"http": {"port": 9090}}))
    sent = [m["payload"] for m in messages(conn, f"org:{world.org_a}")][-2:]
    topic = f"org:{world.org_a}"
    with ScriptedRealtime(ANON_KEY, {"user-jwt": {topic}}) as realtime:
        for payload in sent:
            realtime.broadcast(topic, payload["type"], payload)
        env = {"CFGCTL_SUPABASE_URL": realtime.url, "CFGCTL_SUPABASE_ANON_KEY": ANON_KEY}
        run = run_cfgctl("watch", str(world.org_a), "--token", "user-jwt", "--count", "2", "--json", env=env)
    assert run.code == 0, run.output
    assert [json.loads(line) for line in run.out.splitlines()] == sent
    join = next(f for f in realtime.frames if f["event"] == "phx_join")
    assert join["topic"] == f"realtime:{topic}"
    assert join["payload"]["config"]["private"] is True and join["payload"]["access_token"] == "user-jwt"
    assert any(f["event"] == "heartbeat" and f["topic"] == "phoenix" for f in realtime.frames)


def test_watch_of_one_automation_on_a_hosted_project_hears_the_bulk_batches_that_name_it(conn, world):
    save(conn, world["editor"], world.automation_a, 1, content({"http": {"port": 9090}}))
    mine = [m["payload"] for m in messages(conn, f"automation:{world.automation_a}")][-1]
    batch = {"type": "automations.bulk_updated", "automation_id": None, "data": {
        "action": "tag", "automation_ids": [str(world.automation_a)], "changes": {"tags": {"add": ["eu"]}}}}
    other = batch | {"data": batch["data"] | {"automation_ids": [str(world.org_b)]}}
    org, automation = f"org:{world.org_a}", f"automation:{world.automation_a}"
    with ScriptedRealtime(ANON_KEY, {"user-jwt": {org, automation}}) as realtime:
        realtime.broadcast(automation, mine["type"], mine)
        for payload in (other, mine | {"type": "config.saved"}, batch):  # the org's others are not this tab's
            realtime.broadcast(org, payload["type"], payload)
        env = {"CFGCTL_SUPABASE_URL": realtime.url, "CFGCTL_SUPABASE_ANON_KEY": ANON_KEY}
        run = run_cfgctl("watch", f"{world.org_a}/{world.automation_a}", "--token", "user-jwt", "--timeout", "3",
                         "--json", env=env)
    assert run.code == 0, run.output
    assert [json.loads(line) for line in run.out.splitlines()] == [mine, batch]
    assert [f["topic"] for f in realtime.frames if f["event"] == "phx_join"] == [f"realtime:{automation}",
                                                                               f"realtime:{org}"]


def test_watch_on_a_hosted_project_refused_by_realtime_exits_forbidden(world):
    with ScriptedRealtime(ANON_KEY, {"user-jwt": {f"org:{world.org_b}"}}) as realtime:
        env = {"CFGCTL_SUPABASE_URL": realtime.url, "CFGCTL_SUPABASE_ANON_KEY": ANON_KEY}
        run = run_cfgctl("watch", f"{world.org_a}/{world.automation_a}", "--token", "user-jwt", "--timeout", "2",
                         env=env)
        slugs = run_cfgctl("watch", "org-a", "--token", "user-jwt", env=env)
    assert run.code == 4 and "Realtime refused to join" in run.err and "Unauthorized" in run.err
    join = next(f for f in realtime.frames if f["event"] == "phx_join")
    assert join["topic"] == f"realtime:automation:{world.automation_a}"
    assert slugs.code == 2 and "give the organisation's id" in slugs.output
