-- =============================================================================
-- Cloning: a version of an automation copied into a new automation, in the same org
-- or another one where the caller is an editor too. Secrets are left out (and listed)
-- unless copy_secrets, which needs the right to reveal them in the source org: each
-- copied value becomes a new Vault secret of the clone, and each copy is recorded as a
-- reveal (an audit row and a secret.revealed event in the source org), since whoever
-- can read the clone can now reveal it there. Tables: migrations/20261130070000_templates.sql.
-- =============================================================================

-- The secret values version of source_automation_id captured, {"<section>": {"<key>":
-- value}}, to be saved into target_automation_id (a clone being made), after checking
-- the caller edits both and may reveal secrets in the source org. Each value read
-- leaves a REVEAL audit row and a secret.revealed event (reason "clone") there.
-- security definer: it reads Vault (cfg_private.secret_values) and writes the audit
-- log and the outbox; the values go back only to a caller allowed to reveal them.
create or replace function cfg_private.clone_secrets(source_automation_id uuid, version integer, target_automation_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    source cfg.automations := cfg_private.automation_for(source_automation_id, 'editor', 'cloning an automation');
    target cfg.automations := cfg_private.automation_for(target_automation_id, 'editor', 'cloning an automation');
    actor record := cfg_private.current_actor();
    found cfg.config_versions;
    copied jsonb := '{}';
    s record;
begin
    if not cfg_private.is_service() then
        perform cfg_private.require_role(
            source.org_id, (select o.secret_reveal_role from cfg.orgs as o where o.id = source.org_id), 'copying secrets'
        );
    end if;
    select * into found from cfg.config_versions as v where v.automation_id = source.id and v.version = clone_secrets.version;
    if found.id is null then
        raise exception 'version % of this automation does not exist', version
            using errcode = 'PT404', detail = jsonb_build_object('automation_id', source.id, 'version', version)::text;
    end if;
    for s in
        select vs.section, vs.key, cfg_private.secret_member_value(sv.value, vs.member)::jsonb as value
        from cfg_private.version_secrets as vs
        join cfg_private.secret_values(array(
            select x.secret_id from cfg_private.version_secrets as x where x.version_id = found.id
        )) as sv on sv.secret_id = vs.secret_id
        where vs.version_id = found.id
        order by vs.section, vs.key
    loop
        copied := jsonb_set(
            case when copied ? s.section then copied else copied || jsonb_build_object(s.section, '{}'::jsonb) end,
            array[s.section, s.key], s.value
        );
        insert into cfg.audit_log (
            org_id, automation_id, actor_id, actor_email, actor_role, table_name, row_id, operation, new_values
        )
        values (
            source.org_id, source.id, actor.actor_id, actor.actor_email, actor.actor_role, 'config_versions', found.id,
            'REVEAL', jsonb_build_object('section', s.section, 'key', s.key, 'version', found.version, 'reason', 'clone',
                                         'copied_to_automation_id', target.id, 'copied_to_org_id', target.org_id)
        );
        perform cfg_private.emit_event(
            source.org_id, 'secret.revealed', 'automation', source.id, source.id,
            jsonb_build_object(
                'section', s.section, 'key', s.key, 'version', found.version, 'version_id', found.id,
                'revealed_by', actor.actor_id, 'revealed_by_email', actor.actor_email, 'reason', 'clone',
                'copied_to_automation_id', target.id, 'copied_to_org_id', target.org_id
            )
        );
    end loop;
    return copied;
end
$$;
revoke execute on function cfg_private.clone_secrets(uuid, integer, uuid) from public, anon;
grant execute on function cfg_private.clone_secrets(uuid, integer, uuid) to authenticated, service_role;

-- Records that automation_id is a clone of source_automation_id at source_version and
-- announces it (automation.cloned, in the clone's org; secrets by name only).
-- security definer: automation_origins and the outbox take no writes from API roles;
-- the caller must be an editor of both automations.
create or replace function cfg_private.record_clone_origin(
    automation_id uuid, source_automation_id uuid, source_version integer, secrets jsonb
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, 'editor', 'cloning an automation');
    source cfg.automations := cfg_private.automation_for(source_automation_id, 'editor', 'cloning an automation');
begin
    -- Provenance is written once, by the transaction that makes the clone: not afterwards
    -- for an automation that came from elsewhere.
    if target.created_at <> now() or exists (select 1 from cfg.automation_origins as o where o.automation_id = target.id) then
        raise exception 'an automation''s origin is recorded by the call that makes it'
            using errcode = 'PT409', detail = jsonb_build_object('automation_id', target.id)::text;
    end if;
    insert into cfg.automation_origins (automation_id, org_id, source_automation_id, source_org_id, source_version)
    values (target.id, target.org_id, source.id, source.org_id, source_version);
    perform cfg_private.emit_event(
        target.org_id, 'automation.cloned', 'automation', target.id, target.id,
        jsonb_build_object('slug', target.slug, 'source_automation_id', source.id, 'source_org_id', source.org_id,
                           'source_slug', source.slug, 'source_version', source_version) || coalesce(secrets, '{}')
    );
end
$$;
revoke execute on function cfg_private.record_clone_origin(uuid, uuid, integer, jsonb) from public, anon;
grant execute on function cfg_private.record_clone_origin(uuid, uuid, integer, jsonb) to authenticated, service_role;

-- Copies version (default: the latest) of source_automation_id into a new automation
-- of the same type slug in target_org_id (default: the source's org; PT422 when that
-- org has no such type), editors of both orgs. Secret entries are left out and listed
-- (secrets_left_out), unless copy_secrets: then the caller must be allowed to reveal
-- secrets in the source org, and each value becomes a new secret of the clone.
-- The clone records its source (cfg.automation_origins) and its first version is saved
-- like any other (the type's rules run on it).
create or replace function cfg.clone_automation(
    source_automation_id uuid, name text, slug text, version integer default null, target_org_id uuid default null,
    copy_secrets boolean default false
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    source cfg.automations := cfg_private.automation_for(source_automation_id, 'editor', 'cloning an automation');
    snapshot jsonb := cfg.get_config(source.id, version);
    content jsonb := snapshot -> 'content';
    secret_keys jsonb;
    values_copied jsonb := '{}';
    created cfg.automations;
    saved jsonb;
    copied jsonb;
    left_out jsonb;
begin
    perform cfg_private.require_role(coalesce(target_org_id, source.org_id), 'editor', 'cloning an automation');
    secret_keys := coalesce((
        select jsonb_agg(jsonb_build_object('section', s.key, 'key', e.key) order by s.key, e.key)
        from jsonb_each(content -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
        where (e.value -> 'secret') = 'true'::jsonb
    ), '[]');
    created := cfg.create_automation(
        coalesce(target_org_id, source.org_id), name, slug, source.type, source.tags, source.description
    );
    if copy_secrets and secret_keys <> '[]' then
        values_copied := cfg_private.clone_secrets(source.id, (snapshot ->> 'version')::integer, created.id);
    end if;
    -- Each secret entry gets its copied value, or is left out.
    content := jsonb_build_object('sections', coalesce((
        select jsonb_object_agg(s.key, (s.value - 'entries') || jsonb_build_object('entries', coalesce((
            select jsonb_object_agg(e.key, case
                when (e.value -> 'secret') = 'true'::jsonb
                    then e.value || jsonb_build_object('value', values_copied -> s.key -> e.key)
                else e.value
            end)
            from jsonb_each(s.value -> 'entries') as e
            where (e.value -> 'secret') is distinct from 'true'::jsonb or values_copied -> s.key ? e.key
        ), '{}')))
        from jsonb_each(content -> 'sections') as s
    ), '{}'));
    copied := coalesce((
        select jsonb_agg(k) from jsonb_array_elements(secret_keys) as k
        where values_copied -> (k ->> 'section') ? (k ->> 'key')
    ), '[]');
    left_out := coalesce((
        select jsonb_agg(k) from jsonb_array_elements(secret_keys) as k
        where not coalesce(values_copied -> (k ->> 'section') ? (k ->> 'key'), false)
    ), '[]');
    saved := cfg.save_config(
        created.id, 0, content, format('cloned from %s v%s', source.slug, snapshot ->> 'version')
    );
    perform cfg_private.record_clone_origin(
        created.id, source.id, (snapshot ->> 'version')::integer,
        jsonb_build_object('secrets_copied', copied, 'secrets_left_out', left_out)
    );
    return jsonb_build_object(
        'automation', to_jsonb(created), 'version', saved -> 'version', 'warnings', coalesce(saved -> 'warnings', '[]'),
        'source', jsonb_build_object('automation_id', source.id, 'org_id', source.org_id, 'slug', source.slug,
                                     'version', (snapshot ->> 'version')::integer),
        'secrets_copied', copied, 'secrets_left_out', left_out
    );
end
$$;
revoke execute on function cfg.clone_automation(uuid, text, text, integer, uuid, boolean) from public, anon;
grant execute on function cfg.clone_automation(uuid, text, text, integer, uuid, boolean) to authenticated, service_role;

-- Where automation_id came from (members): {template_id, template, template_version,
-- values} and/or {source_automation_id, source_org_id, source_version}; {} when it
-- started blank.
create or replace function cfg.automation_origin(automation_id uuid)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, 'viewer', 'reading an automation');
begin
    return coalesce((
        select jsonb_strip_nulls(jsonb_build_object(
            'template_id', o.template_id, 'template', (select t.slug from cfg.templates as t where t.id = o.template_id),
            'template_version', o.template_version,
            'values', case when o.template_version is not null then o.template_values end,
            'source_automation_id', o.source_automation_id, 'source_org_id', o.source_org_id,
            'source_version', o.source_version
        ))
        from cfg.automation_origins as o where o.automation_id = target.id
    ), '{}');
end
$$;
revoke execute on function cfg.automation_origin(uuid) from public, anon;
grant execute on function cfg.automation_origin(uuid) to authenticated, service_role;
