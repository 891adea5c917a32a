"""Benchmarks for the dependency graph (issue 15). Each prints its figure, a baseline measured
in the same run on the same throwaway cluster, and the ratio.

(a) cfg.impact (no keys, newest versions) as an org member, in a graph of 10,000 automations
    and 50,000 edges, acyclic as saves keep it: 10 tiers of 1,000, each automation of tiers 1-9
    referencing 5 random ones of the tier below (45,000 edges), and 5,000 random ones of tiers
    2-9 also one of a tier two or more below (so automations are reached at several depths).
    p95 over 100 random automations, the call as a client sees it (JSON parsed): its first
    page (100 automations); target < 50 ms. Baseline: the whole radius as a bare recursive
    query (the set of dependents, no depth, paths, names or RLS) as the superuser.
    (a') A second figure: the whole radius listed, in pages of 1,000 following next_cursor.
(b) save_config of 50 entries of which 10 hold references (5 whole values, 5 inside strings),
    against the same save with none. Alternating rounds; target <= 1.2x.
(c) cfg.resolve_config of that 50-entry config with 10 references; target < 5 ms. Baseline:
    cfg.get_config of the same version.

Run: .venv/bin/python bench/bench_graph.py
"""

from __future__ import annotations

import itertools
import json
import random
import statistics
import time

import psycopg
from bench_versioning import call, paired_rates, timed_ms, user
from common import throwaway_database
from psycopg.rows import dict_row

TIERS, PER_TIER, OUT, SKIPS = 10, 1000, 5, 5000


def build_graph(conn, org) -> list:
    """10,000 automations with one version each and 50,000 edges, written as the DBA (their
    own triggers are not what is measured)."""
    conn.execute("set session_replication_role = replica")
    conn.execute("insert into cfg.automations (org_id, name, slug) "
                 "select %s, 'G' || i, 'g' || i from generate_series(0, %s) as i", (org, TIERS * PER_TIER - 1))
    conn.execute("insert into cfg.config_versions (org_id, automation_id, version, content, content_hash, kind, "
                 "author_role) select a.org_id, a.id, 1, '{\"sections\": {}}', md5(a.slug), 'save', 'postgres' "
                 "from cfg.automations a where a.org_id = %s and a.slug ~ '^g[0-9]+$'", (org,))
    ids = {r["slug"]: r["id"] for r in conn.execute(
        "select slug, id from cfg.automations where org_id = %s and slug ~ '^g[0-9]+$'", (org,))}
    versions = {r["automation_id"]: r["id"] for r in conn.execute(
        "select automation_id, id from cfg.config_versions where org_id = %s", (org,))}
    rng = random.Random(15)

    def node(tier: int, i: int):
        return ids[f"g{tier * PER_TIER + i}"]

    pairs = [(node(tier, i), node(tier - 1, j))
             for tier in range(1, TIERS) for i in range(PER_TIER) for j in rng.sample(range(PER_TIER), OUT)]
    # Edges that skip tiers: still downwards, so there is no cycle (a save would refuse one).
    for n in rng.sample(range(2 * PER_TIER, TIERS * PER_TIER), SKIPS):
        tier = n // PER_TIER
        pairs.append((node(tier, n % PER_TIER), node(rng.randrange(tier - 1), rng.randrange(PER_TIER))))
    with conn.cursor().copy("copy cfg.version_references (org_id, version_id, from_automation_id, to_org_id, "
                            "to_automation_id, version, to_section, to_key, kind, path, ref) from stdin") as copy:
        for me, to in pairs:
            copy.write_row((org, versions[me], me, org, to, 1, "main", "x", "value", "sections.main.entries.x.value",
                            "g/main.x"))
    conn.execute("set session_replication_role = origin")
    conn.execute("analyze")
    print(f"graph: {len(ids)} automations, {len(pairs)} edges")
    return list(ids.values())


def percentile(samples: list[float], p: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(len(samples) * p))]


