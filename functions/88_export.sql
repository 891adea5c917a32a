-- =============================================================================
-- Export (issue 12, item 3): the selected automations of an org as one deterministic
-- JSON document, which cfg.import_automations (89_import.sql) reads back:
--   {"format": "cfgctl.export", "format_version": 1, "org": "<slug>", "env": <slug|null>,
--    "secret_values": false, "left_out": [...],
--    "automations": [{"slug", "name", "description", "type", "status", "tags",
--                     "origin", "version", "content": {"sections": ...}}, ...]}
-- No ids, no timestamps, automations by slug, tags sorted: the same data exports the
-- same document (jsonb orders object keys itself). A secret is {"secret": true,
-- "description"} plus "external" where bound to an external vault; its value only
-- with include_secrets, for a caller allowed to reveal it, each value audited.
-- =============================================================================

-- The secret values the given versions of org_id's automations captured, for an export
-- with include_secrets: {"<version_id>": {"<section>": {"<key>": value}}}. The caller
-- must be allowed to reveal secrets in org_id (cfg.orgs.secret_reveal_role). Each value
-- read leaves a REVEAL audit row and a secret.revealed event (reason "export"), as a
-- reveal does: one per secret, so the audit of an automation and a webhook filtering
-- secret.revealed see every key that left, like any other reveal.
-- security definer: it reads Vault and writes the audit log and the outbox.
create or replace function cfg_private.export_secret_values(org_id uuid, version_ids uuid [])
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
    found jsonb := '{}';
    s record;
begin
    if not cfg_private.is_service() then
        perform cfg_private.require_role(
            export_secret_values.org_id,
            (select o.secret_reveal_role from cfg.orgs as o where o.id = export_secret_values.org_id),
            'exporting secret values'
        );
    end if;
    for s in
        select v.automation_id, v.id as version_id, v.version, vs.section, vs.key, cfg_private.secret_member_value(sv.value, vs.member)::jsonb as value
        from cfg.config_versions as v
        join cfg_private.version_secrets as vs on vs.version_id = v.id
        join cfg_private.secret_values(array(
            select x.secret_id from cfg_private.version_secrets as x where x.version_id = any(version_ids)
        )) as sv on sv.secret_id = vs.secret_id
        -- Only this org's versions, whatever ids were passed.
        where v.id = any(version_ids) and v.org_id = export_secret_values.org_id
        order by v.automation_id, vs.section, vs.key
    loop
        found := jsonb_set(found, array[s.version_id::text], coalesce(found -> s.version_id::text, '{}'));
        found := jsonb_set(
            found, array[s.version_id::text, s.section], coalesce(found -> s.version_id::text -> s.section, '{}')
        );
        found := jsonb_set(found, array[s.version_id::text, s.section, s.key], s.value);
        insert into cfg.audit_log (
            org_id, automation_id, actor_id, actor_email, actor_role, table_name, row_id, operation, new_values
        )
        values (
            export_secret_values.org_id, s.automation_id, actor.actor_id, actor.actor_email, actor.actor_role,
            'config_versions', s.version_id, 'REVEAL',
            jsonb_build_object('section', s.section, 'key', s.key, 'version', s.version, 'reason', 'export')
        );
        perform cfg_private.emit_event(
            export_secret_values.org_id, 'secret.revealed', 'automation', s.automation_id, s.automation_id,
            jsonb_build_object(
                'section', s.section, 'key', s.key, 'version', s.version, 'version_id', s.version_id,
                'revealed_by', actor.actor_id, 'revealed_by_email', actor.actor_email, 'reason', 'export'
            )
        );
    end loop;
    return found;
end
$$;
revoke execute on function cfg_private.export_secret_values(uuid, uuid []) from public, anon;
grant execute on function cfg_private.export_secret_values(uuid, uuid []) to authenticated, service_role;

