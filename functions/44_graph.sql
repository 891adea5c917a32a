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

-- How many reference marks value's text holds: "ref" keys and "{ref:" (in jsonb text a
-- key is always written "key": and a quote inside a string is escaped, so a value's
-- text cannot fake the first). At least its number of references: 0 spares parsing a
-- value that holds none (most of them), and a count no higher than the edges seen
-- means each reference has its edge.
create or replace function cfg_private.reference_marks(value jsonb)
returns integer
language plpgsql immutable
set search_path = ''
as $$
declare
    t text := value::text;
begin
    return (length(t) - length(replace(t, '"ref":', ''))) / 6 + (length(t) - length(replace(t, '{ref:', ''))) / 5;
end
$$;
revoke execute on function cfg_private.reference_marks(jsonb) from public, anon;
grant execute on function cfg_private.reference_marks(jsonb) to authenticated, service_role;

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

-- The edges into targets that count: those of each referencing automation's newest
-- version (cfg.version_references.newest), or (environment_id) of the version it runs
-- there. What the walk follows, and what the impact report reads the keys of.
-- security invoker: under RLS a caller sees only the edges between orgs they are a
-- member of (a definer caller sees them all).
create or replace function cfg_private.edges_into(targets uuid [], environment_id uuid)
returns table (from_automation_id uuid, to_automation_id uuid, to_section text, to_key text, kind text)
language plpgsql stable
-- JIT compiling these queries costs far more than running them.
set jit = off
-- One plan for every call (the plan does not depend on the arrays).
set plan_cache_mode = force_generic_plan
set search_path = ''
as $$
begin
    return query
    select e.*
    from unnest(targets) as t (id)
    -- An index range per target, whatever the planner thinks of the table's size:
    -- lateral, and offset 0 so that it is not flattened into a join that may scan the
    -- whole table.
    cross join lateral (
        select e.from_automation_id, e.to_automation_id, e.to_section, e.to_key, e.kind
        from cfg.version_references as e
        where edges_into.environment_id is null and e.newest and e.to_automation_id = t.id
        union all
        select e.from_automation_id, e.to_automation_id, e.to_section, e.to_key, e.kind
        from cfg.version_references as e
        join cfg.deployments as d on d.version_id = e.version_id and d.environment_id = edges_into.environment_id
        where edges_into.environment_id is not null and e.to_automation_id = t.id
        offset 0
    ) as e;
end
$$;
revoke execute on function cfg_private.edges_into(uuid [], uuid) from public, anon;
grant execute on function cfg_private.edges_into(uuid [], uuid) to authenticated, service_role;

-- The automations that reference start, transitively (its dependents: the impact
-- radius): the one walk behind impact, the dry runs' and the promote preview's impact,
-- the delete check and an event's affected list. Breadth first, one query per level
-- over the edges into the level above (cfg_private.edges_into, in environment_id or
-- now), each automation once, at its least depth (no recursion, so no stack to blow;
-- a level costs its edges plus a pass over the automations visited so far). keys
-- (["section.key"]) filter the first level (declared: a declared dependency counts
-- too); max_depth bounds the levels. via = the automation it was reached through, the
-- first by id of those at the level above (one path per automation, as breadth first
-- finds it). enough: stop after the first level at which more than that many have
-- been found deeper than past_depth (a page of the radius in order of depth: the
-- levels walked are complete); null: the whole radius.
-- security invoker: the caller walks the edges RLS shows them.
create or replace function cfg_private.reach(
    start uuid,
    environment_id uuid default null,
    keys text [] default null,
    max_depth integer default null,
    declared boolean default false,
    enough integer default null,
    past_depth integer default 0
)
returns table (automation_id uuid, depth integer, via uuid)
language plpgsql stable
-- JIT compiling these queries costs far more than running them.
set jit = off
-- One plan for every level: a plan made for each level's arrays would cost more than
-- running it (and the plan does not depend on them).
set plan_cache_mode = force_generic_plan
set search_path = ''
as $$
declare
    frontier uuid [] := array[start];
    visited uuid [] := array[start];
    level integer := 0;
    vias uuid [];
    beyond integer := 0;
