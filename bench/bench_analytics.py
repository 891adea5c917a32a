"""Benchmark (d) of issue 13: each analytics RPC over 1M audit rows and the versions,
deployments, promotion requests and validation events that go with them, as a viewer of the
org. Target < 100 ms each.

The history: one org, a year, 200 automations, 20 people; 500,000 versions (each saved into
dev), 50,000 direct promotions into staging, 20,000 prod promotion requests (4 in 5 applied,
each applied one deployed), 1,000,000 audit rows (the version's and one more action per
version), 10,000 validation events; a second org with a tenth of it, as noise. Loaded as the
superuser with triggers off (bench_search.py's loader), then rolled up by the pg_cron job's
function (its catch-up time is printed too).

Every RPC over the last 30 and the last 365 days, with each bucket it offers (hour charts
over at most 5,000 hours: the last 30 days, or the last 200 days for the year; and the last
7 days as before). Baseline, in the same run: the same RPC with the rollup switched off
(watermark unset), so every number is counted from the source tables (promotion requests are
read the same way in both); over the year that reads every source row of the org. The answers
of both are checked equal. Second figure, because the machine may be shared: the backend's
CPU time per call (utime + stime of its process, /proc), which other processes barely move.
Also (save): cfg.save_config of 50 entries with the two indexes analytics adds to the save
path (config_versions and deployment_history by time), against the same save in a copy of
the database without them; alternating rounds, the median of the per-round ratios.
Run: .venv/bin/python bench/bench_analytics.py [save] [rpcs]
"""

from __future__ import annotations

import os
import sys
import time

import psycopg
from bench_search import saver
from bench_versioning import call, paired_rates, user
from common import median_seconds, throwaway_database
from psycopg.rows import dict_row

VERSIONS, AUTOMATIONS, PEOPLE = 500_000, 200, 20

CALLS = {
    "analytics_changes (day)": "select cfg.analytics_changes(%(org)s, %(since)s, null, 'day') as r",
    "analytics_changes (hour, last 7 days)": "select cfg.analytics_changes(%(org)s, now() - interval '7 days', "
                                             "null, 'hour') as r",
    "analytics_changes (hour)": "select cfg.analytics_changes(%(org)s, %(hours_since)s, null, 'hour') as r",
    "analytics_changes (week)": "select cfg.analytics_changes(%(org)s, %(since)s, null, 'week') as r",
    "analytics_changes (week, prod, author)": "select cfg.analytics_changes(%(org)s, %(since)s, null, 'week', "
                                              "null, 'prod', 'person3@example.test') as r",
    "analytics_changes (day, automation)": "select cfg.analytics_changes(%(org)s, %(since)s, null, 'day', "
                                           "%(automation)s) as r",
    "analytics_top_automations": "select cfg.analytics_top_automations(%(org)s, %(since)s) as r",
    "analytics_promotions": "select cfg.analytics_promotions(%(org)s, %(since)s) as r",
    "analytics_active_users": "select cfg.analytics_active_users(%(org)s, %(since)s) as r",
    "analytics_validation_failures (day)": "select cfg.analytics_validation_failures(%(org)s, %(since)s) as r",
    "analytics_validation_failures (hour)": "select cfg.analytics_validation_failures(%(org)s, %(hours_since)s, "
                                            "null, 'hour') as r",
    "analytics_validation_failures (week, prod)": "select cfg.analytics_validation_failures(%(org)s, %(since)s, "
                                                  "null, 'week', 'prod') as r",
}


