-- =============================================================================
-- Templates and cloning, the API: templates (admins write, members read), creating an
-- automation from one, its drift from the template, merging a newer template version
-- into it, and cloning an automation (within an org or into another).
-- Every RPC here is SECURITY INVOKER: automations are created and saved through
-- cfg.create_automation and cfg.save_config, as the caller, so their checks, the
-- type's validation rules, versioning, Vault and audit apply unchanged. The narrow
-- definer helpers below record provenance and read secret values to copy.
-- =============================================================================

-- The template of template_id for a member of its org with min_role; PT404 otherwise
-- (another org's template answers like one that does not exist).
-- security definer: it must see the row to say which.
create or replace function cfg_private.template_for(template_id uuid, min_role cfg.org_role, action text)
returns cfg.templates
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    found cfg.templates;
begin
    select * into found from cfg.templates as t where t.id = template_id;
    perform cfg_private.require_role_on(found.org_id, min_role, action, 'template', 'template_id', template_id);
    return found;
end
$$;
revoke execute on function cfg_private.template_for(uuid, cfg.org_role, text) from public, anon;
grant execute on function cfg_private.template_for(uuid, cfg.org_role, text) to authenticated, service_role;

-- Version of template t (null: its current one); PT404 names the versions there are.
create or replace function cfg_private.template_version(t cfg.templates, version integer)
returns cfg.template_versions
language plpgsql stable
set search_path = ''
as $$
declare
    found cfg.template_versions;
begin
    select * into found from cfg.template_versions as v
    where v.template_id = t.id and v.version = coalesce(template_version.version, t.version);
    if found.id is null then
        raise exception 'template % has no version %', t.slug, version
            using errcode = 'PT404', detail = jsonb_build_object('template_id', t.id, 'version', version,
                                                                 'latest_version', t.version)::text;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.template_version(cfg.templates, integer) from public, anon;
grant execute on function cfg_private.template_version(cfg.templates, integer) to authenticated, service_role;

-- Adds a template of type (a slug of org_id's types) to org_id (admins). Its
-- placeholders and content are checked (PT422, detail.errors [{path, message}]).
create or replace function cfg.add_template(
    org_id uuid, type text, slug text, name text, content jsonb, placeholders jsonb default '[]',
    description text default ''
)
returns cfg.templates
language plpgsql
set search_path = ''
as $$
declare
    type_id uuid;
    created cfg.templates;
begin
    perform cfg_private.require_role(add_template.org_id, 'admin', 'managing templates');
    if slug is null or slug !~ '^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$' then
        raise exception 'invalid template slug %: use 1-80 lowercase letters, digits and inner hyphens',
            coalesce(quote_literal(left(slug, 100)), 'null')
            using errcode = 'PT422', detail = jsonb_build_object('field', 'slug')::text;
    end if;
    if name is null or length(btrim(name)) not between 1 and 200 then
        raise exception 'template name must be 1-200 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'name')::text;
    end if;
    select t.id into type_id from cfg.automation_types as t where t.org_id = add_template.org_id and t.slug = type;
    if type_id is null then
        raise exception 'unknown automation type %', coalesce(quote_literal(left(type, 100)), 'null')
            using errcode = 'PT422', detail = jsonb_build_object('field', 'type')::text;
    end if;
    if exists (select 1 from cfg.templates as t where t.org_id = add_template.org_id and t.slug = add_template.slug) then
        raise exception 'a template % exists in this organisation', quote_literal(slug)
            using errcode = 'PT409', detail = jsonb_build_object('field', 'slug', 'value', slug)::text;
    end if;
    insert into cfg.templates (org_id, type_id, slug, name, description, content, placeholders)
    values (add_template.org_id, type_id, slug, name, coalesce(description, ''), content, coalesce(placeholders, '[]'))
    returning * into created;
    return created;
end
$$;
revoke execute on function cfg.add_template(uuid, text, text, text, jsonb, jsonb, text) from public, anon;
grant execute on function cfg.add_template(uuid, text, text, text, jsonb, jsonb, text) to authenticated, service_role;

-- A new version of template_id (admins): what is given replaces what it had (null
-- keeps it). expected_version: PT409 when someone changed it since.
create or replace function cfg.edit_template(
    template_id uuid, content jsonb default null, placeholders jsonb default null, message text default '',
    expected_version integer default null, name text default null, description text default null
)
returns cfg.templates
language plpgsql
set search_path = ''
as $$
declare
    found cfg.templates := cfg_private.template_for(template_id, 'admin', 'managing templates');
    changed cfg.templates;
begin
    if expected_version is not null and expected_version <> found.version then
        raise exception 'template conflict: you edited version %, but the current version is %', expected_version, found.version
            using errcode = 'PT409', detail = jsonb_build_object(
                'template_id', found.id, 'expected_version', expected_version, 'current_version', found.version
            )::text;
    end if;
    if length(coalesce(message, '')) > 2000 or length(btrim(coalesce(name, found.name))) not between 1 and 200 then
        raise exception 'a message is at most 2000 characters, a name 1-200'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'message')::text;
    end if;
    update cfg.templates as t
    set content = coalesce(edit_template.content, t.content),
        placeholders = coalesce(edit_template.placeholders, t.placeholders),
        name = coalesce(edit_template.name, t.name),
        description = coalesce(edit_template.description, t.description),
        message = coalesce(edit_template.message, '')
    where t.id = found.id
    returning * into changed;
    return changed;
end
$$;
revoke execute on function cfg.edit_template(uuid, jsonb, jsonb, text, integer, text, text) from public, anon;
grant execute on function cfg.edit_template(uuid, jsonb, jsonb, text, integer, text, text) to authenticated, service_role;

-- A template at a version (default: its current one), for members.
create or replace function cfg.get_template(template_id uuid, version integer default null)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    found cfg.templates := cfg_private.template_for(template_id, 'viewer', 'reading templates');
    v cfg.template_versions := cfg_private.template_version(found, version);
begin
    return jsonb_build_object(
        'id', found.id, 'org_id', found.org_id, 'slug', found.slug, 'name', found.name,
        'description', found.description,
        'type', (select t.slug from cfg.automation_types as t where t.id = found.type_id),
        'version', v.version, 'latest_version', found.version, 'message', v.message, 'created_at', v.created_at,
        'content', v.content, 'placeholders', v.placeholders,
        'automations', (select count(*) from cfg.automation_origins as o where o.template_id = found.id)
    );
end
$$;
revoke execute on function cfg.get_template(uuid, integer) from public, anon;
grant execute on function cfg.get_template(uuid, integer) to authenticated, service_role;

-- org_id's templates (members), with how many automations came from each.
create or replace function cfg.list_templates(org_id uuid)
returns table (
    id uuid, slug text, name text, type text, version integer, placeholders integer, automations bigint,
    description text
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_templates.org_id, 'viewer', 'reading templates');
    return query
    select t.id, t.slug, t.name, ty.slug, t.version, jsonb_array_length(t.placeholders),
        (select count(*) from cfg.automation_origins as o where o.template_id = t.id), t.description
    from cfg.templates as t
    join cfg.automation_types as ty on ty.id = t.type_id
    where t.org_id = list_templates.org_id
    order by t.slug;
end
$$;
revoke execute on function cfg.list_templates(uuid) from public, anon;
grant execute on function cfg.list_templates(uuid) to authenticated, service_role;

-- Records that automation_id is at template_version of template_id, filled with vals
-- (non-secret values the caller gave), and announces it (template.applied).
-- security definer: automation_origins and the outbox take no writes from API roles;
-- the caller must be an editor of the automation and see the template, of its org.
create or replace function cfg_private.record_template_origin(
    automation_id uuid, template_id uuid, template_version integer, vals jsonb, created boolean
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, 'editor', 'applying a template');
    slug text;
    made_here boolean;
begin
    -- An editor of the automation sees its org's templates: only the version must exist there.
    select t.slug into slug
    from cfg.templates as t
    join cfg.template_versions as v on v.template_id = t.id and v.version = record_template_origin.template_version
    where t.id = record_template_origin.template_id and t.org_id = target.org_id;
    if slug is null then
        raise exception 'template not found'
            using errcode = 'PT404', detail = jsonb_build_object('template_id', template_id)::text;
    end if;
    -- Provenance follows what this transaction did: an automation it made (and that has
    -- no origin yet), or one that came from this template.
    if created then
        made_here := target.created_at = now()
            and not exists (select 1 from cfg.automation_origins as o where o.automation_id = target.id);
    else
        -- Applying moves an automation along its own template only (a merge that changes
        -- nothing saves no version, and still brings the automation to that version).
        made_here := exists (
            select 1 from cfg.automation_origins as o
            where o.automation_id = target.id and o.template_id = record_template_origin.template_id
        );
    end if;
    if not made_here then
        raise exception 'an automation''s template is recorded by the call that creates or applies it'
            using errcode = 'PT409', detail = jsonb_build_object('automation_id', target.id)::text;
    end if;
    insert into cfg.automation_origins as o (automation_id, org_id, template_id, template_version, template_values)
    values (target.id, target.org_id, template_id, template_version, coalesce(vals, '{}'))
    on conflict on constraint automation_origins_automation_key do update
        set template_id = excluded.template_id, template_version = excluded.template_version,
            template_values = excluded.template_values;
    perform cfg_private.emit_event(
        target.org_id, 'template.applied', 'automation', target.id, target.id,
        jsonb_build_object('template_id', template_id, 'slug', slug, 'template_version', template_version,
                           'created', created, 'values', coalesce(vals, '{}'))
    );
end
$$;
revoke execute on function cfg_private.record_template_origin(uuid, uuid, integer, jsonb, boolean) from public, anon;
grant execute on function cfg_private.record_template_origin(uuid, uuid, integer, jsonb, boolean)
to authenticated, service_role;

-- Creates an automation of the template's type in org_id from a template version
-- (default: its current one) filled with vals, and its first version, in one
-- transaction: values are checked first (PT422, detail.errors [{path: "values.<name>",
-- message}]), then the type's rules run on the save as on any other. Secret values go
-- to Vault through the save; only the other values are recorded on the automation.
create or replace function cfg.create_automation_from_template(
    org_id uuid, template_id uuid, name text, slug text, "values" jsonb default '{}', version integer default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    t cfg.templates := cfg_private.template_for(template_id, 'viewer', 'creating automations');
    v cfg.template_versions;
    filled jsonb;
    created cfg.automations;
    saved jsonb;
    kept jsonb;
begin
    if t.org_id is distinct from create_automation_from_template.org_id then
        raise exception 'template not found'
            using errcode = 'PT404', detail = jsonb_build_object('template_id', template_id)::text;
    end if;
    perform cfg_private.require_role(t.org_id, 'editor', 'creating automations');
    v := cfg_private.template_version(t, version);
    filled := cfg_private.fill_template(v.content, v.placeholders, "values", 'create');
    created := cfg.create_automation(
        t.org_id, name, slug, (select ty.slug from cfg.automation_types as ty where ty.id = t.type_id)
    );
    saved := cfg.save_config(created.id, 0, filled, format('from template %s v%s', t.slug, v.version));
    -- The values given, secrets left out (they are in Vault now).
    kept := coalesce((
        select jsonb_object_agg(k.key, k.value) from jsonb_each("values") as k
        where jsonb_path_exists(v.placeholders, '$[*] ? (@.name == $n && @.type != "secret")',
                                jsonb_build_object('n', k.key))
    ), '{}');
    perform cfg_private.record_template_origin(created.id, t.id, v.version, kept, true);
    return jsonb_build_object(
        'automation', to_jsonb(created), 'version', saved -> 'version', 'warnings', coalesce(saved -> 'warnings', '[]'),
        'template_id', t.id, 'template', t.slug, 'template_version', v.version, 'values', kept
    );
end
$$;
revoke execute on function cfg.create_automation_from_template(uuid, uuid, text, text, jsonb, integer) from public, anon;
grant execute on function cfg.create_automation_from_template(uuid, uuid, text, text, jsonb, integer)
to authenticated, service_role;

-- The template origin of automation_id, for a member with min_role: the origin row
-- and its template (PT422 when it has none, or its template was deleted).
create or replace function cfg_private.template_origin(
    automation_id uuid, min_role cfg.org_role, action text, out origin cfg.automation_origins, out tpl cfg.templates
)
language plpgsql stable
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, min_role, action);
begin
    select * into origin from cfg.automation_origins as o where o.automation_id = target.id;
    if origin.template_id is null then
        raise exception '% was not created from a template%', target.slug,
            case when origin.template_version is not null then ' that still exists' else '' end
            using errcode = 'PT422', detail = jsonb_build_object('automation_id', target.id)::text;
    end if;
    tpl := cfg_private.template_for(origin.template_id, 'viewer', action);
end
$$;
revoke execute on function cfg_private.template_origin(uuid, cfg.org_role, text) from public, anon;
grant execute on function cfg_private.template_origin(uuid, cfg.org_role, text) to authenticated, service_role;

-- Where automation_id's latest content differs from its template's current version
-- filled with the values it recorded, key by key (members): {template_id, template,
-- template_version (it came from), latest_version, drift: [{section, key, change:
-- added | removed | changed, secret, template, automation}]}. "added": only the
-- automation has the key. Secrets compare by presence, and show no value.
create or replace function cfg.template_drift(automation_id uuid)
returns jsonb
language plpgsql stable
set jit = off
set search_path = ''
as $$
declare
    found record := cfg_private.template_origin(automation_id, 'viewer', 'reading template drift');
    v cfg.template_versions := cfg_private.template_version(found.tpl, null);
    expected jsonb := cfg_private.presence_snapshot(
        cfg_private.fill_template(v.content, v.placeholders, (found.origin).template_values, 'drift')
    );
    actual jsonb := cfg_private.presence_snapshot(cfg.get_config(automation_id) -> 'content');
begin
    return jsonb_build_object(
        'automation_id', (found.origin).automation_id, 'template_id', (found.tpl).id, 'template', (found.tpl).slug,
        'template_version', (found.origin).template_version, 'latest_version', (found.tpl).version,
        'drift', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'section', coalesce(t.section, a.section), 'key', coalesce(t.key, a.key),
                'change', case when t.entry is null then 'added' when a.entry is null then 'removed' else 'changed' end,
                'secret', coalesce((a.entry ->> 'secret')::boolean, (t.entry ->> 'secret')::boolean),
                'template', case when (t.entry ->> 'secret')::boolean then null else t.entry -> 'value' end,
                'automation', case when (a.entry ->> 'secret')::boolean then null else a.entry -> 'value' end
            ) order by coalesce(t.section, a.section), coalesce(t.key, a.key)), '[]')
            from (
                select s.key as section, e.key, e.value as entry
                from jsonb_each(expected -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
            ) as t
            full join (
                select s.key as section, e.key, e.value as entry
                from jsonb_each(actual -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
            ) as a on a.section = t.section and a.key = t.key
            where t.entry is distinct from a.entry
        )
    );
