-- =============================================================================
-- The dependency graph, the API: the impact radius, resolved content, the graph of
-- an org (now, in an environment, or around a past version), and deleting an
-- automation others reference. The model: functions/44_graph.sql.
-- =============================================================================

-- The impact radius of changing keys (["section.key"]; null: any) of automation_id in
-- env (null: the newest versions), one page at a time: max_rows (1 to 1000) in order
-- of depth then name, after cursor (the next_cursor of the previous page,
-- "<depth>:<name>"); cfg_private.impact_report's answer.
-- security invoker: the caller sees what RLS shows them (a member of only one of two
-- orgs does not see the references between them).
create or replace function cfg.impact(
    automation_id uuid, keys text [] default null, env text default null, max_depth integer default null,
    max_rows integer default 100, cursor text default null
)
returns jsonb
language plpgsql
-- JIT compiling these queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, 'viewer', 'reading the impact radius');
    after text [] := case when length(cursor) <= 300 then regexp_match(cursor, '^([1-9][0-9]{0,8}):(.+)$') end;
    problems jsonb;
begin
    select jsonb_agg(jsonb_build_object('path', 'keys[' || (k.n - 1) || ']', 'message', 'a key is "section.key"'))
    into problems
    from unnest(keys) with ordinality as k (key, n)
    where k.key is null or k.key !~ '^[A-Za-z0-9_.-]+\.[A-Za-z0-9_.-]+$' or length(k.key) > 301;
    problems := coalesce(problems, '[]') || case when max_depth < 1 then
        jsonb_build_object('path', 'max_depth', 'message', 'max_depth is at least 1') else '[]' end
        || case when max_rows is null or max_rows not between 1 and 1000 then
        jsonb_build_object('path', 'max_rows', 'message', 'max_rows is between 1 and 1000') else '[]' end
        || case when cursor is not null and after is null then
        jsonb_build_object('path', 'cursor', 'message', 'a cursor is the next_cursor of a previous answer') else '[]' end;
    if problems <> '[]' then
        raise exception 'invalid impact query: % %', problems -> 0 ->> 'path', problems -> 0 ->> 'message'
            using errcode = 'PT422', detail = jsonb_build_object('errors', problems)::text;
    end if;
    return cfg_private.impact_report(
        target.id, keys, case when env is not null then (cfg_private.environment_by_slug(target.org_id, env)).id end,
        max_depth, max_rows, coalesce(after[1]::integer, 0), after[2]
    );
end
$$;
revoke execute on function cfg.impact(uuid, text [], text, integer, integer, text) from public, anon;
grant execute on function cfg.impact(uuid, text [], text, integer, integer, text) to authenticated, service_role;