def load(conn, slug: str, scale: int) -> str:
    """An org with VERSIONS // scale versions and what goes with them over the past year."""
    n = VERSIONS // scale
    conn.execute("set session_replication_role = replica")  # bulk load: no triggers
    org = conn.execute("insert into cfg.orgs (name, slug) values (%s, %s) returning id", (slug, slug)).fetchone()["id"]
    conn.execute("insert into cfg.environments (org_id, name, slug, position, requires_approval) values "
                 "(%(o)s, 'Dev', 'dev', 0, false), (%(o)s, 'Staging', 'staging', 1, false), "
                 "(%(o)s, 'Prod', 'prod', 2, true)", {"o": org})
    conn.execute("insert into cfg.automation_types (org_id, slug, name) values (%s, 'service', 'Service')", (org,))
    conn.execute("""
        insert into cfg.automations (org_id, name, slug, type)
        select %s, 'Service ' || a, 'svc-' || a, 'service' from generate_series(1, %s) as a""", (org, AUTOMATIONS))
    env = {r["slug"]: r["id"] for r in conn.execute("select slug, id from cfg.environments where org_id = %s",
                                                    (org,))}
    # Version s: automation s % 200, by person s % 20, a year ago + s steps of (a year / n).
    conn.execute("""
        create temporary table plan on commit drop as
        select s, a.id as automation_id, s / %(automations)s + 1 as version, p.id as author_id, p.email,
               now() - interval '365 days' + s * (interval '365 days' / %(n)s) as at
        from generate_series(1, %(n)s) as s
        join (select id, row_number() over (order by slug) - 1 as i from cfg.automations where org_id = %(org)s) as a
            on a.i = s %% %(automations)s
        join (select id, email, row_number() over (order by email) - 1 as i from auth.users
              where email like 'person%%') as p on p.i = s %% %(people)s""",
                 {"automations": AUTOMATIONS, "n": n, "org": org, "people": PEOPLE})
    conn.execute("""
        insert into cfg.config_versions (id, org_id, automation_id, version, content, content_hash, author_id,
                                         author_email, author_role, created_at)
        select md5(%(org)s::text || s)::uuid, %(org)s, automation_id, version, '{"sections": {}}', 'h',
               author_id, email, 'authenticated', at from plan""", {"org": org})
    conn.execute("""
        insert into cfg.deployment_history (org_id, automation_id, environment_id, version, version_id, source,
                                            actor_id, actor_email, created_at)
        select %(org)s, automation_id, %(dev)s, version, md5(%(org)s::text || s)::uuid, 'save', author_id, email, at
        from plan
        union all
        select %(org)s, automation_id, %(staging)s, version, md5(%(org)s::text || s)::uuid, 'promotion',
               author_id, email, at + interval '1 hour' from plan where s %% 10 = 0""",
                 {"org": org, "dev": env["dev"], "staging": env["staging"]})
    conn.execute("""
        insert into cfg.promotion_requests (id, org_id, automation_id, from_environment_id, to_environment_id,
                                            version, version_id, status, decided_at, applied_at, decision_comment,
                                            created_at)
        select md5('r' || %(org)s::text || s)::uuid, %(org)s, automation_id, %(staging)s, %(prod)s, version,
               md5(%(org)s::text || s)::uuid,
               (case when s %% 100 = 0 then 'rejected' else 'applied' end)::cfg.promotion_status,
               at + interval '1 day', case when s %% 100 <> 0 then at + interval '1 day' end, 'ok',
               at + interval '2 hours'
        from plan where s %% 25 = 0""", {"org": org, "staging": env["staging"], "prod": env["prod"]})
    conn.execute("""
        insert into cfg.deployment_history (org_id, automation_id, environment_id, version, version_id, source,
                                            request_id, actor_id, actor_email, created_at)
        select %(org)s, automation_id, %(prod)s, version, md5(%(org)s::text || s)::uuid, 'promotion',
               md5('r' || %(org)s::text || s)::uuid, author_id, email, at + interval '1 day'
        from plan where s %% 25 = 0 and s %% 100 <> 0""", {"org": org, "prod": env["prod"]})
    conn.execute("""
        insert into cfg.audit_log (org_id, automation_id, actor_id, actor_email, actor_role, table_name, row_id,
                                   operation, created_at)
        select %(org)s, automation_id, author_id, email, 'authenticated', t, md5(%(org)s::text || s)::uuid, op, at + lag
        from plan cross join (values ('config_versions', 'INSERT', interval '0'),
                                     ('automations', 'UPDATE', interval '1 minute')) as x (t, op, lag)""",
                 {"org": org})
    conn.execute("""
        insert into cfg_private.events (org_id, type, subject_type, subject_id, automation_id, environment_id,
                                        payload, created_at)
        select %(org)s, 'validation.status_changed', 'automation', automation_id, automation_id, %(prod)s,
               jsonb_build_object('from', 'valid', 'to', case when s %% 100 = 0 then 'warnings' else 'errors' end),
               at
        from plan where s %% 50 = 0""", {"org": org, "prod": env["prod"]})
    conn.execute("set session_replication_role = origin")
    conn.commit()
    return org


def answer(conn, who, sql: str, params: dict, baseline: str | None):
    """The RPC's answer as who; with baseline 'sources' the rollup is switched off (rolled back)."""
    with conn.transaction(force_rollback=True):
        if baseline == "sources":
            conn.execute("update cfg_private.activity_watermark set rolled_up_to = null")
        return call(conn, who, sql, params)[0]["r"]


def backend_cpu_ms(pid: int) -> float:
    """CPU time (user + system) the backend process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(fn, pid: int, runs: int, warmup: int) -> tuple[float, float]:
    """Median wall-clock ms of fn, and the backend's mean CPU ms per call."""
    for _ in range(warmup):
        fn()
    cpu = backend_cpu_ms(pid)
    wall = median_seconds(fn, runs, 0) * 1000
    return wall, (backend_cpu_ms(pid) - cpu) / runs


