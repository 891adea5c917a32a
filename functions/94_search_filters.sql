-- Saved filters and quick find (issue 13), beside cfg.search (functions/94_search.sql).

-- =============================================================================
-- Saved filters: personal (the owner's) or shared with the org (editors and up share).
-- =============================================================================

-- Creates (filter_id null) or changes a saved filter; the query and filters are checked
-- as cfg.search checks them. Returns the row.
create or replace function cfg.save_filter(
    org_id uuid, name text, query text default '', filters jsonb default '{}',
    shared boolean default false, pinned boolean default false, filter_id uuid default null
)
returns cfg.saved_filters
language plpgsql
set search_path = ''
as $$
declare
    saved cfg.saved_filters;
begin
    perform cfg_private.require_role(save_filter.org_id, case when shared then 'editor' else 'viewer' end::cfg.org_role,
                                     'sharing a filter with the organisation');
    if name is null or length(btrim(name)) not between 1 and 200 or length(coalesce(query, '')) > 1000 then
        raise exception 'a saved filter needs a name of 1-200 characters and a query of at most 1000'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'name')::text;
    end if;
    perform cfg_private.checked_search_filters(filters);
    if filter_id is null then
        insert into cfg.saved_filters as s (org_id, owner_id, name, query, filters, shared, pinned)
        values (save_filter.org_id, (select auth.uid()), btrim(name), coalesce(query, ''), coalesce(filters, '{}'),
                coalesce(shared, false), coalesce(pinned, false))
        returning s.* into saved;
    else
        update cfg.saved_filters as s
        set name = btrim(save_filter.name), query = coalesce(save_filter.query, ''),
            filters = coalesce(save_filter.filters, '{}'), shared = coalesce(save_filter.shared, false),
            pinned = coalesce(save_filter.pinned, false)
        where s.id = filter_id and s.org_id = save_filter.org_id
        returning s.* into saved;
        if saved.id is null then
            raise exception 'saved filter not found'
                using errcode = 'PT404', detail = jsonb_build_object('filter_id', filter_id)::text;
        end if;
    end if;
    return saved;
end
$$;
revoke execute on function cfg.save_filter(uuid, text, text, jsonb, boolean, boolean, uuid) from public, anon;
grant execute on function cfg.save_filter(uuid, text, text, jsonb, boolean, boolean, uuid) to authenticated, service_role;

-- The saved filters the caller sees in org_id: their own and the shared ones, pinned first.
create or replace function cfg.list_saved_filters(org_id uuid)
returns setof cfg.saved_filters
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_saved_filters.org_id, 'viewer', 'listing saved filters');
    return query
    select s.* from cfg.saved_filters as s
    where s.org_id = list_saved_filters.org_id
    order by s.pinned desc, lower(s.name), s.id;
end
$$;
revoke execute on function cfg.list_saved_filters(uuid) from public, anon;
grant execute on function cfg.list_saved_filters(uuid) to authenticated, service_role;

-- Runs a saved filter: cfg.search with its query and filters, in its org. `ignored` says
-- which of its filters name something that no longer exists (they are left out).
create or replace function cfg.run_saved_filter(filter_id uuid, max_rows integer default 20, after text default null)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    saved cfg.saved_filters;
begin
    select s.* into saved from cfg.saved_filters as s where s.id = filter_id;
    if saved.id is null then
        raise exception 'saved filter not found'
            using errcode = 'PT404', detail = jsonb_build_object('filter_id', filter_id)::text;
    end if;
    return cfg.search(saved.query, saved.org_id, saved.filters, max_rows, after)
        || jsonb_build_object('filter', jsonb_build_object('id', saved.id, 'name', saved.name));
end
$$;
revoke execute on function cfg.run_saved_filter(uuid, integer, text) from public, anon;
grant execute on function cfg.run_saved_filter(uuid, integer, text) to authenticated, service_role;