begin
    while cardinality(frontier) > 0 and level < coalesce(max_depth, 2147483647)
        and beyond <= coalesce(enough, 2147483647) loop
        level := level + 1;
        -- Each new automation once, through the first (by id) it references at this level.
        select coalesce(array_agg(f.next), '{}'), array_agg(f.via)
        into frontier, vias
        from (
            select distinct on (e.from_automation_id) e.from_automation_id as next, e.to_automation_id as via
            from cfg_private.edges_into(frontier, reach.environment_id) as e
            where (level > 1 or reach.keys is null or e.to_section || '.' || e.to_key = any(reach.keys)
                    or (reach.declared and e.kind = 'declared'))
                -- Not visited yet: compared one by one while the frontier is small (a
                -- chain builds no set per level), in a hash built once per level when it
                -- is large (not in: always a hashed subplan, whatever the estimates).
                and e.from_automation_id <> all(case when cardinality(frontier) <= 8 then visited else '{}' end)
                and e.from_automation_id not in (
                    select v.id from unnest(case when cardinality(frontier) > 8 then visited end) as v (id)
                )
            order by e.from_automation_id, e.to_automation_id
        ) as f;
        return query select n.id, level, n.via from unnest(frontier, vias) as n (id, via);
        visited := visited || frontier;
        if level > past_depth then
            beyond := beyond + cardinality(frontier);
        end if;
    end loop;
end
$$;
revoke execute on function cfg_private.reach(uuid, uuid, text [], integer, boolean, integer, integer) from public, anon;
grant execute on function cfg_private.reach(uuid, uuid, text [], integer, boolean, integer, integer)
to authenticated, service_role;

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

-- How automations are named from an org's point of view (seen_from): the slug for one
-- of that org, "org:slug" for another org's; one row per id, n its position in ids
-- (the rest null for an id that does not exist, or that the caller cannot see).
create or replace function cfg_private.automation_names(ids uuid [], seen_from uuid)
returns table (n bigint, automation_id uuid, org_id uuid, slug text, name text)
language plpgsql stable
set search_path = ''
as $$
begin
    return query
    select i.n, a.id, a.org_id, a.slug, case when a.org_id = seen_from then a.slug else o.slug || ':' || a.slug end
    from unnest(ids) with ordinality as i (id, n)
    left join cfg.automations as a on a.id = i.id
    left join cfg.orgs as o on o.id = a.org_id;
end
$$;
revoke execute on function cfg_private.automation_names(uuid [], uuid) from public, anon;
grant execute on function cfg_private.automation_names(uuid [], uuid) to authenticated, service_role;