-- A version snapshot as exported content: a secret loses its token ("digest"), gains
-- "external" (its bindings, {"<section>": {"<key>": [...]}}) where bound and "value"
-- where secret_values has it ({"<section>": {"<key>": value}}). Plain entries are as
-- saved. A snapshot without secrets is already its export.
create or replace function cfg_private.export_content(snapshot jsonb, external jsonb, secret_values jsonb)
returns jsonb
language plpgsql immutable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
begin
    if snapshot is null then
        return '{"sections": {}}';
    end if;
    if not jsonb_path_exists(snapshot, '$.sections.*.entries.* ? (@.secret == true)') then
        return snapshot;
    end if;
    return jsonb_build_object('sections', coalesce((
        select jsonb_object_agg(s.key, (s.value - 'entries') || jsonb_build_object('entries', coalesce((
            select jsonb_object_agg(e.key, case
                when (e.value -> 'secret') = 'true'::jsonb then
                    (e.value - 'digest')
                    || case when external -> s.key ? e.key
                        then jsonb_build_object('external', external -> s.key -> e.key) else '{}' end
                    || case when secret_values -> s.key ? e.key
                        then jsonb_build_object('value', secret_values -> s.key -> e.key) else '{}' end
                else e.value
            end)
            from jsonb_each(s.value -> 'entries') as e
        ), '{}')))
        from jsonb_each(snapshot -> 'sections') as s
    ), '{}'));
end
$$;
revoke execute on function cfg_private.export_content(jsonb, jsonb, jsonb) from public, anon;
grant execute on function cfg_private.export_content(jsonb, jsonb, jsonb) to authenticated, service_role;