-- Deletes a saved filter: the owner's own, or a shared one by an editor and up.
create or replace function cfg.delete_saved_filter(filter_id uuid)
returns cfg.saved_filters
language plpgsql
set search_path = ''
as $$
declare
    gone cfg.saved_filters;
begin
    delete from cfg.saved_filters as s where s.id = filter_id returning s.* into gone;
    if gone.id is null then
        if exists (select 1 from cfg.saved_filters as s where s.id = filter_id) then
            raise exception 'only its owner, or an editor for a shared one, deletes a saved filter'
                using errcode = 'PT403', detail = jsonb_build_object('filter_id', filter_id)::text;
        end if;
        raise exception 'saved filter not found'
            using errcode = 'PT404', detail = jsonb_build_object('filter_id', filter_id)::text;
    end if;
    return gone;
end
$$;
revoke execute on function cfg.delete_saved_filter(uuid) from public, anon;
grant execute on function cfg.delete_saved_filter(uuid) to authenticated, service_role;

-- =============================================================================
-- Quick find (a Cmd+K palette): prefixes and typos of names, over the caller's orgs.
-- =============================================================================

-- Up to 200 entries of orgs whose key starts with needle (lower case, 2 characters or
-- more), through the key prefix index (org_id, lower(key)).
-- security definer for the reason given in cfg_private.search_hits: LIKE is not
-- leakproof, so under RLS it could not use the index; orgs are cut down to those the
-- caller may read first.
create or replace function cfg_private.find_keys(orgs uuid [], needle text)
returns table (org_id uuid, automation_id uuid, section_id uuid, key text)
language plpgsql stable security definer
set plan_cache_mode = force_custom_plan
-- The index whatever the estimate: with LIMIT, a guess of many matches makes a
-- sequential scan look cheap, and a rare prefix then reads every entry.
set enable_seqscan = off
set search_path = ''
as $$
declare
    readable uuid [] := cfg_private.readable_orgs(orgs);
begin
    if length(needle) < 2 then
        return;
    end if;
    return query
    select ce.org_id, ce.automation_id, ce.section_id, ce.key
    from cfg.config_entries as ce
    where ce.org_id = any(readable) and lower(ce.key) like cfg_private.like_literal(needle) || '%'
    limit 200;
end
$$;
revoke execute on function cfg_private.find_keys(uuid [], text) from public, anon;
grant execute on function cfg_private.find_keys(uuid [], text) to authenticated, service_role;

