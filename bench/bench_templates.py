"""Benchmark for templates (issue 11, (c)). It prints its figure, a baseline measured in the
same run on the same throwaway cluster, and the ratio.

(c) cfg.create_automation_from_template of a 50-entry template with 10 placeholders (every
    non-secret type, whole values and ${...} inside strings), against what it replaces:
    cfg.create_automation + cfg.save_config of the same (filled) content, in one
    transaction. Target <= 1.2x. Alternating half-second rounds; the median of the
    per-round ratios.

Run: .venv/bin/python bench/bench_templates.py
"""

from __future__ import annotations

import itertools
import json

import psycopg
from bench_versioning import call, paired_rates, user
from common import throwaway_database
from psycopg.rows import dict_row

from sync_service.db import act_as

PLACEHOLDERS = [
    {"name": f"s{i}", "type": "string", "default": f"text {i}"} for i in range(3)
] + [
    {"name": f"n{i}", "type": "number", "default": i} for i in range(3)
] + [
    {"name": "flag", "type": "boolean", "default": True},
    {"name": "tier", "type": "enum", "options": ["free", "pro"], "default": "free"},
    {"name": "url", "type": "url", "default": "https://example.com/hook"},
    {"name": "host", "type": "string", "required": True},
]
WHOLE = ["s0", "s1", "s2", "n0", "n1", "n2", "flag", "tier", "url"]
VALUES = {"host": "billing.internal", "n1": "42", "tier": "pro"}


def template_content() -> dict:
    sections: dict = {}
    for i in range(50):
        entries = sections.setdefault(f"section{i % 5}", {"entries": {}})["entries"]
        if i < len(WHOLE):
            entries[f"key{i}"] = {"value": {"$placeholder": WHOLE[i]}}
        elif i < 20:
            entries[f"key{i}"] = {"value": f"https://${{host}}:${{n{i % 3}}}/v{i}"}
        else:
            entries[f"key{i}"] = {"value": {"n": i, "name": f"value {i}"}}
    return {"sections": sections}


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        admin = user(conn, "admin@example.test")
        org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        template = call(conn, admin, "select id from cfg.add_template(%s, 'service', 'std', 'Std', %s::jsonb, "
                                     "%s::jsonb)", (org, json.dumps(template_content()), json.dumps(PLACEHOLDERS)))
        template = template[0]["id"]
        # The baseline saves exactly what the template makes.
        first = call(conn, admin, "select cfg.create_automation_from_template(%s, %s, 'First', 'first', %s::jsonb) "
                                  "as r", (org, template, json.dumps(VALUES)))[0]["r"]
        filled = json.dumps(call(conn, admin, "select cfg.get_config(%s) as c",
                                 (first["automation"]["id"],))[0]["c"]["content"])
        numbers = itertools.count()

        def from_template() -> None:
            call(conn, admin, "select cfg.create_automation_from_template(%s, %s, 'T', %s, %s::jsonb)",
                 (org, template, f"t-{next(numbers)}", json.dumps(VALUES)))

        def create_and_save() -> None:
            with conn.transaction(), conn.cursor() as cur:
                act_as(cur, admin)
                cur.execute("select (cfg.create_automation(%s, 'S', %s)).id as id", (org, f"s-{next(numbers)}"))
                cur.execute("select cfg.save_config(%s, 0, %s::jsonb)", (cur.fetchone()["id"], filled))

        template_rate, baseline_rate, ratio = paired_rates(from_template, create_and_save)
        print(f"(c) create from template, 50 entries, 10 placeholders: {1000 / template_rate:.2f} ms vs "
              f"create_automation + save_config {1000 / baseline_rate:.2f} ms -> ratio {ratio:.2f}x "
              f"(target <= 1.2x)")


if __name__ == "__main__":
    main()
