-- Search (issue 13): full-text and substring search over what members may read, kept
-- current inside the saving transaction by expression indexes on the live tables (no
-- queue, no extra columns in rows the API returns). Secret entries have no value in
-- cfg.config_entries (it lives in Vault), so only their key and description are indexed;
-- no digest is ever indexed. Functions: functions/94_search.sql. Saved filters: below.
create extension if not exists pg_trgm with schema extensions;

-- The documents the indexes are built on. They live here, beside the indexes, and not in
-- functions/: changing one means rebuilding its index, which is a migration's job.
-- plpgsql (a single expression, evaluated without a plan) so that writes pay little.
-- 'simple': configuration values are identifiers, hosts and URLs, not English prose.

-- Strings, numbers and booleans of a value, also nested (not object keys), space-separated,
-- at most 100 kB: the text a result's snippet is cut from (not indexed: it runs a query).
create function cfg_private.search_value_text(value jsonb)
returns text
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
    return left((
        select string_agg(v #>> '{}', ' ')
        from jsonb_path_query(
            value, 'strict $.** ? (@.type() == "string" || @.type() == "number" || @.type() == "boolean")'
        ) as v
    ), 100000);
end
$$;
revoke execute on function cfg_private.search_value_text(jsonb) from public, anon;
grant execute on function cfg_private.search_value_text(jsonb) to authenticated, service_role;

-- An entry's words: its key weighs more than its description, which weighs more than its
-- value's strings, numbers and booleans (nested ones too). A value over 200 kB contributes
-- the words of its first 100 kB of JSON text (a tsvector holds at most 1 MB).
-- Every branch is an expression without a query: an index pays for it on every write.
create function cfg_private.entry_search_vector(key text, description text, value jsonb)
returns tsvector
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
    return setweight(to_tsvector('simple', replace(key, '_', ' ')), 'B')
        || setweight(to_tsvector('simple', left(description, 100000)), 'C')
        || setweight(case
            when value is null then ''::tsvector
            when pg_column_size(value) > 200000 then to_tsvector('simple', left(value::text, 100000))
            else jsonb_to_tsvector('simple', value, '["string", "numeric", "boolean"]')
        end, 'D');
end
$$;
revoke execute on function cfg_private.entry_search_vector(text, text, jsonb) from public, anon;
grant execute on function cfg_private.entry_search_vector(text, text, jsonb) to authenticated, service_role;

-- What an exact substring (a URL, a host, part of an identifier) is looked for in: the
-- key and a string value, lower case, the first 2,000 characters. (Words of numbers,
-- booleans and nested values are in the vector: trigrams of every JSON text would double
-- the cost of a save for little.)
create function cfg_private.entry_search_text(key text, value jsonb)
returns text
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
    return lower(left(key || ' ' || case when jsonb_typeof(value) = 'string' then value #>> '{}' else '' end, 2000));
end
$$;
revoke execute on function cfg_private.entry_search_text(text, jsonb) from public, anon;
grant execute on function cfg_private.entry_search_text(text, jsonb) to authenticated, service_role;

-- An automation's words: name and slug first, then tags, then the description.
create function cfg_private.automation_search_vector(name text, slug text, tags text [], description text)
returns tsvector
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
    return setweight(to_tsvector('simple', name || ' ' || replace(slug, '-', ' ')), 'A')
        || setweight(to_tsvector('simple', array_to_string(tags, ' ')), 'B')
        || setweight(to_tsvector('simple', description), 'C');
end
$$;
revoke execute on function cfg_private.automation_search_vector(text, text, text [], text) from public, anon;
grant execute on function cfg_private.automation_search_vector(text, text, text [], text) to authenticated, service_role;

create index config_entries_search_idx on cfg.config_entries
using gin (cfg_private.entry_search_vector(key, description, value));
create index config_entries_substring_idx on cfg.config_entries
using gin (cfg_private.entry_search_text(key, value) extensions.gin_trgm_ops);
create index config_sections_search_idx on cfg.config_sections
using gin (to_tsvector('simple', name || ' ' || description));
create index automations_search_idx on cfg.automations
using gin (cfg_private.automation_search_vector(name, slug, tags, description));
-- Quick find: prefixes and typos of names, slugs and sections (keys: the substring index).
create index automations_quick_find_idx on cfg.automations
using gin ((slug || ' ' || lower(name)) extensions.gin_trgm_ops);
create index config_sections_quick_find_idx on cfg.config_sections using gin (name extensions.gin_trgm_ops);

-- What the environments after the first run, entry by entry, so that "which configs in
-- prod still use X" finds X after dev has moved on. The first environment always runs
-- the latest version, whose entries are the live tables above. Rows follow deployments
-- (a trigger, functions/94_search.sql); cfg.reindex_search rebuilds an org's. A secret's
-- value is never here (value is null). Not in cfg: the API reads it only through cfg.search.
create table cfg_private.deployed_entries (
    org_id uuid not null,
    automation_id uuid not null,
    environment_id uuid not null,
    version integer not null,
    section text not null,
    key text not null,
    description text not null default '',
    value jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint deployed_entries_pkey primary key (automation_id, environment_id, section, key),
    constraint deployed_entries_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint deployed_entries_environment_fkey foreign key (environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade
);
create index deployed_entries_environment_idx on cfg_private.deployed_entries (environment_id, org_id);
create index deployed_entries_automation_org_idx on cfg_private.deployed_entries (automation_id, org_id);
create index deployed_entries_search_idx on cfg_private.deployed_entries
using gin (cfg_private.entry_search_vector(key, description, value));
create index deployed_entries_substring_idx on cfg_private.deployed_entries
using gin (cfg_private.entry_search_text(key, value) extensions.gin_trgm_ops);
alter table cfg_private.deployed_entries enable row level security;
grant select on cfg_private.deployed_entries to authenticated, service_role;

-- Saved filters: a name, a query and filters (cfg.search's), personal or shared with the
-- org, optionally pinned. Shared ones are written by editors and up.
create table cfg.saved_filters (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    owner_id uuid default auth.uid() references auth.users (id) on delete cascade,
    name text not null,
    query text not null default '',
    filters jsonb not null default '{}',
    shared boolean not null default false,
    pinned boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint saved_filters_id_org_key unique (id, org_id),
    constraint saved_filters_name_length check (length(btrim(name)) between 1 and 200),
    constraint saved_filters_query_length check (length(query) <= 1000),
    constraint saved_filters_filters_object check (jsonb_typeof(filters) = 'object' and octet_length(filters::text) <= 10000)
);
create index saved_filters_org_idx on cfg.saved_filters (org_id);
create index saved_filters_owner_idx on cfg.saved_filters (owner_id);
create index saved_filters_quick_find_idx on cfg.saved_filters using gin (lower(name) extensions.gin_trgm_ops);

alter table cfg.saved_filters enable row level security;
grant select, insert, update, delete on cfg.saved_filters to authenticated, service_role;
