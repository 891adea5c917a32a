"""Benchmarks for versioning (issue 3, part 9). Each prints its figure, a baseline
measured in the same run on the same throwaway cluster, and the ratio.

(a) cfg.save_config of a 50-entry config (every value changed, as an editor, the way
    PostgREST calls it) against a plain multi-row insert of the same 50 rows into a
    table shaped like cfg.config_entries (its columns, defaults, checks, indexes and
    foreign key: how the rows are stored) without triggers, RLS or versioning. The
    ratio is then what save_config's work costs (validation, lock, diff, version,
    audit, dev deployment, event). Target ratio <= 2. Also printed: the same against a
    bare table with only a primary key and (section_id, key), a new 50-entry config
    (all inserts), a save changing one value, and the 50 rows inserted into
    cfg.config_entries as the editor through the foundation's RLS and triggers.
    Rates come from alternating half-second rounds; the ratio is the median of the
    per-round ratios, so both sides see the same load on a shared machine.
(b) cfg.diff_versions of two 1,000-entry versions (300 changed, 50 removed, 50 added,
    10 secrets rotated). Target < 20 ms. Baseline: reading the two snapshots.
(c) First page (50 rows) of cfg.config_history at 10,000 versions of one automation.
    Target < 20 ms. Baseline: the same call on an automation with 10 versions.

The cluster is the test suite's fast mode (fsync off): the figures measure the work
the database does, not the disk. Run: .venv/bin/python bench/bench_versioning.py
"""

from __future__ import annotations

import json
import statistics
import time

import psycopg
from common import throwaway_database
from psycopg.rows import dict_row

from sync_service.db import Identity, act_as


def user(conn, email: str) -> Identity:
    row = conn.execute("insert into auth.users (email, email_confirmed_at) values (%s, now()) returning id",
                       (email,)).fetchone()
    conn.commit()
    return Identity(role="authenticated", user_id=row["id"], email=email)


def call(conn, who: Identity, sql: str, params=()):
    with conn.transaction(), conn.cursor() as cur:
        act_as(cur, who)
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None


def entries_content(n: int, generation: int, secrets: int = 0, prefix: str = "key") -> dict:
    sections: dict = {}
    for i in range(n):
        section = sections.setdefault(f"section{i % 5}", {"entries": {}})
        if i < secrets:
            section["entries"][f"{prefix}{i}"] = {"value": f"secret-{i}-{generation}", "secret": True}
        else:
            section["entries"][f"{prefix}{i}"] = {"value": {"n": i, "generation": generation, "name": f"value {i}"}}
    return {"sections": sections}


