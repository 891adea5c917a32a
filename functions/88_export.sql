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
        select v.automation_id, v.id as version_id, v.version, vs.section, vs.key, sv.value::jsonb as value
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
