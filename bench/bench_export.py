"""Benchmarks for export and import (issue 12, (c) and (d)). Each prints its figure, a
baseline measured in the same run on the same throwaway cluster, and the ratio.

(c) cfg.export_automations of 1,000 automations x 50 entries (one call, the document
    fetched), against a plain select of the same automations' latest version contents as
    the service. Target < 2 s.
(d) cfg.import_automations dry run of that document into an empty org (1,000 creates,
    each written through the save path and undone), against what it stands for: the same
    1,000 cfg.create_automation + cfg.save_config calls in one transaction, rolled back.
    Target < 5 s. Also printed: the dry run back into the source org (1,000 unchanged).

Median of 3 runs each (the by-hand baseline of (d), ~40 s, once). Run: .venv/bin/python bench/bench_export.py
"""

from __future__ import annotations

import json
import time

import psycopg
from bench_versioning import call, entries_content, user
from common import median_seconds, report, throwaway_database
from psycopg.rows import dict_row

from sync_service.db import SERVICE, act_as

AUTOMATIONS, ENTRIES = 1000, 50


def document() -> dict:
    return {"format": "cfgctl.export", "format_version": 1, "org": "elsewhere", "env": None,
            "secret_values": False, "left_out": [], "automations": [
                {"slug": f"auto-{i:04d}", "name": f"Automation {i}", "description": "", "type": "service",
                 "status": "active", "tags": ["bench"], "origin": None, "version": 1,
                 "content": entries_content(ENTRIES, i)} for i in range(AUTOMATIONS)]}


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        admin = user(conn, "admin@example.test")
        org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        empty = call(conn, admin, "select id from cfg.create_org('Empty', 'empty')")[0]["id"]
        start = time.perf_counter()
        seeded = call(conn, admin, "select cfg.import_automations(%s, %s::jsonb, false) as r",
                      (org, json.dumps(document())))[0]["r"]
        assert seeded["summary"]["create"] == AUTOMATIONS, seeded["summary"]
        print(f"(setup) import of {AUTOMATIONS} x {ENTRIES} entries, for real: {time.perf_counter() - start:.2f} s")
        everything = json.dumps({"where": {}})
        exported = {}

        def export() -> None:
            exported["doc"] = call(conn, admin, "select cfg.export_automations(%s, %s::jsonb) as r",
                                   (org, everything))[0]["r"]

        def plain_select() -> None:
            rows = call(conn, SERVICE, "select a.slug, v.content from cfg.automations as a"
                                       " join cfg.config_versions as v on v.automation_id = a.id"
                                       " where a.org_id = %s order by a.slug", (org,))
            assert len(rows) == AUTOMATIONS

        export_s, select_s = median_seconds(export, 3, warmup=1), median_seconds(plain_select, 3, warmup=1)
        assert len(exported["doc"]["automations"]) == AUTOMATIONS
        report(f"(c) export of {AUTOMATIONS} x {ENTRIES} entries", export_s, select_s, "s",
               "< 2 s; baseline: a plain select of the same contents as the service")

        text = json.dumps(exported["doc"])
        contents = [(a["slug"], json.dumps(a["content"])) for a in exported["doc"]["automations"]]

        def dry_run(into) -> None:
            result = call(conn, admin, "select cfg.import_automations(%s, %s::jsonb) as r", (into, text))[0]["r"]
            assert result["summary"]["refused"] == 0, result["summary"]

        def by_hand() -> None:
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                act_as(cur, admin)
                for slug, body in contents:
                    cur.execute("select (cfg.create_automation(%s, 'S', %s)).id as id", (empty, slug))
                    cur.execute("select cfg.save_config(%s, 0, %s::jsonb)", (cur.fetchone()["id"], body))

        import_s = median_seconds(lambda: dry_run(empty), 3, warmup=1)
        hand_s = median_seconds(by_hand, 1, warmup=0)  # ~40 s a run: once
        report(f"(d) import dry run of {AUTOMATIONS} x {ENTRIES} entries into an empty org", import_s, hand_s, "s",
               "< 5 s; baseline: create_automation + save_config of each, one transaction, rolled back")
        same_s = median_seconds(lambda: dry_run(org), 3, warmup=1)
        print(f"(d') import dry run back into the source org (all unchanged): {same_s:.2f} s")


if __name__ == "__main__":
    main()
