-- Search (issue 13, benchmark (c)): a save no longer computes and indexes its entries'
-- search terms. Kept in the row (a generated column under a GIN index), they made a
-- 50-entry save cost 1.29-1.42x one without them, and the GIN insertion alone 1.15x:
-- no cheaper term builder could bring it to 1.2x. Now:
--   - a statement-level trigger on cfg.config_entries queues the ids of the entries a
--     statement wrote (one row per statement and org: cfg_private.search_queue);
--   - a pg_cron job (cfg_private.index_search_queue, functions/76_search_index.sql) takes
--     the queue and writes those entries' terms (cfg_private.entry_search_document, as
--     before) to cfg_private.entry_search under the GIN index;
--   - cfg.search reads the indexed terms of entries not in the queue, and computes the
--     terms of the queued ones of the caller's orgs as it runs: a search sees every save
--     at once, its own transaction's too. The job keeps that list short.
-- deployed_entries keeps its generated search_tokens: it is written by deployments.

-- An entry's terms, with what a search result needs of it (an entry's automation,
-- section and key never change). Rows go with their entry (cascade). Read only by
-- cfg_private.search_hits (security definer); no API role has any privilege on it.
create table cfg_private.entry_search (
    entry_id uuid primary key references cfg.config_entries (id) on delete cascade,
    org_id uuid not null,
    automation_id uuid not null,
    section_id uuid not null,
    key text not null,
    search_tokens tsvector not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index entry_search_tokens_idx on cfg_private.entry_search using gin (search_tokens);
alter table cfg_private.entry_search enable row level security;

-- Entries written since the job last took the queue: one row per statement and org.
create table cfg_private.search_queue (
    org_id uuid not null,
    entry_ids uuid [] not null,
    created_at timestamptz not null default now()
);
create index search_queue_org_idx on cfg_private.search_queue (org_id);
alter table cfg_private.search_queue enable row level security;

insert into cfg_private.entry_search (entry_id, org_id, automation_id, section_id, key, search_tokens)
select ce.id, ce.org_id, ce.automation_id, ce.section_id, ce.key,
    cfg_private.entry_search_document(ce.org_id, ce.key, ce.description, ce.value) as search_tokens
from cfg.config_entries as ce;

-- The API returned search_tokens with entries (README, Upgrading).
alter table cfg.config_entries drop column search_tokens;

-- Every second where pg_cron lives, with pg_cron 1.5+ (hosted Supabase); Debian's 1.4 (the
-- local stack) knows only cron syntax: every minute. Searches are exact either way.
do $cron$
declare
    version integer [];
begin
    if current_database() = current_setting('cron.database_name', true) then
        select string_to_array(split_part(e.extversion, '-', 1), '.')::integer [] into version
        from pg_catalog.pg_extension as e where e.extname = 'pg_cron';
        perform cron.schedule(
            'cfgctl-search-index',
            case when version >= array[1, 5] then '1 seconds' else '* * * * *' end,
            'select cfg_private.index_search_queue()'
        );
    end if;
end
$cron$;