-- The impact radius of changing keys (["section.key"]; null: anything) of
-- automation_id, as the caller sees it, one page at a time: the automations that
-- reference it, transitively, in environment_id (null: newest versions), in order of
-- depth then name, max_rows of them after the cursor (after_depth, after_name), each
-- with its depth, the automation it is reached through (via, and the keys of via it
-- references) and the path of names from automation_id along via (up to depth 100);
-- how many were found, and a sentence for people. The walk stops at the level that
-- fills the page (cfg_private.reach's enough), so a huge radius costs a page, not its
-- size: count is then a lower bound (truncated). Names are read once for the
-- automations found, keys and paths only for the page.
-- security invoker: RLS leaves out what the caller cannot see.
create or replace function cfg_private.impact_report(
    automation_id uuid, keys text [], environment_id uuid, max_depth integer default null,
    -- cfg.impact's page by default.
    max_rows integer default 100, after_depth integer default 0, after_name text default null
)
returns jsonb
language plpgsql stable
-- JIT compiling these queries costs far more than running them.
set jit = off
-- Planning the query for each call's values costs more than its generic plan does.
set plan_cache_mode = force_generic_plan
set search_path = ''
as $$
declare
    origin cfg.automations;
    env_slug text;
    total integer;
    direct integer;
    beyond integer;
    after_cursor integer;
    deepest integer;
    first_names text [];
    listed jsonb;
    last_listed jsonb;
    truncated boolean;
begin
    select * into origin from cfg.automations as a where a.id = impact_report.automation_id;
    select e.slug into env_slug from cfg.environments as e where e.id = impact_report.environment_id;
    with recursive reached as materialized (
        select * from cfg_private.reach(
            impact_report.automation_id, impact_report.environment_id, keys, max_depth,
            enough => max_rows, past_depth => after_depth
        )
    ),
    named as materialized (
        select x.automation_id, x.depth, x.via, a.org_id, a.slug, a.name
        from reached as x
        join cfg_private.automation_names(array(select y.automation_id from reached as y), origin.org_id) as a
            on a.automation_id = x.automation_id
    ),
    page as materialized (
        select n.* from named as n
        where (n.depth, n.name) > (after_depth, coalesce(after_name, ''))
        order by n.depth, n.name
        limit max_rows
    ),
    -- Each listed automation's path, followed back along via (one level up a step).
    up (automation_id, at, path) as (
        select p.automation_id, p.via, array[p.name] from page as p where p.depth <= 100
        union all
        select u.automation_id, n.via, n.name || u.path
        from up as u join named as n on n.automation_id = u.at
    ),
    -- The keys of its via each listed automation references (at the first level, of keys).
    used as (
        select e.from_automation_id as automation_id, jsonb_agg(distinct e.to_section || '.' || e.to_key) as keys
        from cfg_private.edges_into(array(select distinct p.via from page as p), impact_report.environment_id) as e
        join page as p on p.automation_id = e.from_automation_id and p.via = e.to_automation_id
        where e.to_key is not null
            and (p.depth > 1 or impact_report.keys is null or e.to_section || '.' || e.to_key = any(impact_report.keys))
        group by 1
    )
    select
        (select count(*) from named),
        (select count(*) from named as n where n.depth = 1),
        (select count(*) from named as n where n.depth > after_depth),
        (select count(*) from named as n where (n.depth, n.name) > (after_depth, coalesce(after_name, ''))),
        (select max(n.depth) from named as n),
        array(select n.name from named as n order by n.depth, n.name limit 10),
        (select jsonb_agg(jsonb_build_object(
            'automation_id', p.automation_id, 'org_id', p.org_id, 'slug', p.slug, 'name', p.name,
            'depth', p.depth, 'via', p.via, 'keys', coalesce(k.keys, '[]'),
            'path', coalesce(to_jsonb(origin.slug || u.path), '[]')
        ) order by p.depth, p.name)
        from page as p
        left join up as u on u.automation_id = p.automation_id and u.at = origin.id
        left join used as k on k.automation_id = p.automation_id)
    into total, direct, beyond, after_cursor, deepest, first_names, listed;
    -- Stopped by the page, not by max_depth nor by the end of the radius: there may be more.
    truncated := beyond > max_rows and deepest < coalesce(max_depth, 2147483647);
    last_listed := listed -> -1;
    return jsonb_build_object(
        'automation_id', origin.id, 'environment', env_slug, 'keys', to_jsonb(keys),
        'count', total, 'direct', direct, 'truncated', truncated, 'automations', coalesce(listed, '[]'),
        'next_cursor', case when after_cursor > max_rows then (last_listed ->> 'depth') || ':' || (last_listed ->> 'name') end,
        'summary', 'changing ' || coalesce(array_to_string(keys, ', '), origin.slug) || ' affects '
            || case when truncated then 'at least ' else '' end
            || total || ' automation' || case when total = 1 then '' else 's' end
            || coalesce(' in ' || env_slug, '')
            || case when total > 0 then ': ' || array_to_string(first_names, ', ')
                || case when total > 10 or truncated then ', …' else '' end else '' end
    );
end
$$;
revoke execute on function cfg_private.impact_report(uuid, text [], uuid, integer, integer, integer, text) from public, anon;
grant execute on function cfg_private.impact_report(uuid, text [], uuid, integer, integer, integer, text)
to authenticated, service_role;

-- AFTER INSERT on cfg.config_versions: the new version's references, checked and
-- stored, and the previous version's edges no longer newest. Every write of a version
-- (save, patch, rollback, direct write, template, import, bulk patch, schedule)
-- inserts its row through cfg_private.record_version, so a trigger on that insert
-- covers them all in their transaction without touching any caller. A reference to
-- an entry that does not exist or that the writer cannot see (an org they are not a
-- member of) is PT422 with its path; so is a cycle. Set-based: each referenced
-- automation is looked up once, whatever the number of references to it.
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
    own_org_slug text;
    refs jsonb;
    problems jsonb;
    target uuid;
    links jsonb;
    path uuid [];
    cycle uuid [];
    names text [];
begin
    update cfg.version_references as r set newest = false
    where r.from_automation_id = new.automation_id and r.newest;
    -- Most content references nothing: one scan of its text decides.
    if cfg_private.reference_marks(new.content) = 0 then
        return null;
    end if;
    own_org_slug := (select o.slug from cfg.orgs as o where o.id = new.org_id);
    with found as (
        select r.*, regexp_match(r.ref, '^(?:([a-z0-9][a-z0-9-]*):)?([a-z0-9][a-z0-9-]*)(?:/(.+))?$') as m
        from jsonb_each(new.content -> 'sections') as s
        cross join jsonb_each(s.value -> 'entries') as e
        cross join lateral cfg_private.references_in(e.value -> 'value', 'sections.' || s.key || '.entries.' || e.key || '.value') as r
        where (e.value -> 'secret') is distinct from 'true'::jsonb and cfg_private.reference_marks(e.value -> 'value') > 0
    ),
    -- Each automation referenced, once: its ids and the newest content's sections.
    targets as materialized (
        select n.org_slug, n.slug, a.org_id, a.id,
            case when a.id = new.automation_id then new.content else (
                select v.content from cfg.config_versions as v where v.automation_id = a.id order by v.version desc limit 1
            ) end -> 'sections' as sections
        from (select distinct f.m[1] as org_slug, f.m[2] as slug from found as f where f.m is not null) as n
        left join cfg.orgs as o
            on o.slug = coalesce(n.org_slug, own_org_slug)
            -- Another org only for its members: otherwise it does not exist.
            and (o.id = new.org_id or cfg_private.is_service() or cfg_private.org_role(o.id) is not null)
        left join cfg.automations as a on a.org_id = o.id and a.slug = n.slug
    )
    select jsonb_agg(jsonb_build_object(
        'path', f.path, 'ref', f.ref,
        'problem', coalesce(f.problem, case
            when f.m is null then 'malformed reference ' || quote_literal(left(f.ref, 200))
                || ': write [org:]automation[/section.key]'
            when not f.whole and f.m[3] is null then 'a reference inside a string needs a key: ${ref:automation/section.key}'
            when t.id is null then 'automation ' || quote_literal(coalesce(f.m[1] || ':', '') || f.m[2])
                || ' not found (or you are not a member of its org)'
            when f.m[3] is not null and k.key is null then quote_literal(f.m[3]) || ' is not an entry of '
                || quote_literal(f.m[2]) || ' (write section.key)'
        end),
        'to_org_id', t.org_id, 'to_automation_id', t.id, 'to_section', k.section, 'to_key', k.key,
        'kind', case when f.m[3] is null then 'declared'
            when (t.sections -> k.section -> 'entries' -> k.key -> 'secret') = 'true'::jsonb then 'secret'
            else 'value' end
    ))
    into refs
    from found as f
    left join targets as t on t.org_slug is not distinct from f.m[1] and t.slug = f.m[2]
    -- The entry: the first dot that splits the key path into an existing section and key.
    left join lateral (
        select left(f.m[3], d.pos - 1) as section, substr(f.m[3], d.pos + 1) as key
        from generate_series(1, length(f.m[3])) as d (pos)
        where substr(f.m[3], d.pos, 1) = '.'
            and t.sections -> left(f.m[3], d.pos - 1) -> 'entries' ? substr(f.m[3], d.pos + 1)
        order by d.pos
        limit 1
    ) as k on f.m[3] is not null;
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
            -- An index range per automation: lateral, and offset 0 so that the planner does
            -- not flatten it into a join that may scan the whole table at every level.
            cross join lateral (
                select e.to_automation_id from cfg.version_references as e where e.from_automation_id = d.id and e.newest
                offset 0
            ) as e
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
                select coalesce(c.name, '(hidden)') from cfg_private.automation_names(cycle, new.org_id) as c order by c.n
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
-- (a declared dependency always counts): {count, automation_ids}. The walk's first level.
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
    select array_agg(r.automation_id order by r.automation_id) into ids
    from cfg_private.reach(
        directly_affected.automation_id, keys => cfg_private.key_paths(changed), max_depth => 1, declared => true
    ) as r
    join cfg.automations as a on a.id = r.automation_id
    join cfg.automations as origin on origin.id = directly_affected.automation_id and origin.org_id = a.org_id;
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