end
$$;
revoke execute on function cfg.template_drift(uuid) from public, anon;
grant execute on function cfg.template_drift(uuid) to authenticated, service_role;

-- Merges a newer version of its template (default: the current one) into
-- automation_id (editors): base = the template version it came from, theirs = the new
-- one (both filled with its recorded values), mine = its current content. A dry run
-- (the default) answers {merged, conflicts, changes, secrets_left_out}; otherwise conflicts are PT409
-- (detail.conflicts, as a save's), else the merge is saved ("template <slug> v<N>")
-- and the automation records the new template version. expected_version: PT409 when
-- the automation was saved since.
create or replace function cfg.apply_template(
    automation_id uuid, version integer default null, expected_version integer default null, dry_run boolean default true
)
returns jsonb
language plpgsql
set jit = off
set search_path = ''
as $$
declare
    found record := cfg_private.template_origin(automation_id, 'editor', 'applying a template');
    base_v cfg.template_versions := cfg_private.template_version(found.tpl, (found.origin).template_version);
    theirs_v cfg.template_versions := cfg_private.template_version(found.tpl, version);
    current jsonb := cfg.get_config(automation_id);
    base jsonb := cfg_private.presence_snapshot(
        cfg_private.fill_template(base_v.content, base_v.placeholders, (found.origin).template_values, 'drift')
    );
    theirs jsonb := cfg_private.presence_snapshot(
        cfg_private.fill_template(theirs_v.content, theirs_v.placeholders, (found.origin).template_values, 'apply')
    );
    mine_snapshot jsonb := cfg_private.presence_snapshot(current -> 'content');
    result jsonb;
    saved jsonb;
    gone jsonb;
begin
    if expected_version is not null and expected_version <> (current ->> 'version')::integer then
        raise exception 'version conflict: you looked at version %, but the current version is %',
            expected_version, current ->> 'version'
            using errcode = 'PT409', detail = jsonb_build_object(
                'expected_version', expected_version, 'current_version', (current ->> 'version')::integer
            )::text;
    end if;
    result := cfg_private.merge_contents(base, theirs, current -> 'content', mine_snapshot) || jsonb_build_object(
        'automation_id', (found.origin).automation_id, 'template', (found.tpl).slug,
        'from_template_version', base_v.version, 'template_version', theirs_v.version,
        'current_version', (current ->> 'version')::integer
    );
    -- A secret entry only the new template version has cannot be saved without a value:
    -- it is left out and listed (set it with save_config or patch_config).
    result := result || jsonb_build_object('secrets_left_out', coalesce((
        select jsonb_agg(jsonb_build_object('section', s.key, 'key', e.key) order by s.key, e.key)
        from jsonb_each(result -> 'merged' -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
        where (e.value -> 'secret') = 'true'::jsonb and not e.value ? 'value'
            and mine_snapshot -> 'sections' -> s.key -> 'entries' -> e.key is null
    ), '[]'));
    for gone in select l from jsonb_array_elements(result -> 'secrets_left_out') as l loop
        result := result #- array['merged', 'sections', gone ->> 'section', 'entries', gone ->> 'key'];
    end loop;
    result := result || jsonb_build_object('changes', cfg_private.changed_keys(
        mine_snapshot, cfg_private.presence_snapshot(result -> 'merged')
    ));
    if dry_run then
        return result || '{"dry_run": true}';
    end if;
    if result -> 'conflicts' <> '[]' then
        raise exception 'template merge conflict: % key(s) changed both in the automation and in template % v%',
            jsonb_array_length(result -> 'conflicts'), (found.tpl).slug, theirs_v.version
            using errcode = 'PT409', detail = (result - 'merged')::text;
    end if;
    saved := cfg.save_config(
        (found.origin).automation_id, (current ->> 'version')::integer, result -> 'merged',
        format('template %s v%s', (found.tpl).slug, theirs_v.version)
    );
    perform cfg_private.record_template_origin(
        (found.origin).automation_id, (found.tpl).id, theirs_v.version, (found.origin).template_values, false
    );
    return (result - 'merged') || jsonb_build_object('dry_run', false, 'version', saved -> 'version');
end
$$;
revoke execute on function cfg.apply_template(uuid, integer, integer, boolean) from public, anon;
grant execute on function cfg.apply_template(uuid, integer, integer, boolean) to authenticated, service_role;
