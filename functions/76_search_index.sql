-- Search (issue 13): the search terms of live entries, kept by a queue and a pg_cron job
-- (migrations/20261204010000_search_index_queue.sql), and of what the environments after
-- the first run, entry by entry (cfg_private.deployed_entries, migrations/20261201060000_
-- search_index.sql), kept with deployments, so that cfg.search (functions/94_search.sql)
-- finds what prod still runs.

-- Writes the search terms of the entries ids (those that still exist) to entry_search.
-- for key share: an entry deleted meanwhile is skipped (its row would break the key).
create or replace function cfg_private.index_entries(ids uuid [])
returns integer
language plpgsql
set search_path = ''
as $$
declare
    written integer;
begin
    insert into cfg_private.entry_search as es (entry_id, org_id, automation_id, section_id, key, search_tokens)
    select ce.id, ce.org_id, ce.automation_id, ce.section_id, ce.key,
        cfg_private.entry_search_document(ce.org_id, ce.key, ce.description, ce.value)
    from cfg.config_entries as ce
    where ce.id = any(ids)
    for key share of ce
    on conflict (entry_id) do update set search_tokens = excluded.search_tokens, updated_at = now()
    where es.search_tokens is distinct from excluded.search_tokens;
    get diagnostics written = row_count;
    return written;
end
$$;
revoke execute on function cfg_private.index_entries(uuid []) from public, anon, authenticated, service_role;

-- Merges the pending lists of the GIN indexes in cfg and cfg_private that the job's role
-- owns (gin_clean_pending_list needs the owner). Saves append their index entries to
-- these lists, which is cheap for them (a bulk status or tag change above all), but every
-- search scans a list whole until it is merged: up to 4 MB each, 10-20 ms a search after
-- a large import (docs/search.md, "Speed"). Returns the pages merged.
create or replace function cfg_private.merge_gin_pending_lists()
returns bigint
language plpgsql
set search_path = ''
as $$
begin
    return (
        select coalesce(sum(pg_catalog.gin_clean_pending_list(c.oid::regclass)), 0)
        from pg_catalog.pg_class as c
        join pg_catalog.pg_am as am on am.oid = c.relam
        where am.amname = 'gin' and c.relnamespace in ('cfg'::regnamespace, 'cfg_private'::regnamespace)
            and pg_catalog.pg_has_role(c.relowner, 'usage')
    );
end
$$;
revoke execute on function cfg_private.merge_gin_pending_lists() from public, anon, authenticated, service_role;

-- The pg_cron job: indexes the queued entries, up to 1,000 statements' worth a run
-- (skip locked: a run alongside another takes other rows), then merges the GIN pending
-- lists (above). Returns the entries indexed.
create or replace function cfg_private.index_search_queue()
returns integer
language plpgsql
set search_path = ''
as $$
declare
    ids uuid [];
    written integer;
begin
    with taken as (
        delete from cfg_private.search_queue as q
        where q.ctid = any(array(select s.ctid from cfg_private.search_queue as s limit 1000 for update skip locked))
        returning q.entry_ids
    )
    select array(select distinct i from taken as t cross join unnest(t.entry_ids) as i) into ids;
    written := cfg_private.index_entries(ids);
    perform cfg_private.merge_gin_pending_lists();
    return written;
end
$$;
revoke execute on function cfg_private.index_search_queue() from public, anon, authenticated, service_role;

-- Queues the entries a statement wrote (new_rows), one row per org. Nothing else: the
-- save pays for this row only.
-- security definer: the queue accepts no writes from API roles.
create or replace function cfg_private.queue_entries_for_search()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into cfg_private.search_queue (org_id, entry_ids)
    select n.org_id, array_agg(n.id) from new_rows as n group by n.org_id;
    return null;
end
$$;
revoke execute on function cfg_private.queue_entries_for_search() from public, anon, authenticated, service_role;

-- Transition tables allow one event per trigger.
create or replace trigger queue_inserted_for_search after insert on cfg.config_entries
referencing new table as new_rows
for each statement execute function cfg_private.queue_entries_for_search();
create or replace trigger queue_updated_for_search after update on cfg.config_entries
referencing new table as new_rows
for each statement execute function cfg_private.queue_entries_for_search();

-- Replaces the indexed entries of automation_id in environment_id with those of the
-- version deployed there; none for the org's first environment (the live tables are its).
-- security definer: the rows are written by cfgctl only, whoever deploys.
create or replace function cfg_private.index_deployment(automation_id uuid, environment_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    delete from cfg_private.deployed_entries as de
    where de.automation_id = index_deployment.automation_id and de.environment_id = index_deployment.environment_id;
    insert into cfg_private.deployed_entries (org_id, automation_id, environment_id, version, section, key,
                                              description, value)
    select v.org_id, v.automation_id, d.environment_id, v.version, s.key, e.key,
        coalesce(e.value ->> 'description', ''),
        case when (e.value -> 'secret') = 'true'::jsonb then null else e.value -> 'value' end
    from cfg.deployments as d
    join cfg.config_versions as v on v.id = d.version_id
    cross join jsonb_each(v.content -> 'sections') as s
    cross join jsonb_each(coalesce(s.value -> 'entries', '{}')) as e
    where d.automation_id = index_deployment.automation_id and d.environment_id = index_deployment.environment_id
        and d.environment_id <> (
            select env.id from cfg.environments as env where env.org_id = d.org_id order by env.position limit 1
        );
end
$$;
revoke execute on function cfg_private.index_deployment(uuid, uuid) from public, anon, authenticated, service_role;

create or replace function cfg_private.index_deployment_trigger()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    perform cfg_private.index_deployment(new.automation_id, new.environment_id);
    return null;
end
$$;
revoke execute on function cfg_private.index_deployment_trigger() from public, anon, authenticated, service_role;

create or replace trigger index_for_search after insert or update of version_id on cfg.deployments
for each row execute function cfg_private.index_deployment_trigger();

-- Rebuilds the search terms of org_id's entries and of every deployment of it (admins), in
-- one transaction: searches go on reading the previous rows until it commits. After a
-- reorder of the pipeline, or to repair (rows written with triggers off, as by a restore).
-- Returns the number of entries indexed, live and deployed.
-- security definer: the rows are cfgctl's to write; the role is checked first.
create or replace function cfg_private.reindex_org_search(org_id uuid)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_role(reindex_org_search.org_id, 'admin', 're-indexing search');
    perform cfg_private.index_entries(array(
        select ce.id from cfg.config_entries as ce where ce.org_id = reindex_org_search.org_id
    ));
    perform cfg_private.index_deployment(d.automation_id, d.environment_id)
    from cfg.deployments as d where d.org_id = reindex_org_search.org_id;
    return (select count(*) from cfg_private.deployed_entries as de where de.org_id = reindex_org_search.org_id)
        + (select count(*) from cfg_private.entry_search as es where es.org_id = reindex_org_search.org_id);
end
$$;
revoke execute on function cfg_private.reindex_org_search(uuid) from public, anon;
grant execute on function cfg_private.reindex_org_search(uuid) to authenticated, service_role;

create or replace function cfg.reindex_search(org_id uuid)
returns integer
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.reindex_org_search(reindex_search.org_id);
end
$$;
revoke execute on function cfg.reindex_search(uuid) from public, anon;
grant execute on function cfg.reindex_search(uuid) to authenticated, service_role;
