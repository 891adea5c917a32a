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

-- Quick find's many: the automations and sections whose names are nearest to needle by
-- trigram (word) distance, `candidates` of each, read in distance order from GiST indexes
-- (a prefix is near), and up to 200 keys starting with needle (2 characters or more)
-- through the btree (org_id, lower(key)); each scored as cfg.quick_find shows it, with
-- its automation's slug. Automations `me` saved in the last 30 days score 0.25 more.
-- security definer: the names are in cfg_private.quick_find_names, and under RLS no index
-- serves LIKE or a trigram operator (not leakproof). It reads only the orgs the caller may
-- read (membership, or the service), found here, once: no RLS sub-plan per table.
-- Its plan is generic (cached): the key range is two parameters, not a LIKE constant.
create or replace function cfg_private.quick_find_hits(needle text, candidates integer)
returns table (
    kind text, label text, org_id uuid, automation_id uuid, automation text, section text, key text, score real
)
language plpgsql stable security definer
-- Index scans whatever the estimates: with LIMIT, a guess of many matches makes a
-- sequential scan look cheap (a rare prefix then reads every entry), and a bitmap scan
-- reads every match of a common prefix before the first row (100k for `key7`).
set enable_seqscan = off
set enable_bitmapscan = off
set search_path = ''
as $$
declare
    readable uuid [] := case when cfg_private.is_service() then array(select o.id from cfg.orgs as o)
                             else array(select cfg_private.orgs_with_role('viewer')) end;
    me uuid := (select auth.uid());
    needle_like text := cfg_private.like_literal(needle) || '%';
    -- Keys from needle up to needle followed by the last code point, byte-wise (the
    -- btree's text_pattern_ops order): exactly those starting with needle.
    key_end text := needle || chr(1114111);
begin
    return query
    with automation_hits as (
        select n.automation_id, n.org_id, n.slug || ' ' || lower(n.name) as words
        from cfg_private.quick_find_names as n
        where n.org_id = any(readable)
        order by (n.slug || ' ' || lower(n.name)) operator(extensions.<->>) needle
        limit candidates
    ),
    section_hits as (
        select cs.org_id, cs.automation_id, cs.name from cfg.config_sections as cs
        where cs.org_id = any(readable)
        order by cs.name operator(extensions.<->) needle
        limit candidates
    ),
    key_hits as (
        select ce.org_id, ce.automation_id, ce.section_id, ce.key from cfg.config_entries as ce
        where length(needle) >= 2 and ce.org_id = any(readable)
            and lower(ce.key) operator(pg_catalog.~>=~) needle and lower(ce.key) operator(pg_catalog.~<~) key_end
            and lower(ce.key) like needle_like
        limit 200
    )
    select 'automation', a.name, a.org_id, a.id, a.slug, null::text, null::text,
        (extensions.word_similarity(needle, h.words)
            + case when a.slug like needle_like or lower(a.name) like needle_like then 1 else 0 end
            + case when exists (
                select 1 from cfg.config_versions as v
                where v.automation_id = a.id and v.author_id = me and v.created_at > now() - interval '30 days'
            ) then 0.25 else 0 end)::real
    -- The live row (by primary key): the names table follows it in the same transaction.
    from automation_hits as h
    join cfg.automations as a on a.id = h.automation_id
    where h.words operator(extensions.%>) needle or h.words like needle_like
    union all
    select 'section', cs.name, cs.org_id, cs.automation_id, a.slug, cs.name, null,
        (extensions.similarity(needle, cs.name) + case when cs.name like needle_like then 0.5 else 0 end)::real
    from section_hits as cs
    join cfg.automations as a on a.id = cs.automation_id
    where cs.name operator(extensions.%) needle or cs.name like needle_like
    union all
    select 'key', cs.name || '.' || k.key, k.org_id, k.automation_id, a.slug, cs.name, k.key,
        (extensions.similarity(needle, lower(k.key)) + 0.5)::real
    from key_hits as k
    join cfg.config_sections as cs on cs.id = k.section_id
    join cfg.automations as a on a.id = k.automation_id;
end
$$;
revoke execute on function cfg_private.quick_find_hits(text, integer) from public, anon;
grant execute on function cfg_private.quick_find_hits(text, integer) to authenticated, service_role;

-- Up to max_rows (1-50) things whose name is like query: automations (slug or name),
-- sections, keys, environments, templates and saved filters, best first; automations the
-- caller saved in the last 30 days rank first among equals. target: ORG/SLUG[#section[.key]]
-- (an environment ORG@ENV, a template ORG:template/SLUG, a filter ORG:filter/<id>).
-- Automations, sections and keys are many (100k): cfg_private.quick_find_hits finds and
-- scores them. Environments, templates and saved filters are few per org: read here
-- under RLS, which alone limits them to the caller's orgs.
-- Its plan is cached, not made on each call: no constant decides a branch.
create or replace function cfg.quick_find(query text, max_rows integer default 10)
returns table (
    kind text, label text, org_id uuid, org text, automation_id uuid, automation text, section text, key text,
    target text, score real
)
language plpgsql stable
-- Planned once per session, never JIT-compiled, as cfg.search (docs/search.md, "Speed"):
-- planning its branches anew cost 2-3 ms a call, half of a quick find.
set plan_cache_mode = force_generic_plan
set jit = off
set search_path = ''
as $$
declare
    needle text := lower(btrim(coalesce(query, '')));
    needle_like text;
begin
    if length(needle) not between 1 and 200 then
        raise exception 'a quick find query is 1-200 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'query')::text;
    end if;
    if max_rows is null or max_rows not between 1 and 50 then
        raise exception 'max_rows must be between 1 and 50'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'max_rows')::text;
    end if;
    needle_like := cfg_private.like_literal(needle);
    return query
    with found as (
        select h.kind, h.label, h.org_id, h.automation_id, h.automation, h.section, h.key, null::text as target, h.score
        from cfg_private.quick_find_hits(needle, greatest(2 * max_rows, 20)) as h
        union all
        select 'environment', e.name, e.org_id, null, null, null, null, '@' || e.slug,
            (greatest(extensions.similarity(needle, e.slug), extensions.similarity(needle, lower(e.name)))
                + case when e.slug like needle_like || '%' then 1 else 0 end)::real
        from cfg.environments as e
        where e.slug operator(extensions.%) needle or lower(e.name) operator(extensions.%) needle
            or e.slug like needle_like || '%'
        union all
        select 'template', t.name, t.org_id, null, null, null, null, ':template/' || t.slug,
            (extensions.word_similarity(needle, t.slug || ' ' || lower(t.name))
                + case when t.slug like needle_like || '%' then 1 else 0 end)::real
        from cfg.templates as t
        where (t.slug || ' ' || lower(t.name)) operator(extensions.%>) needle or t.slug like needle_like || '%'
        union all
        select 'saved_filter', s.name, s.org_id, null, null, null, null, ':filter/' || s.id,
            (extensions.word_similarity(needle, lower(s.name))
                + case when lower(s.name) like needle_like || '%' then 1 else 0 end)::real
        from cfg.saved_filters as s
        where lower(s.name) operator(extensions.%>) needle or lower(s.name) like needle_like || '%'
    )
    select f.kind, f.label, f.org_id, o.slug, f.automation_id, f.automation, f.section, f.key,
        o.slug || coalesce(f.target, '/' || f.automation || coalesce('#' || nullif(concat_ws('.', f.section, f.key), ''), '')),
        f.score
    from found as f
    join cfg.orgs as o on o.id = f.org_id
    order by f.score desc, f.kind, f.label, f.automation_id
    limit max_rows;
end
$$;
revoke execute on function cfg.quick_find(text, integer) from public, anon;
grant execute on function cfg.quick_find(text, integer) to authenticated, service_role;
