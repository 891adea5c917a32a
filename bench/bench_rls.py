"""RLS read cost: 100 orgs x 1,000 automations x 10 entries. A viewer lists their org's
automations with entries (the query PostgREST builds for
`from('automations').select('*, config_entries(*)').eq('org_id', X)`), against the same
query as service_role (BYPASSRLS). Target: <= 1.25x."""

from __future__ import annotations

import psycopg
from common import median_seconds, report, throwaway_database

from sync_service.db import SERVICE, Identity, act_as

ORGS, AUTOMATIONS, ENTRIES = 100, 1_000, 10

LOAD = """
set session_replication_role = replica;  -- bulk load: skip audit/event triggers
insert into auth.users (id, email)
select ('00000000-0000-4000-a000-' || lpad(o::text, 12, '0'))::uuid, 'viewer' || o || '@bench.test'
from generate_series(1, %(orgs)s) o;
insert into cfg.orgs (id, name, slug)
select ('00000000-0000-4000-b000-' || lpad(o::text, 12, '0'))::uuid, 'Org ' || o, 'org-' || o
from generate_series(1, %(orgs)s) o;
insert into cfg.org_members (org_id, user_id, role)
select ('00000000-0000-4000-b000-' || lpad(o::text, 12, '0'))::uuid,
       ('00000000-0000-4000-a000-' || lpad(o::text, 12, '0'))::uuid, 'viewer'
from generate_series(1, %(orgs)s) o;
insert into cfg.automations (id, org_id, name, slug)
select gen_random_uuid(), ('00000000-0000-4000-b000-' || lpad(o::text, 12, '0'))::uuid,
       'Automation ' || a, 'automation-' || a
from generate_series(1, %(orgs)s) o, generate_series(1, %(automations)s) a;
insert into cfg.config_sections (org_id, automation_id, name)
select org_id, id, 'main' from cfg.automations;
insert into cfg.config_entries (org_id, automation_id, section_id, key, value)
select s.org_id, s.automation_id, s.id, 'key_' || k, to_jsonb(k * 7)
from cfg.config_sections s, generate_series(1, %(entries)s) k;
set session_replication_role = origin;
analyze;
"""

# What PostgREST generates for an embedded select, reduced to its essentials.
LIST = """
select a.id, a.slug, a.name, a.type, a.status, a.tags,
       coalesce((select json_agg(json_build_object('key', e.key, 'value', e.value, 'is_secret', e.is_secret))
                 from cfg.config_entries e where e.automation_id = a.id), '[]') as config_entries
from cfg.automations a
where a.org_id = %s
order by a.slug
"""


def _index_names(node) -> list[str]:
    if isinstance(node, list):
        return [n for item in node for n in _index_names(item)]
    if isinstance(node, dict):
        found = [node["Index Name"]] if "Index Name" in node else []
        return found + [n for v in node.values() for n in _index_names(v)]
    return []


def main() -> None:
    with throwaway_database() as url, psycopg.connect(url) as conn:
        conn.execute(LOAD % {"orgs": ORGS, "automations": AUTOMATIONS, "entries": ENTRIES})
        conn.commit()
        org = "00000000-0000-4000-b000-000000000042"
        viewer = Identity(role="authenticated", user_id="00000000-0000-4000-a000-000000000042",
                          email="viewer42@bench.test")

        def run_as(identity: Identity):
            def once():
                with conn.transaction(), conn.cursor() as cur:
                    act_as(cur, identity)
                    rows = cur.execute(LIST, (org,), prepare=True).fetchall()
                    assert len(rows) == AUTOMATIONS and len(rows[0][6]) == ENTRIES
            return once

        as_viewer = median_seconds(run_as(viewer), runs=15) * 1000
        as_service = median_seconds(run_as(SERVICE), runs=15) * 1000
        with conn.transaction(), conn.cursor() as cur:
            act_as(cur, viewer)
            plan = cur.execute("explain (format json) " + LIST, (org,)).fetchone()[0]
        print(f"{ORGS} orgs x {AUTOMATIONS} automations x {ENTRIES} entries; "
              f"viewer plan uses: {sorted(set(_index_names(plan)))}")
        report("list 1,000 automations with 10,000 entries", as_viewer, as_service, "ms", "<= 1.25x")


if __name__ == "__main__":
    main()