-- value with its references replaced from lookup ({ref: {"value": v}}; a reference
-- without a value there stays as written).
create or replace function cfg_private.resolve_value(value jsonb, lookup jsonb)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
begin
    case jsonb_typeof(value)
    when 'object' then
        if value ? 'ref' and (value - 'ref') = '{}' then
            return coalesce(lookup -> (value ->> 'ref') -> 'value', value);
        end if;
        return (select jsonb_object_agg(o.key, cfg_private.resolve_value(o.value, lookup)) from jsonb_each(value) as o);
    when 'array' then
        return (
            select coalesce(jsonb_agg(cfg_private.resolve_value(a.value, lookup) order by a.n), '[]')
            from jsonb_array_elements(value) with ordinality as a (value, n)
        );
    when 'string' then
        if position('{ref:' in value #>> '{}') = 0 then
            return value;
        end if;
        -- Each piece of text between references, followed by the reference after it
        -- ($ = escaped: written without one $), in one query.
        return to_jsonb((
            select string_agg(p.piece || coalesce(case
                when t.m[1] = '$' or lookup -> t.m[2] -> 'value' is null then '${ref:' || t.m[2] || '}'
                when jsonb_typeof(lookup -> t.m[2] -> 'value') = 'string' then lookup -> t.m[2] ->> 'value'
                else (lookup -> t.m[2] -> 'value')::text
            end, ''), '' order by p.n)
            from regexp_split_to_table(value #>> '{}', '\$\$?\{ref:[^}]*\}') with ordinality as p (piece, n)
            left join regexp_matches(value #>> '{}', '\$(\$?)\{ref:([^}]*)\}', 'g') with ordinality as t (m, n) on t.n = p.n
        ));
    else
        return value;
    end case;
end
$$;
revoke execute on function cfg_private.resolve_value(jsonb, jsonb) from public, anon;
grant execute on function cfg_private.resolve_value(jsonb, jsonb) to authenticated, service_role;

-- The content automation_id runs in env, with its references resolved against what
-- each referenced automation runs in env: {automation_id, environment, version,
-- content, unresolved: [{path, ref, message}], masked: [{path, ref}]}. A referenced
-- secret stays masked ({"ref": ...} as written) unless reveal => true and the caller
-- may reveal it (cfg.reveal_secret's rule: the org's secret_reveal_role), which is
-- then audited and announced as a reveal. Its own secrets stay masked, as in get_config.
-- One query reads every reference with what its target runs (each target's version
-- once); only the entries holding references are rewritten.
-- security invoker: it reads what the caller may read; a reference into an org the
-- caller is not a member of is unresolved.
create or replace function cfg.resolve_config(automation_id uuid, env text, reveal boolean default false)
returns jsonb
language plpgsql
-- JIT compiling these queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, 'viewer', 'resolving config');
    -- What it runs in env: env_id, id, version, content.
    running record;
    edges_seen integer;
    secrets jsonb;
    secret jsonb;
    lookup jsonb;
    unresolved jsonb;
    masked jsonb := '[]';
    content jsonb;
    revealed jsonb;
begin
    if env is null then
        raise exception 'name the environment to resolve in'
            using errcode = 'PT422', detail = jsonb_build_object('errors', jsonb_build_array(
                jsonb_build_object('path', 'env', 'message', 'required'))
            )::text;
    end if;
    select e.id as env_id, v.id, v.version, v.content into running
    from cfg.environments as e
    join cfg.deployments as d on d.environment_id = e.id and d.automation_id = target.id
    join cfg.config_versions as v on v.id = d.version_id
    where e.org_id = target.org_id and e.slug = env;
    if running.id is null then
        -- PT404 for an environment that does not exist, as everywhere.
        perform cfg_private.environment_by_slug(target.org_id, env);
        raise exception '% runs nothing in %', target.slug, env
            using errcode = 'PT404', detail = jsonb_build_object('automation_id', target.id, 'environment', env)::text;
    end if;

    -- What each reference of the running version names, in what its target runs in
    -- the same environment (an environment of the target's org with the same slug).
    with refs as (
        select r.path, r.ref, r.kind, r.to_automation_id, r.to_org_id, r.to_section, r.to_key
        from cfg.version_references as r
        where r.version_id = running.id
    ),
    targets as materialized (
        select t.to_automation_id, tv.version, tv.content -> 'sections' as sections
        from (select distinct refs.to_automation_id, refs.to_org_id from refs where refs.kind <> 'declared') as t
        -- The environment is looked up only for a target in another org.
        left join cfg.deployments as td on td.automation_id = t.to_automation_id and td.environment_id = case
            when t.to_org_id = target.org_id then running.env_id
            else (select te.id from cfg.environments as te where te.org_id = t.to_org_id and te.slug = env)
        end
        left join cfg.config_versions as tv on tv.id = td.version_id
    ),
    named as (
        select r.*, t.version, t.sections -> r.to_section -> 'entries' -> r.to_key as entry
        from refs as r join targets as t on t.to_automation_id = r.to_automation_id
        where r.kind <> 'declared'
    )
    select
        (select count(*) from refs),
        coalesce(jsonb_object_agg(n.ref, jsonb_build_object('value', n.entry -> 'value'))
            filter (where n.entry is not null and n.kind <> 'secret'), '{}'),
        coalesce(jsonb_agg(jsonb_build_object('path', n.path, 'ref', n.ref, 'message',
            case when n.version is null then 'the referenced automation runs nothing in ' || env
                else 'the referenced entry is not in the version running in ' || env end
        ) order by n.path) filter (where n.entry is null), '[]'),
        coalesce(jsonb_agg(jsonb_build_object('path', n.path, 'ref', n.ref, 'automation_id', n.to_automation_id,
            'section', n.to_section, 'key', n.to_key, 'version', n.version
        ) order by n.path) filter (where n.entry is not null and n.kind = 'secret'), '[]')
    into edges_seen, lookup, unresolved, secrets
    from named as n;
    -- A referenced secret: revealed if asked and allowed, else masked.
    for secret in select s from jsonb_array_elements(secrets) as s loop
        revealed := null;
        if reveal then
            begin
                revealed := cfg_private.reveal_secret((secret ->> 'automation_id')::uuid, secret ->> 'section',
                    secret ->> 'key', (secret ->> 'version')::integer);
            exception when sqlstate 'PT403' or sqlstate 'PT404' then
                revealed := null;
            end;
        end if;
        if revealed is null or revealed ? 'pending' then
            masked := masked || jsonb_build_object('path', secret -> 'path', 'ref', secret -> 'ref');
        else
            lookup := lookup || jsonb_build_object(secret ->> 'ref', jsonb_build_object('value', revealed -> 'value'));
        end if;
    end loop;
    -- References without an edge the caller sees (RLS hides it, or its target was
    -- deleted): unresolved, by the text. Parsed only when the content's reference
    -- marks outnumber the edges seen.
    if cfg_private.reference_marks(running.content) > edges_seen then
        unresolved := unresolved || coalesce((
            select jsonb_agg(jsonb_build_object('path', r.path, 'ref', r.ref,
                'message', 'not found (or you are not a member of its org)') order by r.path)
            from jsonb_each(running.content -> 'sections') as s
            cross join jsonb_each(s.value -> 'entries') as e
            cross join lateral cfg_private.references_in(e.value -> 'value', 'sections.' || s.key || '.entries.' || e.key || '.value') as r
            where (e.value -> 'secret') is distinct from 'true'::jsonb and cfg_private.reference_marks(e.value -> 'value') > 0
                and r.ref like '%/%' and not exists (
                    select 1 from cfg.version_references as v where v.version_id = running.id and v.path = r.path and v.ref = r.ref
                )
        ), '[]');
    end if;

    -- The content as get_config gives it (cfg_private.snapshot_as_content: entries
    -- without their digest), built in one pass with the values holding references
    -- resolved (a value whose text has no "ref" holds none).
    content := jsonb_build_object('sections', coalesce((
        select jsonb_object_agg(s.key, (s.value - 'entries') || jsonb_build_object('entries', coalesce((
            select jsonb_object_agg(e.key, case
                when lookup <> '{}' and (e.value -> 'secret') is distinct from 'true'::jsonb
                    and strpos((e.value -> 'value')::text, 'ref') > 0
                then jsonb_set(e.value - 'digest', '{value}', cfg_private.resolve_value(e.value -> 'value', lookup))
                else e.value - 'digest' end)
            from jsonb_each(s.value -> 'entries') as e
        ), '{}')))
        from jsonb_each(running.content -> 'sections') as s
    ), '{}'));
    return jsonb_build_object(
        'automation_id', target.id, 'environment', env, 'version', running.version,
        'content', content, 'unresolved', unresolved, 'masked', masked
    );
end
$$;
revoke execute on function cfg.resolve_config(uuid, text, boolean) from public, anon;
grant execute on function cfg.resolve_config(uuid, text, boolean) to authenticated, service_role;

-- The dependency graph of an org: {nodes: [{automation_id, org_id, slug, name, label,
-- type, status, badge, external}], edges: [{from, to, kind, keys}]}. Edges of the
-- newest versions, or of what runs in env; with version (and automation_id), the
-- edges of that version of automation_id. Nodes: the org's automations, and those of
-- other orgs (external) an edge reaches, when the caller is a member there too.
-- badge: the validation status in env (without env, the worst across environments):
-- valid, warnings, errors, or unchecked.
-- security invoker: RLS decides what the caller sees.
create or replace function cfg.dependency_graph(
    org_id uuid, env text default null, version integer default null, automation_id uuid default null
)
returns jsonb
language plpgsql
-- JIT compiling these queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    env_id uuid;
    around cfg.automations;
    past uuid;
    edges jsonb;
    nodes jsonb;
begin
    perform cfg_private.require_role(org_id, 'viewer', 'reading the dependency graph');
    if env is not null then
        env_id := (cfg_private.environment_by_slug(org_id, env)).id;
    end if;
    if version is not null then
        if automation_id is null then
            raise exception 'a past version is a version of an automation: give automation_id'
                using errcode = 'PT422', detail = jsonb_build_object('errors', jsonb_build_array(
                    jsonb_build_object('path', 'automation_id', 'message', 'required with version'))
                )::text;
        end if;
        around := cfg_private.automation_for(automation_id, 'viewer', 'reading the dependency graph');
        select v.id into past from cfg.config_versions as v
        where v.automation_id = around.id and v.version = dependency_graph.version and v.org_id = dependency_graph.org_id;
        if past is null then
            raise exception 'version % of this automation does not exist', version
                using errcode = 'PT404', detail = jsonb_build_object('automation_id', automation_id, 'version', version)::text;
        end if;
    end if;

    select coalesce(jsonb_agg(jsonb_build_object(
        'from', g.from_automation_id, 'to', g.to_automation_id, 'kind', g.kind, 'keys', g.keys
    ) order by g.from_automation_id, g.to_automation_id, g.kind), '[]')
    into edges
    from (
        select r.from_automation_id, r.to_automation_id, r.kind,
            coalesce(jsonb_agg(distinct r.to_section || '.' || r.to_key) filter (where r.to_key is not null), '[]') as keys
        from cfg.version_references as r
        where case
            when past is not null then r.version_id = past
            else (r.org_id = dependency_graph.org_id or r.to_org_id = dependency_graph.org_id)
                and case
                    when env_id is null then r.newest
                    else r.version_id = (select d.version_id from cfg.deployments as d
                          where d.automation_id = r.from_automation_id and d.environment_id = env_id)
                end
        end
        group by 1, 2, 3
    ) as g;

    select coalesce(jsonb_agg(jsonb_build_object(
        'automation_id', a.id, 'org_id', a.org_id, 'slug', a.slug, 'name', a.name,
        'label', n.name,
        'type', a.type, 'status', a.status, 'external', a.org_id <> dependency_graph.org_id,
        'badge', coalesce((
            select case when bool_or(vs.status = 'errors') then 'errors'
                when bool_or(vs.status = 'warnings') then 'warnings' else 'valid' end
            from cfg.validation_status as vs
            where vs.automation_id = a.id and (env_id is null or vs.environment_id = env_id)
            having count(*) > 0
        ), 'unchecked')
    ) order by a.org_id <> dependency_graph.org_id, a.slug), '[]')
    into nodes
    from cfg_private.automation_names(array(
        select a.id from cfg.automations as a
        where (past is null and a.org_id = dependency_graph.org_id)
            or a.id in (select (e ->> 'from')::uuid from jsonb_array_elements(edges) as e
                        union select (e ->> 'to')::uuid from jsonb_array_elements(edges) as e)
            or a.id = around.id
    ), dependency_graph.org_id) as n
    join cfg.automations as a on a.id = n.automation_id;
    return jsonb_build_object('org_id', org_id, 'environment', env, 'version', version,
                              'automation_id', around.id, 'nodes', nodes, 'edges', edges);
end
$$;
revoke execute on function cfg.dependency_graph(uuid, text, integer, uuid) from public, anon;
grant execute on function cfg.dependency_graph(uuid, text, integer, uuid) to authenticated, service_role;