def rate(fn, seconds: float) -> float:
    """Operations per second of fn over about `seconds`."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def paired_rates(fn, baseline, rounds: int = 12, seconds: float = 0.5) -> tuple[float, float, float]:
    """Rates of fn and baseline measured in alternating short rounds, so both see the
    same machine load (a shared VM drifts by tens of percent over seconds), and the
    median of the per-round ratios baseline/fn (how many times slower fn is)."""
    fn_rates, base_rates = [], []
    for _ in range(rounds):
        fn_rates.append(rate(fn, seconds))
        base_rates.append(rate(baseline, seconds))
    ratio = statistics.median(b / f for f, b in zip(fn_rates, base_rates, strict=True))
    return statistics.median(fn_rates), statistics.median(base_rates), ratio


def timed_ms(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def bench_save(conn, editor: Identity, automation_id, section_id, org_id) -> None:
    generation = iter(range(1, 10**9))
    version = [1]

    def save_once():
        body = json.dumps(entries_content(50, next(generation), secrets=2))
        result = call(conn, editor, "select cfg.save_config(%s, %s, %s::jsonb) as r",
                      (automation_id, version[0], body))[0]["r"]
        version[0] = result["version"]

    def plain_insert(table: str):
        def insert_once():
            g = next(generation)
            values = [json.dumps({"n": i, "generation": g, "name": f"value {i}"}) for i in range(50)]
            with conn.transaction():
                conn.execute(
                    f"insert into bench.{table} (org_id, automation_id, section_id, key, value) "  # noqa: S608
                    "select %s, %s, %s, 'key' || t.i || '-' || %s::text, t.v "
                    "from unnest(%s::jsonb[]) with ordinality as t (v, i)",
                    (org_id, automation_id, section_id, g, values),
                )
        return insert_once

    insert_once = plain_insert("plain_entries")
    shaped_insert_once = plain_insert("shaped_entries")

    save_once()
    insert_once()  # warm up
    shaped_insert_once()
    save_rate, shaped_rate, ratio = paired_rates(save_once, shaped_insert_once)
    print(f"(a) save_config, 50 entries (all changed): {save_rate:,.0f} saves/s; baseline plain insert of the "
          f"same 50 rows into a table shaped like cfg.config_entries (its indexes, checks and foreign key; no "
          f"triggers, RLS or versioning): {shaped_rate:,.0f} inserts/s; ratio {ratio:.2f}x slower (target <= 2x)")
    save_rate, insert_rate, ratio = paired_rates(save_once, insert_once)
    print(f"    against a bare table (primary key and (section_id, key) only): {save_rate:,.0f} saves/s vs "
          f"{insert_rate:,.0f} inserts/s; ratio {ratio:.2f}x")

    # The common edit: one of the 50 values changes.
    base = entries_content(50, 0, secrets=2)

    def save_one_key():
        body = json.loads(json.dumps(base))
        body["sections"]["section1"]["entries"]["key1"]["value"] = next(generation)
        result = call(conn, editor, "select cfg.save_config(%s, %s, %s::jsonb) as r",
                      (automation_id, version[0], json.dumps(body)))[0]["r"]
        version[0] = result["version"]

    one_key, shaped_rate, ratio = paired_rates(save_one_key, shaped_insert_once)
    print(f"    save_config, 50 entries (one changed): {one_key:,.0f} saves/s vs {shaped_rate:,.0f} shaped "
          f"inserts/s; ratio {ratio:.2f}x")

    # A new 50-entry config saved into an empty automation: every row is an insert.
    # Last: the ~2,000 new configs grow the tables a thousandfold.
    empty = iter(r["id"] for r in conn.execute(
        "insert into cfg.automations (org_id, name, slug) select %s, 'new ' || g, 'new-' || g "
        "from generate_series(1, 8000) as g returning id",
        (org_id,),
    ).fetchall())
    conn.commit()

    def save_new():
        body = json.dumps(entries_content(50, next(generation), secrets=2))
        call(conn, editor, "select cfg.save_config(%s, 0, %s::jsonb)", (next(empty), body))

    new_rate, shaped_rate, ratio = paired_rates(save_new, shaped_insert_once)
    print(f"    save_config of a new 50-entry config (all inserts): {new_rate:,.0f} saves/s vs "
          f"{shaped_rate:,.0f} shaped inserts/s; ratio {ratio:.2f}x")

    # Second baseline: the same 50 rows inserted into cfg.config_entries as the editor,
    # through RLS and the foundation's triggers (touch, secret diversion, per-row audit),
    # with versioning's own trigger switched off: what writing config cost before versioning.
    foundation_section = conn.execute(
        "insert into cfg.config_sections (org_id, automation_id, name) values (%s, %s, 'foundation') returning id",
        (org_id, automation_id),
    ).fetchone()["id"]
    conn.execute("alter table cfg.config_entries disable trigger version_direct_write")
    conn.commit()

    def insert_foundation_once():
        g = next(generation)
        values = [json.dumps({"n": i, "generation": g, "name": f"value {i}"}) for i in range(50)]
        call(conn, editor,
             "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
             "select %s, %s, %s, 'key' || t.i || '-' || %s::text, t.v "
             "from unnest(%s::jsonb[]) with ordinality as t (v, i)",
             (org_id, automation_id, foundation_section, g, values))

    try:
        foundation = statistics.median([rate(insert_foundation_once, 2.0) for _ in range(2)])
    finally:
        conn.execute("alter table cfg.config_entries enable trigger version_direct_write")
        conn.commit()
    print(f"    baseline 2: the same 50 rows into cfg.config_entries as the editor (RLS, foundation triggers, "
          f"per-row audit, no versioning): {foundation:,.0f} inserts/s; ratio of save_config (all changed) "
          f"to it: {foundation / save_rate:.2f}x the time")


def bench_diff(conn, editor: Identity, viewer: Identity, automation_id) -> None:
    first = entries_content(1000, 1, secrets=10)
    second = json.loads(json.dumps(first))
    keys = [(s, k) for s, sec in second["sections"].items() for k in sec["entries"]
            if not sec["entries"][k].get("secret")]
    for s, k in keys[:300]:
        second["sections"][s]["entries"][k]["value"] = {"changed": True, "k": k}
    for sec in second["sections"].values():
        for k, entry in sec["entries"].items():
            if entry.get("secret"):
                entry["value"] = f"rotated-{k}"
    for s, k in keys[300:350]:
        del second["sections"][s]["entries"][k]
    for i in range(50):
        second["sections"]["section0"]["entries"][f"added{i}"] = {"value": i}
    v1 = call(conn, editor, "select cfg.save_config(%s, 0, %s::jsonb) as r", (automation_id, json.dumps(first)))
    v2 = call(conn, editor, "select cfg.save_config(%s, 1, %s::jsonb) as r", (automation_id, json.dumps(second)))
    a, b = v1[0]["r"]["version_id"], v2[0]["r"]["version_id"]
    diff = call(conn, viewer, "select cfg.diff_versions(%s, %s) as d", (a, b))[0]["d"]
    assert diff["summary"] == {"added": 50, "removed": 50, "changed": 310, "sections_changed": 0}, diff["summary"]
    assert "rotated-" not in json.dumps(diff)
    figure = timed_ms(lambda: call(conn, viewer, "select cfg.diff_versions(%s, %s) as d", (a, b)), 40)
    baseline = timed_ms(
        lambda: call(conn, viewer, "select content from cfg.config_versions where id in (%s, %s)", (a, b)), 40
    )
    print(f"(b) diff_versions, two 1,000-entry versions (410 changes): {figure:.1f} ms median "
          f"(target < 20 ms); baseline reading both snapshots: {baseline:.1f} ms; ratio {figure / baseline:.1f}x")


def bench_history(conn, viewer: Identity, big_id, small_id, org_id) -> None:
    for automation_id, count in ((big_id, 10_000), (small_id, 10)):
        conn.execute(
            """
            insert into cfg.config_versions (
                org_id, automation_id, version, parent_version, content, content_hash, message, author_role)
            select %s, %s, g, nullif(g - 1, 0), '{"sections": {}}', md5(g::text), 'save ' || g, 'service_role'
            from generate_series(1, %s) as g
            """,
            (org_id, automation_id, count),
        )
    conn.commit()
    conn.execute("analyze cfg.config_versions")
    conn.commit()
    page = call(conn, viewer, "select * from cfg.config_history(%s, 50)", (big_id,))
    assert [r["version"] for r in page][:2] == [10_000, 9_999] and len(page) == 50
    figure = timed_ms(lambda: call(conn, viewer, "select * from cfg.config_history(%s, 50)", (big_id,)), 100)
    baseline = timed_ms(lambda: call(conn, viewer, "select * from cfg.config_history(%s, 50)", (small_id,)), 100)
    print(f"(c) config_history first page at 10,000 versions: {figure:.2f} ms median (target < 20 ms); "
          f"baseline at 10 versions: {baseline:.2f} ms; ratio {figure / baseline:.2f}x")


def main() -> None:
    with throwaway_database() as db_url, psycopg.connect(db_url, row_factory=dict_row) as conn:
        admin, editor, viewer = (user(conn, f"{n}@bench.test") for n in ("admin", "editor", "viewer"))
        org = call(conn, admin, "select id from cfg.create_org('Bench', 'bench')")[0]["id"]
        for who, role in ((editor, "editor"), (viewer, "viewer")):
            invitation = call(conn, admin, "select id from cfg.invite_member(%s, %s, %s)",
                              (org, who.email, role))[0]["id"]
            call(conn, who, "select cfg.accept_invitation(%s)", (invitation,))
        ids = {
            slug: call(conn, admin, "select id from cfg.create_automation(%s, %s, %s)", (org, slug, slug))[0]["id"]
            for slug in ("save", "diff", "history", "history-small")
        }
        call(conn, editor, "select cfg.save_config(%s, 0, %s::jsonb)",
             (ids["save"], json.dumps(entries_content(50, 0, secrets=2))))
        section = conn.execute("select id from cfg.config_sections where automation_id = %s limit 1",
                               (ids["save"],)).fetchone()["id"]
        conn.execute("create schema bench")
        conn.execute(
            "create table bench.plain_entries (id uuid primary key default gen_random_uuid(), "
            "org_id uuid not null, automation_id uuid not null, section_id uuid not null, key text not null, "
            "value jsonb, is_secret boolean not null default false, description text not null default '', "
            "created_at timestamptz not null default now(), updated_at timestamptz not null default now(), "
            "unique (section_id, key))"
        )
        # The same rows into a table shaped like cfg.config_entries: its columns,
        # defaults, checks, indexes and foreign key, without triggers, RLS or versioning.
        conn.execute("create table bench.shaped_entries (like cfg.config_entries including all)")
        conn.execute(
            "alter table bench.shaped_entries add foreign key (section_id, automation_id, org_id) "
            "references cfg.config_sections (id, automation_id, org_id) on delete cascade"
        )
        conn.commit()
        bench_save(conn, editor, ids["save"], section, org)
        bench_diff(conn, editor, viewer, ids["diff"])
        bench_history(conn, viewer, ids["history"], ids["history-small"], org)


if __name__ == "__main__":
    main()
