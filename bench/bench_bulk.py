"""Benchmarks for bulk operations (issue 12, (a) and (b)). Each prints its figure, a
baseline measured in the same run on the same throwaway cluster, and the ratio. 5,000
automations in one org; the editor acts as PostgREST would.

(a) cfg.bulk_apply tag of 5,000 automations, one batch (batch_size 5000) and in the
    default batches of 500 driven to the end by cfg.bulk_continue (10 transactions).
    Target < 1 s. Baseline: the same change as one `update cfg.automations set tags = …
    where id = any(…)` by the service.
(b) cfg.bulk_apply status change of the same, against one `update cfg.automations set
    status = … where id = any(…)` by the service (same row triggers: audit, events).
    Target <= 2x. Alternating rounds; the median of the per-round ratios.

Run: .venv/bin/python bench/bench_bulk.py
"""

from __future__ import annotations

import json
import statistics
import time

import psycopg
from bench_versioning import call, user
from common import report, throwaway_database
from psycopg.rows import dict_row

from sync_service.db import SERVICE

COUNT = 5000
ROUNDS = 3


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        admin = user(conn, "admin@example.test")
        org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        ids = [r["id"] for r in conn.execute(
            "insert into cfg.automations (org_id, name, slug) select %s, 'A ' || n, 'a-' || n "
            "from generate_series(1, %s) n returning id", (org, COUNT))]
        conn.execute("vacuum analyze cfg.automations")
        selection = json.dumps({"ids": [str(i) for i in ids]})

        def bulk(action: str, options: dict) -> dict:
            op = call(conn, admin, "select cfg.bulk_apply(%s, %s::jsonb, %s, %s::jsonb) as r",
                      (org, selection, action, json.dumps(options)))[0]["r"]
            while op["status"] == "running":
                op = call(conn, admin, "select cfg.bulk_continue(%s) as r", (op["id"],))[0]["r"]
            assert op["status"] == "completed" and op["succeeded"] == COUNT, {k: op[k] for k in op if k != "items"}
            return op

        def service(sql: str) -> None:
            call(conn, SERVICE, sql, (ids,))

        untag = "update cfg.automations set tags = array_remove(tags, 'bulk') where id = any(%s)"
        tag_one, tag_batches, tag_base = [], [], []
        for _ in range(ROUNDS):
            tag_one.append(seconds(lambda: bulk("tag", {"tags": ["bulk"], "batch_size": COUNT})))
            service(untag)
            tag_batches.append(seconds(lambda: bulk("tag", {"tags": ["bulk"]})))
            service(untag)
            tag_base.append(seconds(lambda: service(
                "update cfg.automations set tags = tags || '{bulk}' where id = any(%s)")))
            service(untag)
        base = statistics.median(tag_base)
        report("(a) bulk tag of 5,000, one batch", statistics.median(tag_one), base, "s", "< 1 s")
        report("(a) bulk tag of 5,000, batches of 500", statistics.median(tag_batches), base, "s", "< 1 s")

        ratios_one, ratios_batches, one, batches, bases = [], [], [], [], []
        for _ in range(ROUNDS):
            one.append(seconds(lambda: bulk("status", {"status": "paused", "batch_size": COUNT})))
            bases.append(seconds(lambda: service("update cfg.automations set status = 'active' where id = any(%s)")))
            batches.append(seconds(lambda: bulk("status", {"status": "paused"})))
            service("update cfg.automations set status = 'active' where id = any(%s)")
            ratios_one.append(one[-1] / bases[-1])
            ratios_batches.append(batches[-1] / bases[-1])
        base = statistics.median(bases)
        report("(b) bulk status of 5,000, one batch", statistics.median(one), base, "s", "<= 2x")
        print(f"    median of per-round ratios: {statistics.median(ratios_one):.2f}x")
        report("(b) bulk status of 5,000, batches of 500", statistics.median(batches), base, "s", "<= 2x")
        print(f"    median of per-round ratios: {statistics.median(ratios_batches):.2f}x")


if __name__ == "__main__":
    main()
