-- =============================================================================
-- Selections of automations: what a bulk operation (issue 12), an export and later
-- a saved filter act on. One reading of a selection, so every action agrees on it.
--   {"ids": ["<uuid>", ...]}                      these, in this order
--   {"where": {"type": "<type slug>", "status": "active|paused|archived",
--              "tags": ["a", "b"], "tags_match": "any|all",
--              "deployed_in": "<environment slug>", "text": "<substring>"}}
-- An id that is not a visible automation of org_id (unknown, or another org's) comes
-- back with found = false, so a caller reports it per item as not found and never
-- learns more. A filter only yields found automations, ordered by slug.
-- =============================================================================

create or replace function cfg.select_automations(org_id uuid, selection jsonb)
returns table (automation_id uuid, slug text, found boolean, ord integer)
language plpgsql stable
set search_path = ''
as $$
declare
    filter jsonb;
    id_texts text[];
    ids uuid[];
    wanted_tags text[];
    env_id uuid;
    unknown text[];
begin
    perform cfg_private.require_role(select_automations.org_id, 'viewer', 'selecting automations');
    if jsonb_typeof(selection) is distinct from 'object'
        or (select count(*) from jsonb_object_keys(selection)) <> 1
        or not (selection ? 'ids' or selection ? 'where') then
        raise exception 'a selection is {"ids": [...]} or {"where": {...}}'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'selection')::text;
    end if;

    if selection ? 'ids' then
        if jsonb_typeof(selection -> 'ids') <> 'array' or jsonb_array_length(selection -> 'ids') > 50000 then
            raise exception 'selection ids must be an array of at most 50000 ids'
                using errcode = 'PT422', detail = jsonb_build_object('field', 'selection.ids')::text;
        end if;
        -- Ids spelt as uuid::text prints them (the usual case) pass by printing them back,
        -- a third of the cost of checking each (5,000 ids); the rest take the check below.
        begin
            ids := array(
                select e.v from jsonb_array_elements_text(selection -> 'ids') with ordinality as e (v, n) order by e.n
            )::uuid[];
        exception when invalid_text_representation then
            ids := null;
        end;
        if ids is null or array_position(ids, null) is not null or to_jsonb(ids::text[]) <> selection -> 'ids' then
            select array_agg(v order by n) into id_texts
            from jsonb_array_elements_text(selection -> 'ids') with ordinality as e (v, n);
            -- 8-4-4-4-12 hex digits, either case, checked without a regular expression: 36
            -- characters, hyphens at 9, 14, 19 and 24, hex digits elsewhere.
            if exists (
                select 1 from unnest(id_texts) as v
                where not (
                    length(v) = 36 and translate(lower(v), '0123456789abcdef', '') = '----'
                    and substr(v, 9, 1) || substr(v, 14, 1) || substr(v, 19, 1) || substr(v, 24, 1) = '----'
                )
            ) or exists (select 1 from jsonb_array_elements(selection -> 'ids') as e where jsonb_typeof(e) <> 'string') then
                raise exception 'selection ids must be uuids'
                    using errcode = 'PT422', detail = jsonb_build_object('field', 'selection.ids')::text;
            end if;
            ids := id_texts::uuid[];
        end if;
        -- The first mention of an id counts; RLS and the org both bound what is found.
        return query
        select i.id, a.slug, a.id is not null, i.n::integer
        from (
            select distinct on (u.id) u.id, u.n
            from unnest(ids) with ordinality as u (id, n)
            order by u.id, u.n
        ) as i
        left join cfg.automations as a on a.id = i.id and a.org_id = select_automations.org_id
        order by i.n;
        return;
    end if;

    filter := selection -> 'where';
    if jsonb_typeof(filter) <> 'object' then
        raise exception 'selection where must be an object'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'selection.where')::text;
    end if;
    select array_agg(k) into unknown from jsonb_object_keys(filter) as k
    where k not in ('type', 'status', 'tags', 'tags_match', 'deployed_in', 'text');
    if unknown is not null then
        raise exception 'unknown selection filter %', array_to_string(unknown, ', ')
            using errcode = 'PT422', detail = jsonb_build_object('field', 'selection.where', 'unknown', unknown)::text;
    end if;
    if (filter ? 'type' and jsonb_typeof(filter -> 'type') <> 'string')
        or (filter ? 'text' and (jsonb_typeof(filter -> 'text') <> 'string' or length(filter ->> 'text') > 200))
        or (filter ? 'status' and coalesce(filter ->> 'status', '') not in ('active', 'paused', 'archived'))
        or (filter ? 'tags_match' and coalesce(filter ->> 'tags_match', '') not in ('any', 'all'))
        or (filter ? 'deployed_in' and jsonb_typeof(filter -> 'deployed_in') <> 'string')
        or (filter ? 'tags' and (
            jsonb_typeof(filter -> 'tags') <> 'array'
            or jsonb_array_length(filter -> 'tags') > 50
            or exists (select 1 from jsonb_array_elements(filter -> 'tags') as t where jsonb_typeof(t) <> 'string')
        )) then
        raise exception 'invalid selection filter: type, text (<= 200 chars) and deployed_in are strings, status is active|paused|archived, tags an array of strings, tags_match any|all'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'selection.where')::text;
    end if;
    if filter ? 'tags' then
        select array_agg(t) into wanted_tags from jsonb_array_elements_text(filter -> 'tags') as t;
    end if;
    if filter ? 'deployed_in' then
        select e.id into env_id from cfg.environments as e
        where e.org_id = select_automations.org_id and e.slug = filter ->> 'deployed_in';
        if env_id is null then
            raise exception 'unknown environment %', quote_literal(left(filter ->> 'deployed_in', 100))
                using errcode = 'PT422', detail = jsonb_build_object('field', 'selection.where.deployed_in')::text;
        end if;
    end if;

    return query
    select a.id, a.slug, true, (row_number() over (order by a.slug))::integer
    from cfg.automations as a
    where a.org_id = select_automations.org_id
        and (filter ->> 'type' is null or a.type = filter ->> 'type')
        and (filter ->> 'status' is null or a.status = (filter ->> 'status')::cfg.automation_status)
        and (
            wanted_tags is null
            or (coalesce(filter ->> 'tags_match', 'any') = 'any' and a.tags && wanted_tags)
            or (filter ->> 'tags_match' = 'all' and a.tags @> wanted_tags)
        )
        and (
            env_id is null
            or exists (select 1 from cfg.deployments as d where d.automation_id = a.id and d.environment_id = env_id)
        )
        and (
            filter ->> 'text' is null
            or strpos(lower(a.name || ' ' || a.slug || ' ' || a.description), lower(filter ->> 'text')) > 0
        )
    order by a.slug;
end
$$;
revoke execute on function cfg.select_automations(uuid, jsonb) from public, anon;
grant execute on function cfg.select_automations(uuid, jsonb) to authenticated, service_role;