-- The export document of the automations selection picks in org_id (members): each at
-- its latest version, at the version deployed to env, or at version (one of the two).
-- Selected ids that are not found (unknown, or another org's) are in "left_out" as
-- not found, and so are automations with no version deployed to env or no such version.
-- include_secrets adds secret values (cfg_private.export_secret_values checks and audits).
-- security invoker: everything is read under the caller's row-level rights.
create or replace function cfg.export_automations(
    org_id uuid, selection jsonb, env text default null, version integer default null,
    include_secrets boolean default false
)
returns jsonb
language plpgsql
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    org_slug text;
    env_id uuid;
    picked jsonb;
    values_by_version jsonb := '{}';
    exported jsonb;
    left_out jsonb;
begin
    perform cfg_private.require_role(export_automations.org_id, 'viewer', 'exporting automations');
    if env is not null and version is not null then
        raise exception 'export the version deployed to an environment or a version number, not both'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'version')::text;
    end if;
    if version < 1 then
        raise exception 'version numbers start at 1'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'version', 'value', version)::text;
    end if;
    if env is not null then
        env_id := (cfg_private.environment_by_slug(export_automations.org_id, env)).id;
    end if;
    select o.slug into org_slug from cfg.orgs as o where o.id = export_automations.org_id;

    -- What the selection picked, each with the version to export: {ord, given_id,
    -- automation_id, slug, version_id, version} (the content is read below, once).
    select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
        'ord', s.ord, 'given_id', s.automation_id, 'automation_id', a.id, 'slug', a.slug,
        'version_id', v.id, 'version', v.version
    )) order by s.ord), '[]')
    into picked
    from cfg.select_automations(export_automations.org_id, selection) as s
    left join cfg.automations as a on s.found and a.id = s.automation_id
    left join lateral (
        select x.id, x.version
        from cfg.config_versions as x
        where x.automation_id = a.id
            and (export_automations.version is null or x.version = export_automations.version)
            and (env_id is null or x.id = (
                select d.version_id from cfg.deployments as d
                where d.automation_id = a.id and d.environment_id = env_id
            ))
        order by x.version desc
        limit 1
    ) as v on true;

    if include_secrets then
        values_by_version := cfg_private.export_secret_values(
            export_automations.org_id,
            array(select (p ->> 'version_id')::uuid from jsonb_array_elements(picked) as p where p ? 'version_id')
        );
    end if;

    select coalesce(jsonb_agg(jsonb_build_object(
        'slug', a.slug, 'name', a.name, 'description', a.description, 'type', a.type, 'status', a.status,
        'tags', to_jsonb(array(select t from unnest(a.tags) as t order by t collate "C")),
        -- Where it came from, by slugs (not ids): a template version or a clone's source.
        'origin', case when o.id is not null then jsonb_strip_nulls(jsonb_build_object(
            'template', t.slug, 'template_version', o.template_version,
            'source', src.slug, 'source_org', case when o.source_org_id <> o.org_id then src_org.slug end,
            'source_version', o.source_version
        )) end,
        'version', coalesce(v.version, 0),
        'content', cfg_private.export_content(v.content, (
            -- The bindings the caller may read (editors), per section and key.
            select jsonb_object_agg(b.section, b.entries) from (
                select bs.section, jsonb_object_agg(bs.key, bs.bindings) as entries from (
                    select cs.name as section, ce.key, jsonb_agg(jsonb_build_object(
                        'env', env.slug, 'mode', sb.mode, 'ref', sb.ref
                    ) order by env.slug nulls first, sb.ref) as bindings
                    from cfg.secret_bindings as sb
                    join cfg.config_entries as ce on ce.id = sb.entry_id
                    join cfg.config_sections as cs on cs.id = ce.section_id
                    left join cfg.environments as env on env.id = sb.environment_id
                    where sb.automation_id = a.id
                    group by cs.name, ce.key
                ) as bs group by bs.section
            ) as b
        ), values_by_version -> v.id::text)
    ) order by a.slug collate "C"), '[]')
    into exported
    from jsonb_array_elements(picked) as p
    join cfg.automations as a on a.id = (p ->> 'automation_id')::uuid
    left join cfg.config_versions as v on v.id = (p ->> 'version_id')::uuid
    left join cfg.automation_origins as o on o.automation_id = a.id
    left join cfg.templates as t on t.id = o.template_id
    left join cfg.automations as src on src.id = o.source_automation_id
    left join cfg.orgs as src_org on src_org.id = o.source_org_id
    -- Without env or version, an automation never saved exports as version 0, empty.
    where p ? 'version_id' or (env_id is null and export_automations.version is null);

    select coalesce(jsonb_agg(case
        when not p ? 'automation_id' then jsonb_build_object('id', p -> 'given_id', 'reason', 'not found')
        when env_id is not null then jsonb_build_object('slug', p -> 'slug', 'reason', 'not deployed to ' || env)
        else jsonb_build_object('slug', p -> 'slug', 'reason', 'has no version ' || export_automations.version)
    end order by (p ->> 'ord')::integer), '[]')
    into left_out
    from jsonb_array_elements(picked) as p
    where not p ? 'automation_id'
        or (not p ? 'version_id' and (env_id is not null or export_automations.version is not null));

    return jsonb_build_object(
        'format', 'cfgctl.export', 'format_version', 1, 'org', org_slug, 'env', env,
        'secret_values', coalesce(include_secrets, false), 'automations', exported, 'left_out', left_out
    );
end
$$;
revoke execute on function cfg.export_automations(uuid, jsonb, text, integer, boolean) from public, anon;
grant execute on function cfg.export_automations(uuid, jsonb, text, integer, boolean) to authenticated, service_role;

-- =============================================================================
-- Reading a document back (cfg.import_automations, 89_import.sql): its checks, and
-- exported content as a save takes it.
-- =============================================================================

-- Exported content as save_config takes it, given the target's current content (null
-- for a new automation): {"content", "secrets_needing_value": [{section, key}]}.
-- Bindings ("external") are dropped: they name another org's vault backends. A secret
-- without its value keeps the target's value when the target has that secret; else it
-- is left out and listed as needing a value.
create or replace function cfg_private.import_content(content jsonb, current jsonb)
returns jsonb
language plpgsql immutable
set jit = off
set search_path = ''
as $$
declare
    needing jsonb;
