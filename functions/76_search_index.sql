-- Search (issue 13): what the environments after the first run, entry by entry
-- (cfg_private.deployed_entries, migrations/20261201060000_search_index.sql), kept with
-- deployments, so that cfg.search (functions/94_search.sql) finds what prod still runs.

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

-- Rebuilds the search rows of every deployment of org_id (admins), in one transaction:
-- searches go on reading the previous rows until it commits. After a reorder of the
-- pipeline, or to repair. Returns the number of entries indexed.
-- security definer: the rows are cfgctl's to write; the role is checked first.
create or replace function cfg_private.reindex_org_search(org_id uuid)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_role(reindex_org_search.org_id, 'admin', 're-indexing search');
    perform cfg_private.index_deployment(d.automation_id, d.environment_id)
    from cfg.deployments as d where d.org_id = reindex_org_search.org_id;
    return (select count(*) from cfg_private.deployed_entries as de where de.org_id = reindex_org_search.org_id);
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
