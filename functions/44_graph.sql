-- =============================================================================
-- The dependency graph, its model: references in content, their extraction on every
-- version write, and reachability. Table: migrations/20261201050000_graph_references.sql.
--
-- A reference, anywhere inside an entry's value (nested objects and arrays too):
--   {"ref": "billing-api/http.base_url"}      the whole value (one key, "ref", a string)
--   "${ref:billing-api/http.base_url}/v1"      inside a string, several per string;
--                                              "$${ref:...}" is the literal "${ref:...}"
--   {"ref": "edge-gateway"}                    a declared dependency: no key, no value
-- The target is [org-slug:]automation-slug[/section.key]; without an org, the
-- automation's own org. The key splits at the first dot that names an existing entry
-- (section names may hold dots). Secret entries' values are never read for references.
-- =============================================================================

-- Every reference inside value (found at base_path): its path, the reference as
-- written, whether it was a whole-value {"ref"} (else inside a string), and a problem
-- when it is malformed. Iterative (a recursive query), as deep as jsonb nests.
create or replace function cfg_private.references_in(value jsonb, base_path text)
returns table (path text, ref text, whole boolean, problem text)
-- plpgsql: its plan is cached for the session (a sql function with settings is planned
-- at every statement that calls it).
language plpgsql immutable
-- A value holds a few references: planned as such.
rows 5
set search_path = ''
as $$
begin
    return query
    with recursive walk (path, node) as (
        select base_path, value
        union all
        select w.path || c.step, c.node
        from walk as w
        cross join lateral (
            select '.' || o.key, o.value
            -- A reference object is a leaf.
            from jsonb_each(case when jsonb_typeof(w.node) = 'object' and not (w.node ? 'ref' and (w.node - 'ref') = '{}')
                then w.node end) as o
            union all
            select '[' || (a.n - 1) || ']', a.value
            from jsonb_array_elements(case when jsonb_typeof(w.node) = 'array' then w.node end) with ordinality as a (value, n)
        ) as c (step, node)
    )
    select w.path, w.node ->> 'ref', true,
        case when jsonb_typeof(w.node -> 'ref') <> 'string'
            then 'a reference is {"ref": "[org:]automation[/section.key]"}, a string' end
    from walk as w
    where jsonb_typeof(w.node) = 'object' and w.node ? 'ref' and (w.node - 'ref') = '{}'
    union all
    select w.path, m[2], false, null
    from walk as w
    cross join lateral regexp_matches(w.node #>> '{}', '\$(\$?)\{ref:([^}]*)\}', 'g') as m
    where jsonb_typeof(w.node) = 'string' and m[1] = ''
    union all
    -- What is left of "${ref:" once every complete (or escaped) one is taken out.
    select w.path, w.node #>> '{}', false, 'unterminated "${ref:": write "${ref:automation/section.key}"'
    from walk as w
    where jsonb_typeof(w.node) = 'string' and position('${ref:' in w.node #>> '{}') > 0
        and position('${ref:' in regexp_replace(w.node #>> '{}', '\$\$?\{ref:[^}]*\}', '', 'g')) > 0;
end
$$;
revoke execute on function cfg_private.references_in(jsonb, text) from public, anon;
grant execute on function cfg_private.references_in(jsonb, text) to authenticated, service_role;

-- The automations that reference start, transitively (its dependents: the impact
-- radius), breadth first, one query per level (no recursion, so no stack to blow),
-- each once at its least depth. Edges are those of each automation's newest version
-- (a graph edge is "newest" when its version is the automation's highest), or of the
-- version it runs in environment_id. keys (["section.key"]) filter the first level.
-- via = the automation it was reached through; via_keys = the keys of via it references.
-- security invoker: under RLS a caller sees only the edges between orgs they are a
-- member of.
create or replace function cfg_private.reach(
    start uuid, environment_id uuid default null, keys text [] default null, max_depth integer default null
)
returns table (automation_id uuid, depth integer, via uuid, via_keys text [])
language plpgsql stable
-- JIT compiling these queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    frontier uuid [] := array[start];
    visited uuid [] := array[start];
    level integer := 0;
    next_ids uuid [];
    next_vias uuid [];
    next_keys jsonb [];
begin
    loop
        level := level + 1;
        exit when level > coalesce(max_depth, 1000000);
        select array_agg(n.next), array_agg(n.via), array_agg(n.keys)
        into next_ids, next_vias, next_keys
        from (
            -- One via per automation (the first by id), with the keys it references of that one.
            select distinct on (1) e.from_automation_id as next, e.to_automation_id as via,
                coalesce(jsonb_agg(distinct e.to_section || '.' || e.to_key) filter (where e.to_key is not null), '[]') as keys
            from cfg.version_references as e
            where e.to_automation_id = any(frontier)
                and (level > 1 or reach.keys is null or e.to_section || '.' || e.to_key = any(reach.keys))
                and case when reach.environment_id is null
                    then e.version = (select max(v.version) from cfg.config_versions as v where v.automation_id = e.from_automation_id)
                    else e.version_id = (
                        select d.version_id from cfg.deployments as d
                        where d.automation_id = e.from_automation_id and d.environment_id = reach.environment_id
                    ) end
            group by 1, 2
            order by 1, 2
        ) as n
        where not n.next = any(visited);
        exit when next_ids is null;
        return query
        select i.id, level, i.via, array(select jsonb_array_elements_text(i.keys))
        from unnest(next_ids, next_vias, next_keys) as i (id, via, keys);
        visited := visited || next_ids;
        frontier := next_ids;
    end loop;
end
$$;
revoke execute on function cfg_private.reach(uuid, uuid, text [], integer) from public, anon;
grant execute on function cfg_private.reach(uuid, uuid, text [], integer) to authenticated, service_role;

-- How an automation is named from another org's point of view: its slug in that org,
-- "org:slug" elsewhere.
create or replace function cfg_private.automation_name(automation_id uuid, seen_from uuid)
returns text
language sql stable
set search_path = ''
as $$
    select case when a.org_id = seen_from then a.slug else o.slug || ':' || a.slug end
    from cfg.automations as a join cfg.orgs as o on o.id = a.org_id
    where a.id = automation_name.automation_id
$$;
revoke execute on function cfg_private.automation_name(uuid, uuid) from public, anon;
grant execute on function cfg_private.automation_name(uuid, uuid) to authenticated, service_role;

-- Changed keys ([{section, key, ...}], as changed_keys gives them) as ["section.key"].
create or replace function cfg_private.key_paths(changes jsonb)
returns text []
language sql immutable
set search_path = ''
as $$
    select coalesce(array_agg(c ->> 'section' || '.' || (c ->> 'key')), '{}')
    from jsonb_array_elements(changes) as c
$$;
revoke execute on function cfg_private.key_paths(jsonb) from public, anon;
grant execute on function cfg_private.key_paths(jsonb) to authenticated, service_role;

-- The impact radius of changing keys (["section.key"]; null: anything) of
-- automation_id, as the caller sees it: the automations that reference it,
-- transitively, in environment_id (null: newest versions), each with its depth, the
-- automation it is reached through (via, and the keys of via it references) and the
-- path from automation_id (paths up to depth 100), and a sentence for people.
-- security invoker: RLS leaves out what the caller cannot see.
create or replace function cfg_private.impact_report(
    automation_id uuid, keys text [], environment_id uuid, max_depth integer default null
)
returns jsonb
language plpgsql stable
-- JIT compiling these queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    origin cfg.automations;
    env_slug text;
    affected jsonb;
    names text [];
begin
    select * into origin from cfg.automations as a where a.id = impact_report.automation_id;
    select e.slug into env_slug from cfg.environments as e where e.id = impact_report.environment_id;
    with recursive r as (
        select * from cfg_private.reach(impact_report.automation_id, impact_report.environment_id, keys, max_depth)
    ),
    p (id, path) as (
        select r.automation_id, array[origin.id, r.automation_id] from r where r.depth = 1
        union all
        select r.automation_id, p.path || r.automation_id
        from p join r on r.via = p.id and r.depth = cardinality(p.path) and r.depth <= 100
    )
    select jsonb_agg(jsonb_build_object(
        'automation_id', r.automation_id, 'org_id', a.org_id, 'slug', a.slug,
        'name', cfg_private.automation_name(r.automation_id, origin.org_id),
        'depth', r.depth, 'via', r.via, 'keys', to_jsonb(r.via_keys),
        'path', (select to_jsonb(array(
            select cfg_private.automation_name(x.id, origin.org_id) from unnest(p.path) with ordinality as x (id, n) order by x.n
        )))
    ) order by r.depth, cfg_private.automation_name(r.automation_id, origin.org_id))
    into affected
    from r
    join cfg.automations as a on a.id = r.automation_id
    left join p on p.id = r.automation_id;
    affected := coalesce(affected, '[]');
    names := array(select a ->> 'name' from jsonb_array_elements(affected) as a limit 10);
    return jsonb_build_object(
        'automation_id', origin.id, 'environment', env_slug, 'keys', to_jsonb(keys),
        'count', jsonb_array_length(affected),
        'direct', (select count(*) from jsonb_array_elements(affected) as a where (a ->> 'depth')::integer = 1),
        'automations', affected,
        'summary', 'changing ' || coalesce(array_to_string(keys, ', '), origin.slug) || ' affects '
            || jsonb_array_length(affected) || ' automation' || case when jsonb_array_length(affected) = 1 then '' else 's' end
            || coalesce(' in ' || env_slug, '')
            || case when cardinality(names) > 0 then ': ' || array_to_string(names, ', ')
                || case when jsonb_array_length(affected) > 10 then ', …' else '' end else '' end
    );
end
$$;
revoke execute on function cfg_private.impact_report(uuid, text [], uuid, integer) from public, anon;
grant execute on function cfg_private.impact_report(uuid, text [], uuid, integer) to authenticated, service_role;

-- AFTER INSERT on cfg.config_versions: the new version's references, checked and
-- stored. Every write of a version (save, patch, rollback, direct write, template,
-- import, bulk patch, schedule) inserts its row through cfg_private.record_version, so
-- a trigger on that insert covers them all in their transaction without touching
-- any caller. A reference to an entry that does not exist or that the writer cannot
-- see (an org they are not a member of) is PT422 with its path; so is a cycle.
-- security definer: it resolves slugs in every org the writer belongs to and walks
-- the whole graph (a cycle through an org the writer cannot see is still a cycle).
create or replace function cfg_private.extract_references()
returns trigger
language plpgsql
security definer
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    refs jsonb;
    problems jsonb;
    target uuid;
    links jsonb;
    path uuid [];
    cycle uuid [];
    names text [];
begin
    -- Most content references nothing: one scan of its text decides.
    if position('ref' in new.content::text) = 0 then
        return null;
    end if;
    with found as (
        select r.*
        from jsonb_each(new.content -> 'sections') as s
        cross join jsonb_each(s.value -> 'entries') as e
        cross join lateral cfg_private.references_in(e.value -> 'value', 'sections.' || s.key || '.entries.' || e.key || '.value') as r
        where (e.value -> 'secret') is distinct from 'true'::jsonb and position('ref' in (e.value -> 'value')::text) > 0
    ),
    parsed as (
        select f.*, regexp_match(f.ref, '^(?:([a-z0-9][a-z0-9-]*):)?([a-z0-9][a-z0-9-]*)(?:/(.+))?$') as m
        from found as f
    ),
    targets as (
        select p.*, a.org_id as to_org_id, a.id as to_automation_id,
            case when a.id = new.automation_id then new.content else (
                select v.content from cfg.config_versions as v where v.automation_id = a.id order by v.version desc limit 1
            ) end as to_content
        from parsed as p
        left join cfg.orgs as o
            on o.slug = coalesce(p.m[1], (select x.slug from cfg.orgs as x where x.id = new.org_id))
            -- Another org only for its members: otherwise it does not exist.
            and (o.id = new.org_id or cfg_private.is_service() or cfg_private.org_role(o.id) is not null)
        left join cfg.automations as a on a.org_id = o.id and a.slug = p.m[2]
    )
    select jsonb_agg(jsonb_build_object(
        'path', t.path, 'ref', t.ref,
        'problem', coalesce(t.problem, case
            when t.m is null then 'malformed reference ' || quote_literal(left(t.ref, 200))
                || ': write [org:]automation[/section.key]'
            when not t.whole and t.m[3] is null then 'a reference inside a string needs a key: ${ref:automation/section.key}'
            when t.to_automation_id is null then 'automation ' || quote_literal(coalesce(t.m[1] || ':', '') || t.m[2])
                || ' not found (or you are not a member of its org)'
            when t.m[3] is not null and k.key is null then quote_literal(t.m[3]) || ' is not an entry of '
                || quote_literal(t.m[2]) || ' (write section.key)'
        end),
        'to_org_id', t.to_org_id, 'to_automation_id', t.to_automation_id, 'to_section', k.section, 'to_key', k.key,
        'kind', case when t.m[3] is null then 'declared'
            when (t.to_content -> 'sections' -> k.section -> 'entries' -> k.key -> 'secret') = 'true'::jsonb then 'secret'
            else 'value' end
    ))
    into refs
    from targets as t
    -- The entry: the first dot that splits the key path into an existing section and key.
    left join lateral (
        select left(t.m[3], d.pos - 1) as section, substr(t.m[3], d.pos + 1) as key
        from generate_series(1, length(t.m[3])) as d (pos)
        where substr(t.m[3], d.pos, 1) = '.'
            and t.to_content -> 'sections' -> left(t.m[3], d.pos - 1) -> 'entries' ? substr(t.m[3], d.pos + 1)
        order by d.pos
        limit 1
    ) as k on t.m[3] is not null;
    if refs is null then
        return null;
    end if;

    select jsonb_agg(jsonb_build_object('path', f ->> 'path', 'message', f ->> 'problem') order by f ->> 'path')
    into problems
    from jsonb_array_elements(refs) as f where f ->> 'problem' is not null;
    if problems is not null then
        raise exception 'invalid reference at %: %', problems -> 0 ->> 'path', problems -> 0 ->> 'message'
            using errcode = 'PT422', detail = jsonb_build_object('errors', problems)::text;
    end if;

    insert into cfg.version_references (
        org_id, version_id, from_automation_id, version, to_org_id, to_automation_id, to_section, to_key, kind, path, ref
    )
    select new.org_id, new.id, new.automation_id, new.version, f.to_org_id, f.to_automation_id,
        f.to_section, f.to_key, f.kind, f.path, f.ref
    from jsonb_to_recordset(refs) as f (
        path text, ref text, to_org_id uuid, to_automation_id uuid, to_section text, to_key text, kind text
    );

    -- A cycle: an automation it references reaches it back (through newest versions,
    -- its own new edges included). A recursive query over (automation, the one it was
    -- reached from) with UNION keeps each pair once, so it is bounded by the edges: a
    -- chain of 10,000 is 10,000 index lookups. Not expanded past the new version's
    -- automation, so the links lead back from it to target without a loop.
    for target in select distinct (f ->> 'to_automation_id')::uuid from jsonb_array_elements(refs) as f loop
        with recursive down (id, parent) as (
            select target, null::uuid
            union
            select e.to_automation_id, d.id
            from down as d
            join cfg.version_references as e on e.from_automation_id = d.id
                and e.version = (select max(v.version) from cfg.config_versions as v where v.automation_id = d.id)
            where d.id <> new.automation_id
        )
        select jsonb_object_agg(d.id, d.parent) into links from down as d where d.parent is not null;
        if target = new.automation_id or coalesce(links ? new.automation_id::text, false) then
            path := array[new.automation_id];
            while path[1] <> target and cardinality(path) <= 1000000 loop
                path := (links ->> path[1]::text)::uuid || path;
            end loop;
            cycle := new.automation_id || path;
            names := array(
                select coalesce(cfg_private.automation_name(c.id, new.org_id), '(hidden)')
                from unnest(cycle) with ordinality as c (id, n) order by c.n
            );
            raise exception 'reference cycle: %', array_to_string(names, ' -> ')
                using errcode = 'PT422', detail = jsonb_build_object(
                    'errors', jsonb_build_array(jsonb_build_object(
                        'path', (select min(f ->> 'path') from jsonb_array_elements(refs) as f where (f ->> 'to_automation_id')::uuid = target),
                        'message', 'reference cycle: ' || array_to_string(names, ' -> ')
                    )),
                    'cycle', to_jsonb(names)
                )::text;
        end if;
    end loop;
    return null;
end
$$;
revoke execute on function cfg_private.extract_references() from public, anon, authenticated, service_role;

drop trigger if exists extract_references on cfg.config_versions;
create trigger extract_references after insert on cfg.config_versions
for each row execute function cfg_private.extract_references();

-- The automations that reference automation_id directly in the newest versions, in
-- its org, and for changed ([{section, key}]) only those referencing a changed key
-- (a declared dependency always counts): {count, automation_ids}.
-- security definer: it runs while the event is written, whoever writes it.
create or replace function cfg_private.directly_affected(automation_id uuid, changed jsonb)
returns jsonb
language plpgsql stable security definer
-- JIT compiling these queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    ids uuid [];
begin
    select array_agg(distinct e.from_automation_id order by e.from_automation_id) into ids
    from cfg.version_references as e
    where e.to_automation_id = directly_affected.automation_id
        and e.org_id = e.to_org_id
        and e.version = (select max(v.version) from cfg.config_versions as v where v.automation_id = e.from_automation_id)
        and (e.kind = 'declared' or exists (
            select 1 from jsonb_array_elements(changed) as c
            where c ->> 'section' = e.to_section and c ->> 'key' = e.to_key
        ));
    return jsonb_build_object('count', coalesce(cardinality(ids), 0), 'automation_ids', coalesce(to_jsonb(ids), '[]'));
end
$$;
revoke execute on function cfg_private.directly_affected(uuid, jsonb) from public, anon, authenticated, service_role;

-- BEFORE INSERT on cfg_private.events: config.saved and config.rolled_back carry
-- "affected", the automations of the org that reference a changed key directly. Here,
-- not in record_version, so that every writer's event has it.
create or replace function cfg_private.event_affected()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.payload := new.payload || jsonb_build_object(
        'affected', cfg_private.directly_affected(new.automation_id, coalesce(new.payload -> 'changes', '[]'))
    );
    return new;
end
$$;
revoke execute on function cfg_private.event_affected() from public, anon, authenticated, service_role;

drop trigger if exists event_affected on cfg_private.events;
create trigger event_affected before insert on cfg_private.events
for each row when (new.type in ('config.saved', 'config.rolled_back'))
execute function cfg_private.event_affected();

-- Audited, except when a versioned write records them: its version row is the record.
select cfg_private.register_table('cfg.version_references', versioned => 'audit');
