"""Audit cost: 10,000 single-entry updates with and without the audit triggers, in the same
database. Measured two ways: as an editor sends them through PostgREST (one transaction
per update: role + JWT claims, the update, commit) and inside the server (a loop of
updates as the database owner: the trigger's pure cost). Target: <= 1.5x."""

from __future__ import annotations

import time

import psycopg
from common import report, throwaway_database

from sync_service.db import Identity, act_as

UPDATES = 10_000

SETUP = """
set session_replication_role = replica;
insert into auth.users (id, email) values ('00000000-0000-4000-a000-000000000001', 'editor@bench.test');
insert into cfg.orgs (id, name, slug) values ('00000000-0000-4000-b000-000000000001', 'Bench', 'bench');
insert into cfg.org_members (org_id, user_id, role)
values ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000001', 'editor');
insert into cfg.automations (id, org_id, name, slug)
values ('00000000-0000-4000-c000-000000000001', '00000000-0000-4000-b000-000000000001', 'A', 'a');
insert into cfg.config_sections (id, org_id, automation_id, name)
values ('00000000-0000-4000-d000-000000000001', '00000000-0000-4000-b000-000000000001',
        '00000000-0000-4000-c000-000000000001', 'main');
insert into cfg.config_entries (org_id, automation_id, section_id, key, value)
select '00000000-0000-4000-b000-000000000001', '00000000-0000-4000-c000-000000000001',
       '00000000-0000-4000-d000-000000000001', 'key_' || k, to_jsonb(k)
from generate_series(1, 100) k;
set session_replication_role = origin;
-- This measures the audit trigger alone: direct writes are also versioned at commit
-- (functions/42_versioning_direct.sql), which bench_versioning.py measures.
alter table cfg.config_entries disable trigger version_direct_write;
"""

UPDATE = "update cfg.config_entries set value = to_jsonb(%s::int) where key = %s"

SERVER_LOOP = """
do $$
begin
    for i in 1..10000 loop
        update cfg.config_entries set value = to_jsonb(i) where key = 'key_' || (i % 100 + 1);
    end loop;
end
$$;
"""  # 10000 = UPDATES


EDITOR = Identity(role="authenticated", user_id="00000000-0000-4000-a000-000000000001", email="editor@bench.test")


def client_updates(conn: psycopg.Connection) -> float:
    start = time.perf_counter()
    for i in range(UPDATES):
        with conn.transaction(), conn.cursor() as cur:
            act_as(cur, EDITOR)
            cur.execute(UPDATE, (i, f"key_{i % 100 + 1}"), prepare=True)
    return time.perf_counter() - start


def server_updates(conn: psycopg.Connection) -> float:
    start = time.perf_counter()
    conn.execute(SERVER_LOOP)
    return time.perf_counter() - start


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
        results = {}
        for audited in (True, False, True, False):  # interleaved: both see the same cache state
            switch = "enable" if audited else "disable"
            for event in ("insert", "update", "delete"):
                conn.execute(f"alter table cfg.config_entries {switch} trigger audit_{event}")
            results.setdefault(audited, []).append((client_updates(conn), server_updates(conn)))
        audit_rows = conn.execute("select count(*) from cfg.audit_log").fetchone()[0]
        best = {k: (min(c for c, _ in v), min(s for _, s in v)) for k, v in results.items()}
        print(f"{UPDATES:,} updates per run; {audit_rows:,} audit rows written in all")
        report("updates as an editor, one PostgREST-style transaction each",
               best[True][0], best[False][0], "s", "<= 1.5x")
        print(f"  = {UPDATES / best[True][0]:,.0f} audited updates/s vs {UPDATES / best[False][0]:,.0f} plain")
        report("server-side update loop", best[True][1], best[False][1], "s", "<= 1.5x")


if __name__ == "__main__":
    main()
