-- Quick find's automation names in a narrow table of their own (issue 13 (b), issue 12
-- (a)). No update of cfg.automations can be HOT (tags, updated_at and updated_by are
-- indexed), so every status or tag change inserted the row into the quick-find GiST
-- again: 256-byte trigram signatures, a third of a 5,000-row tag update's index work
-- (docs/bulk.md). Here a row is written only when an automation is created or renamed
-- (functions/74_quick_find_names.sql); quick find reads it through a definer helper
-- (functions/94_search_filters.sql). Not in cfg: the API never reads it directly.
create table cfg_private.quick_find_names (
    automation_id uuid primary key,
    org_id uuid not null,
    slug text not null,
    name text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- One row per automation, gone with it.
    constraint quick_find_names_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade
);
-- Nearest names by trigram word distance, read in distance order (as the index it
-- replaces, migrations/20261202000000_search_stored_documents.sql).
create index quick_find_names_idx on cfg_private.quick_find_names
using gist ((slug || ' ' || lower(name)) extensions.gist_trgm_ops (siglen = 256));
alter table cfg_private.quick_find_names enable row level security;

insert into cfg_private.quick_find_names (automation_id, org_id, slug, name)
select a.id, a.org_id, a.slug, a.name from cfg.automations as a;

-- cfg.search still finds names by substring (LIKE '%…%') on cfg.automations: a GIN
-- trigram index serves that and costs a fifth of the GiST per written row (pending list,
-- no signatures). Same name, so tools that drop it by name (bench_search.py (c)) still do.
drop index cfg.automations_quick_find_idx;
create index automations_quick_find_idx on cfg.automations
using gin ((slug || ' ' || lower(name)) extensions.gin_trgm_ops);

-- Replaced by cfg_private.quick_find_hits, which finds keys with the names and sections.
drop function if exists cfg_private.find_keys(uuid [], text);