-- Up to max_rows (1-50) things whose name is like query: automations (slug or name),
-- sections, keys, environments, templates and saved filters, best first; automations the
-- caller saved in the last 30 days rank first among equals. target: ORG/SLUG[#section[.key]]
-- (an environment ORG@ENV, a template ORG:template/SLUG, a filter ORG:filter/<id>).
-- Automations and sections are many (100k): their candidates are the 2 x max_rows (20
-- at least) nearest by trigram (word) distance, read from a GiST index in distance order
-- (a prefix is near); only those are scored. Keys match by prefix (cfg_private.find_keys).
-- Its plan is cached, not made on each call: no constant decides a branch.
create or replace function cfg.quick_find(query text, max_rows integer default 10)
returns table (
    kind text, label text, org_id uuid, org text, automation_id uuid, automation text, section text, key text,
    target text, score real
)
language plpgsql stable
set search_path = ''
as $$
declare
    needle text := lower(btrim(coalesce(query, '')));
    needle_like text;
    orgs uuid [];
    me uuid := (select auth.uid());
    candidates integer := greatest(2 * max_rows, 20);
begin
    if length(needle) not between 1 and 200 then
        raise exception 'a quick find query is 1-200 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'query')::text;
    end if;
    if max_rows is null or max_rows not between 1 and 50 then
        raise exception 'max_rows must be between 1 and 50'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'max_rows')::text;
    end if;
    orgs := case when cfg_private.is_service() then array(select o.id from cfg.orgs as o)
                 else array(select cfg_private.orgs_with_role('viewer')) end;
    needle_like := cfg_private.like_literal(needle);
    return query
    with automation_hits as (
        select a.id, a.org_id, a.name, a.slug from cfg.automations as a
        where a.org_id = any(orgs)
        order by (a.slug || ' ' || lower(a.name)) operator(extensions.<->>) needle
        limit candidates
    ),
    section_hits as (
        select cs.id, cs.org_id, cs.automation_id, cs.name from cfg.config_sections as cs
        where cs.org_id = any(orgs)
        order by cs.name operator(extensions.<->) needle
        limit candidates
    ),
    found as (
        select 'automation' as kind, a.name as label, a.org_id, a.id as automation_id, a.slug as automation,
            null::text as section, null::text as key, null::text as target,
            (extensions.word_similarity(needle, a.slug || ' ' || lower(a.name))
                + case when a.slug like needle_like || '%' or lower(a.name) like needle_like || '%' then 1 else 0 end
                + case when exists (
                    select 1 from cfg.config_versions as v
                    where v.automation_id = a.id and v.author_id = me
                        and v.created_at > now() - interval '30 days'
                ) then 0.25 else 0 end)::real as score
        from automation_hits as a
        where (a.slug || ' ' || lower(a.name)) operator(extensions.%>) needle
            or (a.slug || ' ' || lower(a.name)) like needle_like || '%'
        union all
        select 'section', cs.name, cs.org_id, cs.automation_id, null, cs.name, null, null,
            (extensions.similarity(needle, cs.name) + case when cs.name like needle_like || '%' then 0.5 else 0 end)::real
        from section_hits as cs
        where cs.name operator(extensions.%) needle or cs.name like needle_like || '%'
        union all
        select 'key', cs.name || '.' || k.key, k.org_id, k.automation_id, null, cs.name, k.key, null,
            (extensions.similarity(needle, lower(k.key)) + case when lower(k.key) like needle_like || '%' then 0.5 else 0 end)::real
        from cfg_private.find_keys(orgs, needle) as k
        join cfg.config_sections as cs on cs.id = k.section_id
        union all
        select 'environment', e.name, e.org_id, null, null, null, null, '@' || e.slug,
            (greatest(extensions.similarity(needle, e.slug), extensions.similarity(needle, lower(e.name)))
                + case when e.slug like needle_like || '%' then 1 else 0 end)::real
        from cfg.environments as e
        where e.org_id = any(orgs)
            and (e.slug operator(extensions.%) needle or lower(e.name) operator(extensions.%) needle
                or e.slug like needle_like || '%')
        union all
        select 'template', t.name, t.org_id, null, null, null, null, ':template/' || t.slug,
            (extensions.word_similarity(needle, t.slug || ' ' || lower(t.name))
                + case when t.slug like needle_like || '%' then 1 else 0 end)::real
        from cfg.templates as t
        where t.org_id = any(orgs)
            and ((t.slug || ' ' || lower(t.name)) operator(extensions.%>) needle or t.slug like needle_like || '%')
        union all
        select 'saved_filter', s.name, s.org_id, null, null, null, null, ':filter/' || s.id,
            (extensions.word_similarity(needle, lower(s.name))
                + case when lower(s.name) like needle_like || '%' then 1 else 0 end)::real
        from cfg.saved_filters as s
        where s.org_id = any(orgs)
            and (lower(s.name) operator(extensions.%>) needle or lower(s.name) like needle_like || '%')
    )
    select f.kind, f.label, f.org_id, o.slug, f.automation_id, a.slug, f.section, f.key,
        o.slug || coalesce(f.target, '/' || a.slug || coalesce('#' || nullif(concat_ws('.', f.section, f.key), ''), '')),
        f.score
    from found as f
    join cfg.orgs as o on o.id = f.org_id
    left join cfg.automations as a on a.id = f.automation_id
    order by f.score desc, f.kind, f.label, f.automation_id
    limit max_rows;
end
$$;
revoke execute on function cfg.quick_find(text, integer) from public, anon;
grant execute on function cfg.quick_find(text, integer) to authenticated, service_role;