begin
    -- Not content at all: left as it is, for content_problems to say why.
    if jsonb_typeof(content -> 'sections') is distinct from 'object' or exists (
        select 1 from jsonb_each(content -> 'sections') as s
        where jsonb_typeof(s.value) <> 'object' or jsonb_typeof(coalesce(s.value -> 'entries', '{}')) <> 'object'
    ) then
        return jsonb_build_object('content', content, 'secrets_needing_value', '[]'::jsonb);
    end if;
    -- Nearly always: nothing to drop or keep, the content as it is.
    if not jsonb_path_exists(content, '$.sections.*.entries.* ? (@.secret == true && !exists(@.value))')
        and not jsonb_path_exists(content, '$.sections.*.entries.*.external') then
        return jsonb_build_object('content', content, 'secrets_needing_value', '[]'::jsonb);
    end if;
    select coalesce(jsonb_agg(jsonb_build_object('section', s.key, 'key', e.key) order by s.key, e.key), '[]')
    into needing
    from jsonb_each(content -> 'sections') as s
    cross join jsonb_each(coalesce(s.value -> 'entries', '{}')) as e
    left join jsonb_each(current -> 'sections') as cs on cs.key = s.key
    where (e.value -> 'secret') = 'true'::jsonb and not e.value ? 'value'
        and (cs.value -> 'entries' -> e.key -> 'secret') is distinct from 'true'::jsonb;
    return jsonb_build_object(
        'content', content || jsonb_build_object('sections', coalesce((
            select jsonb_object_agg(s.key, (s.value - 'entries') || jsonb_build_object('entries', coalesce((
                select jsonb_object_agg(
                    e.key, case when jsonb_typeof(e.value) = 'object' then e.value - 'external' else e.value end
                )
                from jsonb_each(coalesce(s.value -> 'entries', '{}')) as e
                where not needing @> jsonb_build_array(jsonb_build_object('section', s.key, 'key', e.key))
            ), '{}')))
            from jsonb_each(content -> 'sections') as s
        ), '{}')),
        'secrets_needing_value', needing
    );
end
$$;
revoke execute on function cfg_private.import_content(jsonb, jsonb) from public, anon;
grant execute on function cfg_private.import_content(jsonb, jsonb) to authenticated, service_role;

-- Every problem of an export document as [{path, message}] (at most 100), or null.
create or replace function cfg_private.import_problems(document jsonb)
returns jsonb
language plpgsql stable
set jit = off
set search_path = ''
as $$
declare
    problems jsonb;
