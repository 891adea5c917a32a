"""Benchmark for schedules (issue 16, item 7). It prints each figure, a baseline measured in
the same run on the same throwaway cluster, and the ratio.

(a) A tick with nothing due while 100,000 occurrences are pending (in the future), against
    a tick with no occurrence at all. Target < 5 ms.
(b) A tick applying 1,000 due patches (1,000 one-off schedules of one automation, a key
    each), against 1,000 direct cfg.patch_config calls of the same keys by the same
    editor in one transaction on another automation. Target <= 1.3x. Two rounds; the
    median of the per-round ratios.

Run: .venv/bin/python bench/bench_schedules.py
"""

from __future__ import annotations

import json
import statistics
import time

import psycopg
from bench_versioning import call, user
from common import report, throwaway_database
from psycopg.rows import dict_row

from sync_service.db import act_as

FAR = "2031-01-01T00:00"
ROUNDS = 2  # each builds 1,000 schedules: minutes on a shared machine


def tick(conn, at: str) -> dict:
    return conn.execute("select cfg_private.run_schedules(%s) as r", (at,)).fetchone()["r"]


def idle_tick(conn) -> float:
    """Seconds a tick with nothing due takes in the database (what pg_cron pays): the median
    of 20 batches of 50 ticks, timed inside the server so the client's round trips are out."""
    seen: list[float] = []
    conn.add_notice_handler(lambda notice: seen.append(float(notice.message_primary)))
    for _ in range(20):
        conn.execute("do $$ declare t timestamptz := clock_timestamp(); begin "
                     "for i in 1..50 loop perform cfg_private.run_schedules('2026-01-01T00:00Z'); end loop; "
                     "raise notice '%', extract(epoch from clock_timestamp() - t) / 50; end $$")
        conn.rollback()
    return statistics.median(seen)


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row) as conn:
        admin = user(conn, "admin@example.test")
        org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        baseline_a = idle_tick(conn)
        a = call(conn, admin, "select id from cfg.create_automation(%s, 'A', 'a')", (org,))[0]["id"]
        call(conn, admin, "select cfg.add_schedule(%s, '{\"action\": \"status\", \"status\": \"paused\"}', "
                          "cron => '* * * * *')", (a,))
        # 100,000 pending minutes ahead, as the worker would write them.
        conn.execute("insert into cfg.schedule_occurrences (org_id, schedule_id, automation_id, due_at, phase) "
                     "select s.org_id, s.id, s.automation_id, timestamptz '2030-01-01' + make_interval(mins => i), "
                     "'apply' from cfg.schedules as s, generate_series(1, 100000) as i")
        conn.execute("analyze cfg.schedule_occurrences")
        conn.commit()
        report("(a) tick, nothing due, 100,000 pending", idle_tick(conn) * 1000, baseline_a * 1000, "ms",
               "< 5 ms; baseline: no occurrence at all")
        conn.execute("delete from cfg.schedule_occurrences")
        conn.commit()

        ratios, ticks, directs = [], [], []
        for round_ in range(ROUNDS):
            scheduled, direct = (call(conn, admin, "select id from cfg.create_automation(%s, %s, %s)",
                                      (org, name, f"{name}-{round_}"))[0]["id"] for name in ("s", "d"))
            with conn.transaction(), conn.cursor() as cur:
                act_as(cur, admin)
                cur.execute("select count(cfg.add_schedule(%s, jsonb_build_object('action', 'patch', 'set', "
                            "jsonb_build_object('keys', jsonb_build_object('k' || i, "
                            "jsonb_build_object('value', i)))), at => %s)) from generate_series(1, 1000) as i",
                            (scheduled, FAR))
            start = time.perf_counter()
            result = tick(conn, f"{FAR}:30Z")
            conn.commit()
            ticks.append(time.perf_counter() - start)
            assert result["applied"] == 1000, result
            start = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                act_as(cur, admin)
                for i in range(1, 1001):
                    cur.execute("select cfg.patch_config(%s, set => %s::jsonb)",
                                (direct, json.dumps({"keys": {f"k{i}": {"value": i}}})))
            directs.append(time.perf_counter() - start)
            ratios.append(ticks[-1] / directs[-1])
        print(f"(b) tick applying 1,000 due patches: {statistics.median(ticks) * 1000:.0f} ms vs 1,000 direct "
              f"patch_config calls {statistics.median(directs) * 1000:.0f} ms -> "
              f"ratio {statistics.median(ratios):.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