def bench_impact(conn, member, org) -> None:
    automations = build_graph(conn, org)
    picks = random.Random(1).sample(automations, 100)
    figure, base, sizes, found, whole = [], [], [], [], []
    for a in picks:
        start = time.perf_counter()
        found.append(call(conn, member, "select cfg.impact(%s) as r", (a,))[0]["r"]["count"])
        figure.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        reached = conn.execute("""with recursive up (id) as (select %s::uuid union
                        select e.from_automation_id from up join cfg.version_references e on e.to_automation_id = up.id)
                        select count(*) from up""", (a,)).fetchone()["count"]
        base.append((time.perf_counter() - start) * 1000)
        sizes.append(reached - 1)
    p95, b95 = percentile(figure, 0.95), percentile(base, 0.95)
    print(f"(a) impact, 10,000 automations / 50,000 edges, radius median {statistics.median(sizes)} "
          f"(max {max(sizes)}), first page of 100 (found median {statistics.median(found)}): p95 {p95:.1f} ms "
          f"(median {statistics.median(figure):.1f} ms) vs bare recursive query p95 {b95:.1f} ms "
          f"-> ratio {p95 / b95:.2f}x (target p95 < 50 ms)")
    # A second figure, not the issue's: the whole radius listed, following next_cursor.
    for a, size in zip(picks, sizes, strict=True):
        start, cursor, listed = time.perf_counter(), None, 0
        while True:
            page = call(conn, member, "select cfg.impact(%s, max_rows => 1000, cursor => %s) as r", (a, cursor))[0]["r"]
            listed += len(page["automations"])
            if (cursor := page["next_cursor"]) is None:
                break
        whole.append((time.perf_counter() - start) * 1000)
        assert listed == size, (listed, size)
    w95 = percentile(whole, 0.95)
    print(f"(a') the whole radius listed in pages of 1,000: p95 {w95:.1f} ms "
          f"(median {statistics.median(whole):.1f} ms) vs bare recursive query p95 {b95:.1f} ms "
          f"-> ratio {w95 / b95:.2f}x")


def content(refs: bool, generation: int) -> dict:
    sections: dict = {}
    for i in range(50):
        entries = sections.setdefault(f"section{i % 5}", {"entries": {}})["entries"]
        if refs and i < 5:
            value: object = {"ref": f"upstream/http.key{i}"}
        elif refs and i < 10:
            value = f"${{ref:upstream/http.key{i}}}/v{generation}"
        else:
            value = {"n": i, "generation": generation, "name": f"value {i}"}
        entries[f"key{i}"] = {"value": value}
    return {"sections": sections}


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        admin = user(conn, "admin@example.test")
        org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        upstream = call(conn, admin, "select id from cfg.create_automation(%s, 'Upstream', 'upstream')",
                        (org,))[0]["id"]
        call(conn, admin, "select cfg.save_config(%s, 0, %s::jsonb)", (upstream, json.dumps(
            {"sections": {"http": {"entries": {f"key{i}": {"value": f"https://up.test/{i}"} for i in range(10)}}}})))
        with_refs = call(conn, admin, "select id from cfg.create_automation(%s, 'R', 'r')", (org,))[0]["id"]
        without = call(conn, admin, "select id from cfg.create_automation(%s, 'P', 'p')", (org,))[0]["id"]
        versions = {with_refs: 0, without: 0}
        generation = itertools.count(1)

        def saver(automation, refs):
            def run() -> None:
                call(conn, admin, "select cfg.save_config(%s, %s, %s::jsonb)",
                     (automation, versions[automation], json.dumps(content(refs, next(generation)))))
                versions[automation] += 1
            return run

        refs_rate, plain_rate, ratio = paired_rates(saver(with_refs, True), saver(without, False))
        print(f"(b) save_config, 50 entries, 10 with references: {1000 / refs_rate:.2f} ms vs none "
              f"{1000 / plain_rate:.2f} ms -> ratio {ratio:.2f}x (target <= 1.2x)")

        resolve = timed_ms(lambda: call(conn, admin, "select cfg.resolve_config(%s, 'dev')", (with_refs,)), 200)
        get = timed_ms(lambda: call(conn, admin, "select cfg.get_config(%s)", (with_refs,)), 200)
        print(f"(c) resolve_config, 50 entries, 10 references: {resolve:.2f} ms vs get_config {get:.2f} ms "
              f"-> ratio {resolve / get:.2f}x (target < 5 ms)")

        bench_impact(conn, admin, org)


if __name__ == "__main__":
    main()