def bench_save(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create database without_analytics")
    plain_url = url.rsplit("/", 1)[0] + "/without_analytics"
    from sync_service import local_stack
    local_stack.provision(plain_url, seed=False)
    with psycopg.connect(plain_url, autocommit=True) as plain:
        plain.execute("drop index cfg.config_versions_org_created_idx")
        plain.execute("drop index cfg.deployment_history_org_environment_created_idx")
    savers = []
    for target in (url, plain_url):
        conn = psycopg.connect(target, row_factory=dict_row, autocommit=True)
        editor = user(conn, "saver@example.test")
        org = call(conn, editor, "select id from cfg.create_org('Saves', 'saves')")[0]["id"]
        automation = call(conn, editor, "select id from cfg.create_automation(%s, 'S', 's')", (org,))[0]["id"]
        savers.append(saver(conn, editor, automation))
    indexed, unindexed, ratio = paired_rates(savers[0], savers[1])
    print(f"save_config, 50 entries, with the analytics indexes: {1000 / indexed:.2f} ms vs without "
          f"{1000 / unindexed:.2f} ms -> ratio {ratio:.3f}x (target: no more than the noise, < 1.02x)")


def main() -> None:
    parts = sys.argv[1:] or ["save", "rpcs"]
    if "save" in parts:
        with throwaway_database() as url:
            bench_save(url)
    if "rpcs" in parts:
        bench_rpcs()


def bench_rpcs() -> None:
    with throwaway_database() as url, psycopg.connect(url, row_factory=dict_row) as conn:
        people = [user(conn, f"person{i}@example.test") for i in range(PEOPLE)]
        start = time.perf_counter()
        org = load(conn, "big", 1)
        load(conn, "noise", 10)
        conn.execute("analyze")
        conn.commit()
        audit = conn.execute("select count(*) as n from cfg.audit_log where org_id = %s", (org,)).fetchone()["n"]
        print(f"loaded {audit:,} audit rows and {VERSIONS:,} versions (+ a tenth as noise) in "
              f"{time.perf_counter() - start:.0f} s")
        viewer = people[0]
        conn.execute("insert into cfg.org_members (org_id, user_id, role) values (%s, %s, 'viewer')",
                     (org, viewer.user_id))
        conn.commit()
        # pg_cron's job ran during the load and moved the watermark past it: rebuild, as after any
        # backfill of history (docs/analytics.md).
        conn.execute("truncate cfg_private.activity_rollup, cfg_private.activity_totals, cfg_private.promotion_rollup")
        conn.execute("update cfg_private.activity_watermark set rolled_up_to = null")
        conn.commit()
        start, runs = time.perf_counter(), 0
        while conn.execute("select cfg_private.roll_up_activity() as n").fetchone()["n"]:
            runs += 1
        conn.commit()
        rows = conn.execute("select (select count(*) from cfg_private.activity_rollup) as rollup, "
                            "(select count(*) from cfg_private.activity_totals) as totals, "
                            "(select count(*) from cfg_private.promotion_rollup) as promotions").fetchone()
        print(f"rollup caught up with a year in {time.perf_counter() - start:.1f} s ({runs} runs of <= 31 days): "
              f"{rows['rollup']:,} rollup rows (hour, day, week), {rows['totals']:,} totals, "
              f"{rows['promotions']:,} lead times")
        start = time.perf_counter()
        conn.execute("select cfg_private.roll_up_activity()")
        conn.commit()
        print(f"the job when no hour has closed: {(time.perf_counter() - start) * 1000:.1f} ms")
        conn.execute("analyze")
        conn.commit()
        pid = conn.execute("select pg_backend_pid() as pid").fetchone()["pid"]
        automation = conn.execute("select id from cfg.automations where org_id = %s and slug = 'svc-7'",
                                  (org,)).fetchone()["id"]
        for window, hours in (("30 days", "30 days"), ("365 days", "200 days")):
            params = conn.execute(f"select now() - interval '{window}' as since, "
                                  f"now() - interval '{hours}' as hours_since").fetchone()
            params.update(org=org, automation=automation)
            conn.commit()
            for name, sql in CALLS.items():
                if window != "30 days" and "last 7 days" in name:
                    continue  # the same call
                figure, cpu = timed(lambda sql=sql, p=params: answer(conn, viewer, sql, p, None), pid, 7, 2)
                assert answer(conn, viewer, sql, params, None) == answer(conn, viewer, sql, params, "sources"), name
                base, base_cpu = timed(lambda sql=sql, p=params: answer(conn, viewer, sql, p, "sources"), pid, 3, 1)
                span = hours if "(hour" in name and "last 7 days" not in name else window
                print(f"(d) {name}, last {span}: {figure:.1f} ms vs from the sources, no rollup {base:.1f} ms -> "
                      f"ratio {figure / base:.2f}x (target < 100 ms); backend CPU {cpu:.1f} ms vs {base_cpu:.1f} ms",
                      flush=True)

if __name__ == "__main__":
    main()
