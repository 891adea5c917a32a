-- The dependency graph (issue 15): references between automations, stored per version.
-- Functions: functions/44_graph.sql (extraction on every version write, reachability),
-- 44_versioning_dry_run.sql (save and patch dry runs with their impact) and
-- 98_graph_api.sql (impact, resolution, the graph, deleting with dependents).
-- Policies: policies/graph.sql.

-- One row per reference a version's content makes: a value reference ({"ref": ...} or
-- "${ref:...}" in a string), a secret reference (the same, to a secret entry: the edge
-- is visible, the value never is) or a declared dependency ({"ref": "<automation>"},
-- no key). Written by the AFTER INSERT trigger on cfg.config_versions, in the
-- transaction of the write, so every path that records a version has them; never
-- changed afterwards (a version is immutable, so are its edges).
create table cfg.version_references (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    version_id uuid not null,
    -- The referencing automation and its version number (the version row has both;
    -- copied so that "the edges of the newest version" is one index lookup).
    from_automation_id uuid not null,
    version integer not null,
    to_org_id uuid not null,
    to_automation_id uuid not null,
    -- The referenced entry; null for a declared dependency.
    to_section text,
    to_key text,
    kind text not null,
    -- Where the reference is: sections.<s>.entries.<k>.value[.<field>|[<i>]]...
    path text not null,
    -- The reference as written ("[org:]automation[/section.key]").
    ref text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint version_references_version_fkey foreign key (version_id)
    references cfg.config_versions (id) on delete cascade,
    -- A deleted automation (forced) takes the edges to it along: the referencing
    -- content still names it, and resolve_config reports it unresolved.
    constraint version_references_to_automation_fkey foreign key (to_automation_id, to_org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint version_references_kind_known check (kind in ('value', 'secret', 'declared')),
    -- A declared dependency names no entry; a value or secret reference names one.
    constraint version_references_key_by_kind check ((kind = 'declared') = (to_key is null and to_section is null))
);
create index version_references_version_idx on cfg.version_references (version_id);
create index version_references_from_idx on cfg.version_references (from_automation_id, version);
create index version_references_to_idx on cfg.version_references (to_automation_id);
create index version_references_org_idx on cfg.version_references (org_id);
create index version_references_to_org_idx on cfg.version_references (to_org_id);

alter table cfg.version_references enable row level security;
grant select on cfg.version_references to authenticated, service_role;

-- Dry runs for save_config and patch_config (their answers gain dry_run and impact);
-- delete_automation gains force. Callers passing the old arguments are unchanged.
drop function if exists cfg.save_config(uuid, integer, jsonb, text);
drop function if exists cfg.patch_config(uuid, integer, jsonb, jsonb, text);
drop function if exists cfg.delete_automation(uuid);
