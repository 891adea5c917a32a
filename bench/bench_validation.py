"""Benchmarks for validation rules (issue 11). Each prints its figure, a baseline measured
in the same run on the same throwaway cluster, and the ratio.

(a) cfg.save_config of 50 entries (all changed) in an automation whose type has a
    50-property rule set (one content rule: every entry required with its type, plus an
    entry rule on one key), against the same save in an automation whose type has no rule.
    Target <= 1.25x. Alternating half-second rounds; the median of the per-round ratios.
(b) A rule's dry run (cfg.test_validation_rule) over 1,000 automations of a type, each
    deployed in dev. Target < 2 s. Baseline: cfg.validate_config of one automation, x1000.

The embedded stack's engine is python-jsonschema in plpython3u; a hosted project's
pg_jsonschema is Rust. Run: .venv/bin/python bench/bench_validation.py
"""

from __future__ import annotations

import json
import time

import psycopg
from bench_versioning import call, entries_content, paired_rates, user
from common import throwaway_database
from psycopg.rows import dict_row

AUTOMATIONS = 1000


def head(conn, automation_id) -> int:
    return conn.execute("select coalesce(max(version), 0) as v from cfg.config_versions where automation_id = %s",
                        (automation_id,)).fetchone()["v"]


def saver(conn, who, automation_id):
    generation = iter(range(1, 10**9))

    def save() -> None:
        body = json.dumps(entries_content(50, next(generation)))
        call(conn, who, "select cfg.save_config(%s, %s, %s::jsonb)", (automation_id, head(conn, automation_id), body))
    return save


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        admin = user(conn, "admin@example.test")
        org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        ruled = call(conn, admin, "select id from cfg.create_automation(%s, 'Ruled', 'ruled', 'api_gateway')",
                     (org,))[0]["id"]
        plain = call(conn, admin, "select id from cfg.create_automation(%s, 'Plain', 'plain', 'service')",
                     (org,))[0]["id"]
        gateway = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'api_gateway'",
                               (org,)).fetchone()["id"]
        sections: dict = {}
        for i in range(50):
            section = sections.setdefault(f"section{i % 5}", {"type": "object", "required": [], "properties": {}})
            section["required"].append(f"key{i}")
            section["properties"][f"key{i}"] = {"type": "object", "required": ["n", "name"],
                                                "properties": {"n": {"type": "integer", "minimum": 0}}}
        rule_set = {"type": "object", "required": sorted(sections), "properties": sections}
        call(conn, admin, "select cfg.add_validation_rule(%s, %s::jsonb)",
             (gateway, json.dumps({"name": "all 50", "scope": "content", "schema": rule_set})))
        call(conn, admin, "select cfg.add_validation_rule(%s, %s::jsonb)",
             (gateway, json.dumps({"name": "key0", "section": "section0", "key": "key0", "required": True,
                                   "schema": {"type": "object", "properties": {"name": {"type": "string"}}}})))
        ruled_rate, plain_rate, ratio = paired_rates(saver(conn, admin, ruled), saver(conn, admin, plain))
        print(f"(a) save_config, 50 entries, 50-property rule set: {1000 / ruled_rate:.2f} ms vs no rules "
              f"{1000 / plain_rate:.2f} ms -> ratio {ratio:.2f}x (target <= 1.25x)")

        # (b) 1,000 automations of a type, each with a version in dev.
        body = json.dumps(entries_content(10, 1))
        made = call(conn, admin, "select (cfg.create_automation(%s, 'W' || i, 'w-' || i, 'worker')).id "
                                 "from generate_series(1, %s) as i", (org, AUTOMATIONS))
        ids = [r["id"] for r in made]
        for automation_id in ids:
            call(conn, admin, "select cfg.save_config(%s, 0, %s::jsonb)", (automation_id, body))
        worker = conn.execute("select id from cfg.automation_types where org_id = %s and slug = 'worker'",
                              (org,)).fetchone()["id"]
        definition = json.dumps({"name": "n is small", "section": "section0", "key": "key0",
                                 "schema": {"type": "object", "properties": {"n": {"maximum": -1}}}})
        start = time.perf_counter()
        found = call(conn, admin, "select * from cfg.test_validation_rule(%s, %s::jsonb)", (worker, definition))
        dry_run = time.perf_counter() - start
        start = time.perf_counter()
        for automation_id in ids:
            call(conn, admin, "select cfg.validate_config(%s, 'dev')", (automation_id,))
        one_by_one = time.perf_counter() - start
        assert len(found) == AUTOMATIONS, len(found)
        print(f"(b) rule dry run over {AUTOMATIONS} automations: {dry_run:.2f} s ({len(found)} findings) vs "
              f"validate_config one by one {one_by_one:.2f} s -> ratio {dry_run / one_by_one:.2f}x (target < 2 s)")


if __name__ == "__main__":
    main()