begin
    if jsonb_typeof(document) is distinct from 'object' then
        return '[{"path": "", "message": "an export document is a JSON object"}]';
    end if;
    -- Bounds first, so a huge document is refused without reading it.
    if pg_column_size(document) > 67108864 then
        return '[{"path": "", "message": "an export document is at most 64 MiB: export fewer automations"}]';
    end if;
    if document -> 'format' is distinct from '"cfgctl.export"' then
        return '[{"path": "format", "message": "not a cfgctl export: format must be \"cfgctl.export\""}]';
    end if;
    if jsonb_typeof(document -> 'format_version') is distinct from 'number' then
        return '[{"path": "format_version", "message": "format_version must be a number"}]';
    end if;
    if (document ->> 'format_version')::numeric > 1 then
        return jsonb_build_array(jsonb_build_object('path', 'format_version', 'message', format(
            'format_version %s comes from a newer cfgctl: this one reads format_version 1; upgrade cfgctl',
            document ->> 'format_version'
        )));
    end if;
    if (document ->> 'format_version')::numeric <> 1 then
        return '[{"path": "format_version", "message": "format_version must be 1"}]';
    end if;
    if jsonb_typeof(document -> 'automations') is distinct from 'array' then
        return '[{"path": "automations", "message": "automations must be an array"}]';
    end if;
    if jsonb_array_length(document -> 'automations') > 10000 then
        return '[{"path": "automations", "message": "at most 10000 automations per import"}]';
    end if;
    with items as (
        select
            (a.n - 1)::integer as i, a.item, format('automations[%s]', a.n - 1) as path,
            (min(a.n) over (partition by a.item ->> 'slug') - 1)::integer as first_i
        from jsonb_array_elements(document -> 'automations') with ordinality as a (item, n)
    ),
    found as (
        select k as path, 'unknown field (format, format_version, org, env, secret_values, automations, left_out)'
            as message
        from jsonb_object_keys(document) as k
        where k not in ('format', 'format_version', 'org', 'env', 'secret_values', 'automations', 'left_out')
        union all
        select i.path, 'an automation must be an object' from items as i where jsonb_typeof(i.item) <> 'object'
        union all
        select i.path || '.' || k, 'unknown field (slug, name, description, type, status, tags, origin, version, content)'
        from items as i, jsonb_object_keys(case when jsonb_typeof(i.item) = 'object' then i.item else '{}' end) as k
        where k not in ('slug', 'name', 'description', 'type', 'status', 'tags', 'origin', 'version', 'content')
        union all
        select i.path || c.suffix, c.message
        from items as i
        cross join lateral (values
            (
                coalesce(i.item ->> 'slug', '') !~ '^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$'
                or jsonb_typeof(i.item -> 'slug') <> 'string',
                '.slug', 'slug must be 1-80 lowercase letters, digits and inner hyphens'
            ),
            (
                jsonb_typeof(i.item -> 'name') is distinct from 'string'
                or length(btrim(i.item ->> 'name')) not between 1 and 200,
                '.name', 'name must be a string of 1-200 characters'
            ),
            (
                i.item ? 'description' and (jsonb_typeof(i.item -> 'description') <> 'string'
                    or length(i.item ->> 'description') > 10000),
                '.description', 'description must be a string of at most 10000 characters'
            ),
            (
                jsonb_typeof(i.item -> 'type') is distinct from 'string' or length(i.item ->> 'type') > 100,
                '.type', 'type must be the slug of an automation type'
            ),
            (
                i.item ? 'status' and coalesce(i.item ->> 'status', '') not in ('active', 'paused', 'archived'),
                '.status', 'status must be active, paused or archived'
            ),
            (
                i.item ? 'tags' and (
                    jsonb_typeof(i.item -> 'tags') <> 'array' or jsonb_array_length(i.item -> 'tags') > 100
                    or exists (
                        select 1 from jsonb_array_elements(i.item -> 'tags') as t
                        where jsonb_typeof(t) <> 'string' or length(t #>> '{}') > 100
                    )
                ),
                '.tags', 'tags must be an array of at most 100 strings'
            ),
            (
                i.item ? 'version' and (jsonb_typeof(i.item -> 'version') <> 'number'
                    or (i.item ->> 'version') !~ '^[0-9]{1,9}$'),
                '.version', 'version must be a whole number from 0'
            ),
            (
                i.item ? 'origin' and jsonb_typeof(i.item -> 'origin') not in ('object', 'null'),
                '.origin', 'origin must be an object'
            )
        ) as c (bad, suffix, message)
        where jsonb_typeof(i.item) = 'object' and c.bad
        union all
        select i.path || '.content' || case when p ->> 'path' = '' then '' else '.' || (p ->> 'path') end,
            p ->> 'message'
        from items as i
        cross join lateral jsonb_array_elements(
            cfg_private.content_problems(cfg_private.import_content(i.item -> 'content', null) -> 'content')
        ) as p
        where jsonb_typeof(i.item) = 'object' and jsonb_typeof(i.item -> 'content') = 'object'
        union all
        select i.path || '.content', 'content must be an object {"sections": {...}}'
        from items as i
        where jsonb_typeof(i.item) = 'object' and jsonb_typeof(i.item -> 'content') is distinct from 'object'
        union all
        select i.path || '.slug', format('duplicate slug %s (also automations[%s])', i.item ->> 'slug', i.first_i)
        from items as i
        where jsonb_typeof(i.item) = 'object' and i.item ->> 'slug' is not null and i.first_i < i.i
    )
    select jsonb_agg(jsonb_build_object('path', f.path, 'message', f.message) order by f.path)
    into problems
    from (select * from found limit 100) as f;
    return problems;
end
$$;
revoke execute on function cfg_private.import_problems(jsonb) from public, anon;
grant execute on function cfg_private.import_problems(jsonb) to authenticated, service_role;
