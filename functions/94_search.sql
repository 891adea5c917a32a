-- =============================================================================
-- Search (issue 13): cfg.search over automations, sections and entries a caller may read,
-- saved filters, and quick find. The documents and indexes: migrations/20261201060000_
-- search_index.sql. Everything here is security invoker: RLS decides what is found, so
-- no count, rank or snippet of another org can come back.
-- =============================================================================

select cfg_private.register_table('cfg.saved_filters');

-- The filters cfg.search takes, checked (PT422 naming the filter); returns them as given.
--   type (slug), tags (array), tags_match (any|all), status, environment (slug: deployed
--   there), validation (errors|warnings), changed_since (timestamp), changed_by (email or
--   user id), has_secrets (boolean), template (slug)
create or replace function cfg_private.checked_search_filters(filters jsonb)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
    bad text;
begin
    if jsonb_typeof(coalesce(filters, '{}')) <> 'object' then
        raise exception 'filters must be a JSON object'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'filters')::text;
    end if;
    select k into bad from jsonb_each(coalesce(filters, '{}')) as f (k, v)
    where not (
        (k in ('type', 'environment', 'changed_by', 'template') and jsonb_typeof(v) = 'string' and length(v #>> '{}') <= 200)
        or (k = 'status' and v #>> '{}' in ('active', 'paused', 'archived'))
        or (k = 'validation' and v #>> '{}' in ('errors', 'warnings'))
        or (k = 'tags_match' and v #>> '{}' in ('any', 'all'))
        or (k = 'has_secrets' and jsonb_typeof(v) = 'boolean')
        or (k = 'changed_since' and jsonb_typeof(v) = 'string'
            and (v #>> '{}') ~ '^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}(:?\d{2})?)?$')
        or (k = 'tags' and jsonb_typeof(v) = 'array' and jsonb_array_length(v) <= 50
            and not exists (select 1 from jsonb_array_elements(v) as t where jsonb_typeof(t) <> 'string'))
    )
    limit 1;
    if bad is not null then
        raise exception 'invalid search filter %', quote_literal(left(bad, 100))
            using errcode = 'PT422',
                  hint = 'filters: type, tags, tags_match (any|all), status, environment, validation (errors|warnings), '
                         'changed_since, changed_by, has_secrets, template',
                  detail = jsonb_build_object('field', 'filters.' || left(bad, 100))::text;
    end if;
    return coalesce(filters, '{}');
end
$$;
revoke execute on function cfg_private.checked_search_filters(jsonb) from public, anon;
grant execute on function cfg_private.checked_search_filters(jsonb) to authenticated, service_role;

-- The filters that name something none of orgs has: [{filter, value}]. A saved filter
-- that refers to a removed environment, type or template still runs, without it.
create or replace function cfg_private.ignored_search_filters(filters jsonb, orgs uuid [])
returns jsonb
language plpgsql stable
set search_path = ''
as $$
begin
    return (
        select coalesce(jsonb_agg(jsonb_build_object('filter', f.k, 'value', f.v) order by f.k), '[]')
        from jsonb_each_text(filters) as f (k, v)
        where (f.k = 'type' and not exists (
                select 1 from cfg.automation_types as t where t.org_id = any(orgs) and t.slug = f.v))
            or (f.k = 'environment' and not exists (
                select 1 from cfg.environments as e where e.org_id = any(orgs) and e.slug = f.v))
            or (f.k = 'template' and not exists (
                select 1 from cfg.templates as t where t.org_id = any(orgs) and t.slug = f.v))
    );
end
$$;
revoke execute on function cfg_private.ignored_search_filters(jsonb, uuid []) from public, anon;
grant execute on function cfg_private.ignored_search_filters(jsonb, uuid []) to authenticated, service_role;

-- The automations of orgs that pass filters (those in `ignored` left out of the test).
create or replace function cfg_private.search_scope(orgs uuid [], filters jsonb, ignored jsonb)
returns setof uuid
language plpgsql stable
set search_path = ''
as $$
declare
    f jsonb := filters - array(select i ->> 'filter' from jsonb_array_elements(ignored) as i);
    wanted_tags text [] := array(select jsonb_array_elements_text(f -> 'tags'));
    env_slug text := f ->> 'environment';
begin
    return query
    select a.id
    from cfg.automations as a
    where a.org_id = any(orgs)
        and (f ->> 'type' is null or a.type = f ->> 'type')
        and (f ->> 'status' is null or a.status::text = f ->> 'status')
        and (cardinality(wanted_tags) = 0
            or (coalesce(f ->> 'tags_match', 'any') = 'any' and a.tags && wanted_tags)
            or (f ->> 'tags_match' = 'all' and a.tags @> wanted_tags))
        and (env_slug is null or exists (
            select 1 from cfg.deployments as d join cfg.environments as e on e.id = d.environment_id
            where d.automation_id = a.id and e.slug = env_slug))
        and (f ->> 'validation' is null or exists (
            select 1 from cfg.validation_status as vs
            join cfg.environments as e on e.id = vs.environment_id
            where vs.automation_id = a.id and (env_slug is null or e.slug = env_slug)
                and vs.status = f ->> 'validation'))
        and (f ->> 'changed_since' is null or a.updated_at >= (f ->> 'changed_since')::timestamptz
            or exists (select 1 from cfg.config_versions as v
                       where v.automation_id = a.id and v.created_at >= (f ->> 'changed_since')::timestamptz))
        and (f ->> 'changed_by' is null or exists (
            select 1 from cfg.config_versions as v
            where v.automation_id = a.id
                and (v.author_email = f ->> 'changed_by' or v.author_id::text = f ->> 'changed_by')
                and (f ->> 'changed_since' is null or v.created_at >= (f ->> 'changed_since')::timestamptz)))
        and (f -> 'has_secrets' is null or (f -> 'has_secrets')::boolean = exists (
            select 1 from cfg.config_entries as ce where ce.automation_id = a.id and ce.is_secret))
        and (f ->> 'template' is null or exists (
            select 1 from cfg.automation_origins as o join cfg.templates as t on t.id = o.template_id
            where o.automation_id = a.id and t.slug = f ->> 'template'));
end
$$;
revoke execute on function cfg_private.search_scope(uuid [], jsonb, jsonb) from public, anon;
grant execute on function cfg_private.search_scope(uuid [], jsonb, jsonb) to authenticated, service_role;

-- Whether a query also matches as an exact substring: when it looks like an identifier
-- or a URL (3 characters or more, no space, some punctuation). Plain words are the word
-- index's.
create or replace function cfg_private.searches_substrings(needle text)
returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
    return length(needle) >= 3 and needle !~ '\s' and needle ~ '[^[:alnum:]]';
end
$$;
revoke execute on function cfg_private.searches_substrings(text) from public, anon;
grant execute on function cfg_private.searches_substrings(text) to authenticated, service_role;

-- The queries of an org (migrations/20261203040000_search_substring_tokens.sql): q's
-- words as that org's terms (same operators: the same matches and ranks), and a needle's
-- substring query, a prefix query on the org's substring tokens with its first 100
-- characters (a token's length); null when the needle does not look like an identifier
-- or a URL (cfg_private.searches_substrings).
create or replace function cfg_private.tagged_query(q tsquery, org_id uuid)
returns tsquery
language plpgsql immutable
set search_path = ''
as $$
begin
    -- A term is quoted and opens the query or follows a space, "(" or "!".
    return regexp_replace(q::text, '(^|[ (!])''', '\1''' || left(org_id::text, 8) || '#', 'g')::tsquery;
end
$$;
revoke execute on function cfg_private.tagged_query(tsquery, uuid) from public, anon;
grant execute on function cfg_private.tagged_query(tsquery, uuid) to authenticated, service_role;

create or replace function cfg_private.substring_query(org_id uuid, needle text)
returns tsquery
language plpgsql immutable
set search_path = ''
as $$
begin
    if not cfg_private.searches_substrings(needle) then
        return null;
    end if;
    return ('''' || replace(replace(left(org_id::text, 8) || '~' || left(needle, 100), '\', '\\'), '''', '''''')
            || ''':*')::tsquery;
end
$$;
revoke execute on function cfg_private.substring_query(uuid, text) from public, anon;
grant execute on function cfg_private.substring_query(uuid, text) to authenticated, service_role;

-- Whether an entry of org_id matches: the words of q, or the substring query sq (a
-- needle longer than a token checked whole). For the versions environments run;
-- cfg_private.search_hits spells the same test out over the stored terms.
create or replace function cfg_private.entry_matches(
    org_id uuid, key text, description text, value jsonb, q tsquery, sq tsquery, needle text
)
returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
    return coalesce(cfg_private.entry_search_vector(key, description, value) @@ q, false)
        or coalesce(cfg_private.entry_search_document(org_id, key, description, value) @@ sq
            and (length(needle) <= 100 or strpos(cfg_private.entry_search_text(key, value), needle) > 0), false);
end
$$;
revoke execute on function cfg_private.entry_matches(uuid, text, text, jsonb, tsquery, tsquery, text) from public, anon;
grant execute on function cfg_private.entry_matches(uuid, text, text, jsonb, tsquery, tsquery, text)
to authenticated, service_role;

-- text as a LIKE pattern that matches only itself.
create or replace function cfg_private.like_literal(text text)
returns text
language plpgsql immutable
set search_path = ''
as $$
begin
    return replace(replace(replace(text, '\', '\\'), '%', '\%'), '_', '\_');
end
$$;
revoke execute on function cfg_private.like_literal(text) from public, anon;
grant execute on function cfg_private.like_literal(text) to authenticated, service_role;

-- The orgs among `orgs` the caller may read (all of them for the service).
create or replace function cfg_private.readable_orgs(orgs uuid [])
returns uuid []
language plpgsql stable
set search_path = ''
as $$
begin
    if cfg_private.is_service() then
        return orgs;
    end if;
    return array(select o from unnest(orgs) as o where o in (select cfg_private.orgs_with_role('viewer')));
end
$$;
revoke execute on function cfg_private.readable_orgs(uuid []) from public, anon;
grant execute on function cfg_private.readable_orgs(uuid []) to authenticated, service_role;

-- One page (max_rows) of what matches in orgs (in scope's automations, unless null), best
-- first, after the row `after`: automations (all for an empty needle: a filters-only
-- search), sections and entries. An entry found live (entry_id) and as later environments
-- run it (environment_id) comes back once, live if that matches, with its best rank.
-- q: the words (null: none). needle: the lower-case query, also a substring when it looks
-- like an identifier or a URL (checked whole when longer than a token). Entries are read
-- org by org through their own terms (cfg_private.tagged_query, substring_query): indexed
-- in entry_search, or computed here for those still queued (functions/76_search_index.sql).
-- Order: rank, then [sort_kind, automation_id, sort_section, sort_name, key] in bytes; a
-- row's [rank, ...those] is a cursor. Only the page leaves the function.
-- security definer: under RLS PostgreSQL uses no index for an operator that is not
-- leakproof (@@), so every row of the caller's orgs would be tested one by one. The orgs
-- are cut down to those the caller may read first: it finds no more than RLS allows.
create or replace function cfg_private.search_hits(
    orgs uuid [], scope uuid [], q tsquery, needle text, max_rows integer default 100, after jsonb default null
)
returns table (
    kind text, automation_id uuid, section_id uuid, section text, key text, rank real, entry_id uuid,
    environment_id uuid, sort_kind integer, sort_section uuid, sort_name text
)
language plpgsql stable security definer
rows 20  -- a page: the caller joins each row to its automation by id
-- One plan per session (see cfg.search); no JIT: with several orgs the estimates pass
-- jit_above_cost, and compiling took seconds where the query takes milliseconds.
set plan_cache_mode = force_generic_plan
set jit = off
set search_path = ''
as $$
declare
    readable uuid [] := cfg_private.readable_orgs(orgs);
    whole text := case when length(needle) > 100 then needle end;
    -- An automation's rank adds 0.5 for the needle as an exact substring of its name,
    -- found through the name's trigram index probed with its last 10 characters (null:
    -- no probe; the plan is cached, so no branch may depend on a constant).
    bonus boolean := length(needle) >= 3;
    probe text := case when cfg_private.searches_substrings(needle)
                       then '%' || cfg_private.like_literal(right(needle, 10)) || '%' end;
    none constant uuid := '00000000-0000-0000-0000-000000000000';
    -- Entries of the readable orgs saved since the index job last ran: their indexed terms
    -- (if any) are stale; theirs are computed here instead. Few: the job runs every second.
    queued uuid [] := array(
        select distinct i from cfg_private.search_queue as sq cross join unnest(sq.entry_ids) as i
        where sq.org_id = any(readable)
    );
begin
    if needle = '' then
        -- A filters-only search: the automations, all of rank 0, by id.
        return query
        select 'automation', a.id, null::uuid, null::text, null::text, 0::real, null::uuid, null::uuid, 0, none, ''
        from cfg.automations as a
        where a.org_id = any(readable) and (scope is null or a.id = any(scope))
            and (after is null or a.id > (after ->> 2)::uuid)
        order by a.id
        limit max_rows;
        return;
    end if;
    return query
    with terms as materialized (
        -- Each org's words (wq), substring query (sq) and either (aq); any may be null.
        select o.org_id, t.wq, t.sq, coalesce(t.wq || t.sq, t.wq, t.sq) as aq
        from unnest(readable) as o (org_id)
        cross join lateral (
            select cfg_private.tagged_query(q, o.org_id) as wq, cfg_private.substring_query(o.org_id, needle) as sq
        ) as t
    ),
    deployed as materialized (
        -- The best match of each entry among the versions later environments run.
        select distinct on (de.automation_id, s.sort_section, s.sort_name, de.key)
            de.automation_id, s.section_id, de.section, de.key, de.environment_id, s.sort_section, s.sort_name, r.rank
        from terms as t
        -- coalesce: an org's terms are the org's already; no org index is ANDed with them.
        join cfg_private.deployed_entries as de on coalesce(de.org_id, none) = t.org_id and de.search_tokens @@ t.aq
        cross join lateral (
            select (coalesce(ts_rank(de.search_tokens, t.wq), 0)
                + case when de.search_tokens @@ t.sq then 0.05 else 0 end)::real as rank
        ) as r
        cross join lateral (
            select cs.id as section_id, coalesce(cs.id, none) as sort_section,
                case when cs.id is null then de.section else '' end as sort_name
            from (select) as one
            left join cfg.config_sections as cs on cs.automation_id = de.automation_id and cs.name = de.section
        ) as s
        where (scope is null or de.automation_id = any(scope))
            and (whole is null or de.search_tokens @@ t.wq
                or strpos(cfg_private.entry_search_text(de.key, de.value), whole) > 0)
        order by de.automation_id, s.sort_section, s.sort_name, de.key, r.rank desc
    ),
    found as (
        select 0 as sort_kind, 'automation' as kind, a.id as automation_id, null::uuid as section_id,
            null::text as section, '' as key,
            (coalesce(ts_rank(cfg_private.automation_search_vector(a.name, a.slug, a.tags, a.description), q), 0)
                + case when bonus and strpos(a.slug || ' ' || lower(a.name), needle) > 0 then 0.5 else 0 end)::real
            as rank,
            null::uuid as entry_id, null::uuid as environment_id, none as sort_section, '' as sort_name
        from cfg.automations as a
        where a.org_id = any(readable) and (scope is null or a.id = any(scope))
            and (cfg_private.automation_search_vector(a.name, a.slug, a.tags, a.description) @@ q
                or ((a.slug || ' ' || lower(a.name)) like probe and strpos(a.slug || ' ' || lower(a.name), needle) > 0))
        union all
        select 1, 'section', cs.automation_id, cs.id, cs.name, '',
            (coalesce(ts_rank(to_tsvector('simple', cs.name || ' ' || cs.description), q), 0) * 0.4)::real,
            null, null, cs.id, ''
        from cfg.config_sections as cs
        where cs.org_id = any(readable) and (scope is null or cs.automation_id = any(scope))
            and to_tsvector('simple', cs.name || ' ' || cs.description) @@ q
        union all
        -- The live entries: each org's first page of them, in the order and after the
        -- cursor below, so that only a page per org leaves the ranking.
        select p.*
        from terms as t
        cross join lateral (
            select 2 as sort_kind, 'entry' as kind, e.automation_id, e.section_id, null::text as section, e.key,
                r.rank, e.entry_id, null::uuid as environment_id, e.section_id as sort_section, '' as sort_name
            from (
                -- The matching live entries of t's org with their terms: indexed, or computed
                -- for a queued one.
                select es.entry_id, es.automation_id, es.section_id, es.key, es.search_tokens as tokens
                from cfg_private.entry_search as es
                -- coalesce: an org's terms are the org's already; no org index is ANDed with them.
                where coalesce(es.org_id, none) = t.org_id and es.search_tokens @@ t.aq and es.entry_id <> all(queued)
                union all
                select ce.id, ce.automation_id, ce.section_id, ce.key, x.tokens
                from cfg.config_entries as ce
                cross join lateral (
                    select cfg_private.entry_search_document(ce.org_id, ce.key, ce.description, ce.value) as tokens
                ) as x
                where ce.id = any(queued) and ce.org_id = t.org_id and x.tokens @@ t.aq
            ) as e
            left join deployed as d
                on d.automation_id = e.automation_id and d.sort_section = e.section_id and d.sort_name = '' and d.key = e.key
            cross join lateral (
                select greatest((coalesce(ts_rank(e.tokens, t.wq), 0)
                    + case when e.tokens @@ t.sq then 0.05 else 0 end)::real, d.rank) as rank
            ) as r
            where (scope is null or e.automation_id = any(scope))
                and (whole is null or e.tokens @@ t.wq or strpos(cfg_private.entry_search_text(
                    e.key, (select ce.value from cfg.config_entries as ce where ce.id = e.entry_id)
                ), whole) > 0)
                and (after is null or r.rank < (after ->> 0)::real
                    or (r.rank = (after ->> 0)::real
                        and (2, e.automation_id, e.section_id, '' collate "C", e.key collate "C")
                        > ((after ->> 1)::integer, (after ->> 2)::uuid, (after ->> 3)::uuid, (after ->> 4) collate "C",
                           (after ->> 5) collate "C")))
            order by r.rank desc, e.automation_id, e.section_id, e.key collate "C"
            limit max_rows
        ) as p
        union all
        -- What only later environments still run.
        select 2, 'entry', d.automation_id, d.section_id, d.section, d.key, d.rank, null, d.environment_id,
            d.sort_section, d.sort_name
        from deployed as d
        where not exists (
            select 1
            from cfg.config_entries as ce
            join terms as t on t.org_id = ce.org_id
            left join cfg_private.entry_search as es on es.entry_id = ce.id and ce.id <> all(queued)
            cross join lateral (
                select coalesce(
                    es.search_tokens, cfg_private.entry_search_document(ce.org_id, ce.key, ce.description, ce.value)
                ) as tokens
            ) as x
            where ce.section_id = d.section_id and ce.key = d.key and x.tokens @@ t.aq
                and (whole is null or x.tokens @@ t.wq
                    or strpos(cfg_private.entry_search_text(ce.key, ce.value), whole) > 0)
        )
    )
    select f.kind, f.automation_id, f.section_id, f.section, nullif(f.key, ''), f.rank, f.entry_id, f.environment_id,
        f.sort_kind, f.sort_section, f.sort_name
    from found as f
    where after is null or f.rank < (after ->> 0)::real
        or (f.rank = (after ->> 0)::real
            and (f.sort_kind, f.automation_id, f.sort_section, f.sort_name collate "C", f.key collate "C")
            > ((after ->> 1)::integer, (after ->> 2)::uuid, (after ->> 3)::uuid, (after ->> 4) collate "C",
               (after ->> 5) collate "C"))
    order by f.rank desc, f.sort_kind, f.automation_id, f.sort_section, f.sort_name collate "C", f.key collate "C"
    limit max_rows;
end
$$;
revoke execute on function cfg_private.search_hits(uuid [], uuid [], tsquery, text, integer, jsonb) from public, anon;
grant execute on function cfg_private.search_hits(uuid [], uuid [], tsquery, text, integer, jsonb)
to authenticated, service_role;

-- Searches what the caller may read, in org_id or in all their orgs:
-- {results: [{kind: automation|section|entry, org_id, automation_id, automation,
-- automation_name, section, key, path, snippet, rank, environments}], next, ignored}.
-- query is websearch syntax ("quoted phrases", or, -word); a query that looks like an
-- identifier or a URL also matches as a substring of keys and string values, from the
-- start of a word or at punctuation (URLs, hosts, identifiers).
-- environments: where the deployed version contains the match. Secrets: their key and
-- description are searched, never their value. Pages of max_rows (1-100), the next one
-- from `next` passed as after. An empty query lists the automations the filters select.
create or replace function cfg.search(
    query text default '', org_id uuid default null, filters jsonb default '{}',
    max_rows integer default 20, after text default null
)
returns jsonb
language plpgsql stable
-- Its queries (and search_hits') are planned once per session: each has a plan that suits
-- every input (the page of hits drives the rest), and planning them anew cost about 4 ms a
-- call, most of a search that finds little. No JIT (see search_hits).
set plan_cache_mode = force_generic_plan
set jit = off
set search_path = ''
as $$
declare
    f jsonb := cfg_private.checked_search_filters(filters);
    needle text := lower(btrim(coalesce(query, '')));
    q tsquery;
    orgs uuid [];
    ignored jsonb;
    resume_at jsonb;
    found jsonb;
    -- The automations the filters select; null without filters (all of orgs'), so that
    -- entries are then found through the org's postings rather than automation by automation.
    scope uuid [];
begin
    if length(needle) > 1000 then
        raise exception 'a search query is at most 1000 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'query')::text;
    end if;
    if max_rows is null or max_rows not between 1 and 100 then
        raise exception 'max_rows must be between 1 and 100'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'max_rows')::text;
    end if;
    if after is not null then
        begin
            -- [rank, sort_kind, automation_id, sort_section, sort_name, key] (cfg_private.search_hits)
            resume_at := convert_from(decode(after, 'base64'), 'utf8')::jsonb;
            if jsonb_array_length(resume_at) <> 6 or (resume_at ->> 0)::real is null
                or (resume_at ->> 1)::integer is null or (resume_at ->> 2)::uuid is null
                or (resume_at ->> 3)::uuid is null or resume_at ->> 4 is null or resume_at ->> 5 is null then
                raise exception 'not a cursor';
            end if;
        exception when others then
            raise exception 'invalid cursor: pass the "next" of the previous page'
                using errcode = 'PT422', detail = jsonb_build_object('field', 'after')::text;
        end;
    end if;
    if search.org_id is not null then
        perform cfg_private.require_role(search.org_id, 'viewer', 'searching');
        orgs := array[search.org_id];
    elsif cfg_private.is_service() then
        orgs := array(select o.id from cfg.orgs as o);
    else
        orgs := array(select cfg_private.orgs_with_role('viewer'));
    end if;
    ignored := cfg_private.ignored_search_filters(f, orgs);
    q := websearch_to_tsquery('simple', needle);
    if numnode(q) = 0 then
        q := null;  -- no words (punctuation only): substrings alone
    end if;

    if f - 'tags_match' <> '{}' then
        scope := array(select cfg_private.search_scope(orgs, f, ignored));
    end if;

    -- search_hits returns the page only; what a result shows (its document, value and
    -- environments) is read for those rows.
    select jsonb_agg(jsonb_build_object(
        'kind', p.kind, 'org_id', a.org_id, 'automation_id', a.id, 'automation', a.slug,
        'automation_name', a.name, 'section', p.section, 'key', p.key,
        'path', nullif(concat_ws('.', p.section, p.key), ''), 'rank', p.rank,
        '_position', jsonb_build_array(p.rank, p.sort_kind, p.automation_id, p.sort_section, p.sort_name,
                                       coalesce(p.key, '')),
        -- The text a snippet is cut from (a value's strings take a query).
        'snippet', case when q is null then left(hit.doc || coalesce(' ' || cfg_private.search_value_text(hit.value), ''), 200)
            else ts_headline(
                'simple', hit.doc || coalesce(' ' || cfg_private.search_value_text(hit.value), ''), q,
                'StartSel=«, StopSel=», MaxWords=20, MinWords=5, MaxFragments=2, FragmentDelimiter=" … "'
            ) end,
        'environments', array(
            select e.slug
            from cfg.deployments as d
            join cfg.environments as e on e.id = d.environment_id
            join cfg.config_versions as v on v.id = d.version_id
            where d.automation_id = p.automation_id
                and case p.kind
                    when 'automation' then true
                    when 'section' then v.content -> 'sections' ? p.section
                    else cfg_private.entry_matches(
                        a.org_id, p.key,
                        coalesce(v.content #>> array['sections', p.section, 'entries', p.key, 'description'], ''),
                        v.content #> array['sections', p.section, 'entries', p.key, 'value'], q,
                        cfg_private.substring_query(a.org_id, needle), needle)
                        and v.content #> array['sections', p.section, 'entries', p.key] is not null
                end
            order by e.position
        )
    ) order by p.n)
    into found
    from (
        select h.kind, h.automation_id, h.section_id, h.key, h.rank, h.entry_id, h.environment_id, h.sort_kind,
            h.sort_section, h.sort_name, h.n,
            coalesce(h.section, (select cs.name from cfg.config_sections as cs where cs.id = h.section_id)) as section
        from cfg_private.search_hits(orgs, scope, q, needle, max_rows + 1, resume_at) with ordinality as h (
            kind, automation_id, section_id, section, key, rank, entry_id, environment_id, sort_kind, sort_section,
            sort_name, n
        )
    ) as p
    join cfg.automations as a on a.id = p.automation_id
    cross join lateral (
        select a.name || ' (' || a.slug || ') ' || array_to_string(a.tags, ' ') || ' ' || left(a.description, 2000) as doc,
            null::jsonb as value
        where p.kind = 'automation'
        union all
        select cs.name || ' ' || left(cs.description, 2000), null
        from cfg.config_sections as cs
        where p.kind = 'section' and cs.id = p.section_id
        union all
        select ce.key || ' ' || left(ce.description, 2000), ce.value
        from cfg.config_entries as ce where ce.id = p.entry_id
        union all
        select de.key || ' ' || left(de.description, 2000), de.value
        from cfg_private.deployed_entries as de
        where p.entry_id is null and de.automation_id = p.automation_id and de.environment_id = p.environment_id
            and de.section = p.section and de.key = p.key
    ) as hit;

    found := coalesce(found, '[]');
    return jsonb_build_object(
        'results', (select coalesce(jsonb_agg(r - '_position' order by n), '[]')
                    from jsonb_array_elements(found) with ordinality as x (r, n) where n <= max_rows),
        'next', case when jsonb_array_length(found) > max_rows then translate(encode(convert_to(
            (found -> (max_rows - 1) -> '_position')::text, 'utf8'
        ), 'base64'), E'\n', '') end,
        'ignored', ignored
    );
end
$$;
revoke execute on function cfg.search(text, uuid, jsonb, integer, text) from public, anon;
grant execute on function cfg.search(text, uuid, jsonb, integer, text) to authenticated, service_role;
