"""Benchmark for realtime (issue 14, item 9). It prints its figure, a baseline measured in the
same run on the same throwaway cluster, and the ratio.

cfg.save_config with broadcasts (each save logs and broadcasts config.saved and
deployment.moved: a change-log row and two realtime.messages rows each) against the same
save without: a clone of the same database with the two broadcast triggers disabled.
Two shapes: a 50-entry config with every value changed, and with one value changed (the
cheapest save, where the broadcasts weigh most). Target <= 1.1x. Alternating half-second
rounds; the median of the per-round ratios.

A bulk patch of 500 automations in one batch: the Realtime messages it writes, and how many
a second, against the same 500 patches as single patch_config calls. Realtime drops what
is over the project's messages per second (100 on the Free plan), every org's alike.
Target: the batch's one message and the operation's bulk.completed, within 100 a second.

Run: .venv/bin/python bench/bench_realtime.py
"""

from __future__ import annotations

import json
import time
from itertools import count

import psycopg
from bench_versioning import call, entries_content, paired_rates, user
from common import throwaway_database
from psycopg.rows import dict_row

from sync_service import local_stack as local

LOUD, QUIET = "bench_with_broadcasts", "bench_without_broadcasts"


def saver(conn, editor, automation_id, one_key: bool):
    generation, version = count(1), [1]

    def save_once() -> None:
        body = entries_content(50, 0 if one_key else next(generation), secrets=2)
        if one_key:
            body["sections"]["section0"]["entries"]["key5"]["value"] = {"n": next(generation)}
        result = call(conn, editor, "select cfg.save_config(%s, %s, %s::jsonb) as r",
                      (automation_id, version[0], json.dumps(body)))[0]["r"]
        version[0] = result["version"]

    return save_once


def main() -> None:
    with throwaway_database() as cluster_url:
        # Not the cluster's postgres database, which pg_cron's launcher keeps open: a clone
        # needs its template unused.
        with psycopg.connect(cluster_url, autocommit=True) as admin_conn:
            admin_conn.execute(f"create database {LOUD}")
        url, quiet_url = (cluster_url.rsplit("/", 1)[0] + f"/{name}" for name in (LOUD, QUIET))
        local.provision(url, seed=False)
        with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            admin, editor = user(conn, "admin@example.test"), user(conn, "editor@example.test")
            org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
            invitation = call(conn, admin, "select id from cfg.invite_member(%s, %s, 'editor')",
                              (org, editor.email))[0]["id"]
            call(conn, editor, "select cfg.accept_invitation(%s)", (invitation,))
            automations = [call(conn, admin, "select id from cfg.create_automation(%s, %s, %s)",
                                (org, f"A{i}", f"a{i}"))[0]["id"] for i in range(2)]
            for automation in automations:
                call(conn, editor, "select cfg.save_config(%s, 0, %s::jsonb)",
                     (automation, json.dumps(entries_content(50, 0, secrets=2))))
        with psycopg.connect(cluster_url, autocommit=True) as admin_conn:
            admin_conn.execute(f"create database {QUIET} template {LOUD}")
        with psycopg.connect(quiet_url, autocommit=True) as quiet:
            quiet.execute("alter table cfg_private.events disable trigger broadcast")
            quiet.execute("alter table cfg.deployments disable trigger broadcast")
        with (psycopg.connect(url, row_factory=dict_row, autocommit=True) as loud,
              psycopg.connect(quiet_url, row_factory=dict_row, autocommit=True) as quiet):
            for index, (shape, one_key) in enumerate((("every value changed", False), ("one value changed", True))):
                with_broadcasts = saver(loud, editor, automations[index], one_key)
                without = saver(quiet, editor, automations[index], one_key)
                rate, baseline, ratio = paired_rates(with_broadcasts, without)
                print(f"save_config, 50 entries, {shape}: {1000 / rate:.2f} ms with broadcasts vs "
                      f"{1000 / baseline:.2f} ms without -> ratio {ratio:.2f}x (target <= 1.1x)")
            messages = loud.execute("select count(*) as n from realtime.messages").fetchone()["n"]
            print(f"    ({messages} broadcasts written to realtime.messages)")
            bulk_patch(loud, admin, editor, org)


def bulk_patch(conn, admin, editor, org, size: int = 500) -> None:
    ids = [call(conn, admin, "select id from cfg.create_automation(%s, %s, %s)", (org, f"P{i}", f"p{i}"))[0]["id"]
           for i in range(size)]
    for automation in ids:
        call(conn, editor, "select cfg.save_config(%s, 0, %s::jsonb)",
             (automation, json.dumps(entries_content(5, 0))))

    def written(patch) -> tuple[int, float]:
        """Messages written to realtime.messages by patch(), and its seconds."""
        before = conn.execute("select count(*) as n from realtime.messages").fetchone()["n"]
        start = time.perf_counter()
        patch()
        seconds = time.perf_counter() - start
        return conn.execute("select count(*) as n from realtime.messages").fetchone()["n"] - before, seconds

    def single_calls() -> None:
        for automation in ids:
            call(conn, editor, "select cfg.patch_config(%s, null, %s::jsonb)",
                 (automation, json.dumps({"section0": {"key0": {"value": "single"}}})))

    def one_batch() -> None:
        op = call(conn, editor, "select cfg.bulk_apply(%s, %s::jsonb, 'patch', %s::jsonb) as r",
                  (org, json.dumps({"ids": [str(i) for i in ids]}),
                   json.dumps({"set": {"section0.key0": "bulk"}, "batch_size": size})))[0]["r"]
        assert op["status"] == "completed" and op["succeeded"] == size, op["status"]

    single, single_seconds = written(single_calls)
    bulk, bulk_seconds = written(one_batch)
    print(f"bulk patch of {size} automations, one batch: {bulk} Realtime messages ({bulk / bulk_seconds:.0f}/s "
          f"over {bulk_seconds:.2f} s) vs as single calls {single} ({single / single_seconds:.0f}/s over "
          f"{single_seconds:.2f} s) -> ratio {bulk / single:.4f}x "
          "(target: the batch's message and bulk.completed, < 100/s)")


if __name__ == "__main__":
    main()
