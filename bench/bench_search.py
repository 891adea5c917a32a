"""Benchmarks for search (issue 13). Each prints its figure, a baseline measured in the same
run on the same throwaway cluster, and the ratio.

(a) cfg.search over 1M entries in 100 orgs (1,000 automations x 10 entries each, words
    shared across orgs, a URL per automation), as a member of one org, p95 of a mix of
    queries (common words, rare words, phrases, URL substrings). Target p95 < 30 ms, once
    vacuum has run; also printed right after the bulk load. Baseline: the same queries
    with the same org_id as service_role (no RLS).
(b) cfg.quick_find over 100k automations (in the same orgs), p95 of prefixes and typos.
    Target p95 < 10 ms. Baseline: an exact slug lookup (find_automation).
(c) cfg.save_config of 50 entries (all changed) with the search indexes kept current,
    against the same save in a copy of the database without them. Target <= 1.2x.
    Alternating half-second rounds; the median of the per-round ratios. The entries' terms
    are written by the pg_cron job from the queue the save fills (docs/search.md): the
    job's time per save is printed too.

The data of (a) and (b) is loaded as the superuser with triggers off (no versions, no
audit: only the live tables and their indexes matter here), ten minutes on a 2-core machine.
Run: .venv/bin/python bench/bench_search.py [save] [search]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import psycopg
from bench_versioning import call, entries_content, paired_rates, user
from common import throwaway_database
from psycopg.rows import dict_row

from sync_service.db import SERVICE

ORGS, AUTOMATIONS, ENTRIES = 100, 1000, 10
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
QUERIES = ["timeout", "bravo", '"charlie delta"', "hotel -india", "svc-42.internal.example.com/v1",
           "internal.example.com/v1/orders", "retries", "juliet or golf", "zulu", "17"]
FINDS = ["svc-4", "svc-123", "servce-77", "paymnt", "worker 9", "svc-999", "ky7"]


def p95(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.95) - 1]


def load(conn) -> tuple:
    conn.execute("set session_replication_role = replica")  # bulk load: no triggers
    conn.execute("""
        insert into cfg.orgs (id, name, slug)
        select gen_random_uuid(), 'Org ' || o, 'org-' || o from generate_series(1, %s) as o""", (ORGS,))
    conn.execute("insert into cfg.automation_types (org_id, slug, name) "
                 "select o.id, 'service', 'Service' from cfg.orgs as o on conflict do nothing")
    conn.execute("""
        insert into cfg.automations (id, org_id, name, slug, type, tags)
        select gen_random_uuid(), o.id, 'Service ' || a, 'svc-' || a, 'service', array['t' || (a %% 7)]
        from cfg.orgs as o cross join generate_series(1, %s) as a""", (AUTOMATIONS,))
    conn.execute("""
        insert into cfg.config_sections (id, org_id, automation_id, name)
        select gen_random_uuid(), a.org_id, a.id, 'main' from cfg.automations as a where a.slug like 'svc-%%'""")
    conn.execute("""
        insert into cfg.config_entries (org_id, automation_id, section_id, key, value)
        select s.org_id, s.automation_id, s.id, 'key' || e,
            case when e = 1 then to_jsonb('https://' || a.slug || '.internal.example.com/v1/orders')
                 when e %% 10 = 0 then to_jsonb(e)
                 when e = 2 then jsonb_build_object('retries', e, 'mode', %s::text[])
                 else to_jsonb((%s::text[])[1 + (e * 7 + length(a.slug)) %% 10] || ' ' ||
                               (%s::text[])[1 + (e * 3) %% 10] || ' value ' || e) end
        from cfg.config_sections as s
        join cfg.automations as a on a.id = s.automation_id
        cross join generate_series(1, %s) as e
        where s.name = 'main'
        order by s.automation_id, e""", (WORDS[:2], WORDS, WORDS, ENTRIES))  # an automation's entries: saved together
    conn.execute("set session_replication_role = origin")
    # What the search index job would have written for these entries (the queue is empty),
    # then one run of the job (it merges the GIN indexes' pending lists, filled by the load).
    conn.execute("select cfg_private.index_entries(array(select id from cfg.config_entries))")
    conn.execute("select cfg_private.index_search_queue()")
    conn.execute("analyze")
    org = conn.execute("select id from cfg.orgs where slug = 'org-42'").fetchone()["id"]
    member = user(conn, "member@example.test")
    conn.execute("insert into cfg.org_members (org_id, user_id, role) values (%s, %s, 'viewer')",
                 (org, member.user_id))
    conn.commit()
    return org, member


def timed(conn, who, sql, params) -> float:
    start = time.perf_counter()
    call(conn, who, sql, params)
    return (time.perf_counter() - start) * 1000


def bench_search(conn, org, member, when: str) -> None:
    mine, service = [], []
    by_query: dict[str, list[float]] = {query: [] for query in QUERIES}
    for _ in range(10):
        for query in QUERIES:
            sql = "select cfg.search(%s, %s)"
            mine.append(timed(conn, member, sql, (query, org)))
            by_query[query].append(mine[-1])
            service.append(timed(conn, SERVICE, sql, (query, org)))
    print(f"(a) search, 1M entries in 100 orgs, as a member, {when}: p95 {p95(mine):.2f} ms (p50 "
          f"{statistics.median(mine):.2f}) vs service_role p95 {p95(service):.2f} ms -> ratio "
          f"{p95(mine) / p95(service):.2f}x (target p95 < 30 ms)")
    medians = (f"{query} {statistics.median(ms):.1f}" for query, ms in by_query.items())
    print("    median per query: " + ", ".join(medians))


def bench_quick_find(conn, member) -> None:
    orgs = [r["id"] for r in conn.execute("select id from cfg.orgs").fetchall()]
    for org in orgs:  # the member in every org: quick find over all 100k automations they may read
        conn.execute("insert into cfg.org_members (org_id, user_id, role) values (%s, %s, 'viewer') "
                     "on conflict do nothing", (org, member.user_id))
    conn.commit()
    finds, exact = [], []
    for _ in range(10):
        for text in FINDS:
            finds.append(timed(conn, member, "select * from cfg.quick_find(%s)", (text,)))
            exact.append(timed(conn, member, "select * from cfg.find_automation('org-42/svc-42')", ()))
    print(f"(b) quick_find over {ORGS * AUTOMATIONS:,} automations: p95 {p95(finds):.2f} ms (p50 "
          f"{statistics.median(finds):.2f}) vs an exact find_automation p95 {p95(exact):.2f} ms -> ratio "
          f"{p95(finds) / p95(exact):.2f}x (target p95 < 10 ms)")


def bench_save(url: str) -> None:
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        conn.execute("drop database if exists unindexed")
        conn.execute("create database unindexed")
    plain_url = url.rsplit("/", 1)[0] + "/unindexed"
    from sync_service import local_stack
    local_stack.provision(plain_url, seed=False)
    with psycopg.connect(plain_url, autocommit=True) as plain:
        for index in ("config_sections_search_idx",
                      "automations_search_idx", "automations_quick_find_idx", "config_sections_quick_find_idx"):
            plain.execute(f"drop index cfg.{index}")
        plain.execute("drop trigger index_for_search on cfg.deployments")
        # What indexing adds to a save: the queue triggers, the queue and the indexed terms.
        plain.execute("drop trigger queue_inserted_for_search on cfg.config_entries")
        plain.execute("drop trigger queue_updated_for_search on cfg.config_entries")
        plain.execute("drop table cfg_private.search_queue, cfg_private.entry_search")
    savers = []
    for target in (url, plain_url):
        conn = psycopg.connect(target, row_factory=dict_row, autocommit=True)
        editor = user(conn, "saver@example.test")
        org = call(conn, editor, "select id from cfg.create_org('Saves', 'saves')")[0]["id"]
        automation = call(conn, editor, "select id from cfg.create_automation(%s, 'S', 's')", (org,))[0]["id"]
        savers.append(saver(conn, editor, automation))
    indexed, unindexed, ratio = paired_rates(savers[0], savers[1])
    print(f"(c) save_config, 50 entries, with the search indexes: {1000 / indexed:.2f} ms vs without "
          f"{1000 / unindexed:.2f} ms -> ratio {ratio:.2f}x (target <= 1.2x)")
    # What a save leaves to the index job (pg_cron, another backend): the job after each save.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select cfg_private.index_search_queue()")
        job_ms, indexed_entries = 0.0, 0
        for _ in range(20):
            savers[0]()
            start = time.perf_counter()
            indexed_entries += conn.execute("select cfg_private.index_search_queue()").fetchone()[0]
            job_ms += (time.perf_counter() - start) * 1000
    print(f"    then the index job, off the save path: {job_ms / 20:.2f} ms per save "
          f"({indexed_entries} entries indexed after 20 saves)")


def saver(conn, who, automation_id):
    generation = iter(range(1, 10**9))
    version = [0]

    def save() -> None:
        body = json.dumps(entries_content(50, next(generation)))
        version[0] = call(conn, who, "select (cfg.save_config(%s, %s, %s::jsonb)) ->> 'version' as v",
                          (automation_id, version[0], body))[0]["v"]
    return save


def main() -> None:
    parts = sys.argv[1:] or ["save", "search"]  # `save`: (c) only, a minute instead of ten
    with throwaway_database() as url:
        if "save" in parts:
            bench_save(url)
        if "search" not in parts:
            return
        with psycopg.connect(url, row_factory=dict_row) as conn:
            start = time.perf_counter()
            org, member = load(conn)
            print(f"loaded {ORGS * AUTOMATIONS * ENTRIES:,} entries in {time.perf_counter() - start:.0f} s")
            conn.autocommit = True
            # Right after a bulk load, before vacuum (hint bits, visibility map): shown for
            # information. The target figure is taken once vacuum has run, as autovacuum
            # does within a minute of such a load on any live database.
            bench_search(conn, org, member, "right after the bulk load")
            start = time.perf_counter()
            conn.execute("vacuum analyze")
            print(f"    vacuum analyze after the load: {time.perf_counter() - start:.0f} s")
            bench_search(conn, org, member, "vacuumed")
            bench_quick_find(conn, member)


if __name__ == "__main__":
    main()
