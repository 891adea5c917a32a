-- =============================================================================
-- Validation rules, the API: automation types, rules (admins), a rule's dry run over
-- what runs now, and validating an automation against each environment's rules.
-- Every RPC here is SECURITY INVOKER: types and rules are written under RLS (admins),
-- and the triggers in 35_validation.sql check, version and announce each write.
-- =============================================================================

-- The type of type_id for a member of its org with min_role; PT404 otherwise.
-- security definer: it must see the row to say which.
create or replace function cfg_private.automation_type_for(type_id uuid, min_role cfg.org_role, action text)
returns cfg.automation_types
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    found cfg.automation_types;
begin
    select * into found from cfg.automation_types as t where t.id = type_id;
    perform cfg_private.require_role_on(found.org_id, min_role, action, 'automation type', 'type_id', type_id);
    return found;
end
$$;
revoke execute on function cfg_private.automation_type_for(uuid, cfg.org_role, text) from public, anon;
grant execute on function cfg_private.automation_type_for(uuid, cfg.org_role, text) to authenticated, service_role;

-- Environment slugs of org_id as ids (PT404 names the unknown one); null stays null (all).
create or replace function cfg_private.environment_ids(org_id uuid, slugs text [])
returns uuid []
language sql stable
set search_path = ''
as $$
    select case when slugs is null then null else array(
        select (cfg_private.environment_by_slug(environment_ids.org_id, s)).id from unnest(slugs) as s
    ) end
$$;
revoke execute on function cfg_private.environment_ids(uuid, text []) from public, anon;
grant execute on function cfg_private.environment_ids(uuid, text []) to authenticated, service_role;

-- A type for org_id's automations (admins).
create or replace function cfg.add_automation_type(org_id uuid, slug text, name text, description text default '')
returns cfg.automation_types
language plpgsql
set search_path = ''
as $$
declare
    created cfg.automation_types;
begin
    perform cfg_private.require_role(add_automation_type.org_id, 'admin', 'managing automation types');
    if exists (select 1 from cfg.automation_types as t where t.org_id = add_automation_type.org_id and t.slug = add_automation_type.slug) then
        raise exception 'an automation type % exists in this organisation', quote_literal(slug)
            using errcode = 'PT409', detail = jsonb_build_object('slug', slug)::text;
    end if;
    insert into cfg.automation_types (org_id, slug, name, description)
    values (add_automation_type.org_id, slug, btrim(name), coalesce(description, ''))
    returning * into created;
    return created;
end
$$;
revoke execute on function cfg.add_automation_type(uuid, text, text, text) from public, anon;
grant execute on function cfg.add_automation_type(uuid, text, text, text) to authenticated, service_role;

-- org_id's types with how many automations and rules each has (members).
create or replace function cfg.list_automation_types(org_id uuid)
returns table (id uuid, slug text, name text, description text, automations bigint, rules bigint)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_automation_types.org_id, 'viewer', 'reading automation types');
    return query
    select t.id, t.slug, t.name, t.description,
        (select count(*) from cfg.automations as a where a.org_id = t.org_id and a.type = t.slug),
        (select count(*) from cfg.validation_rules as r where r.type_id = t.id)
    from cfg.automation_types as t
    where t.org_id = list_automation_types.org_id
    order by t.slug;
end
$$;
revoke execute on function cfg.list_automation_types(uuid) from public, anon;
grant execute on function cfg.list_automation_types(uuid) to authenticated, service_role;

-- Removes a type no automation has (PT409 says how many do), with its rules (admins).
create or replace function cfg.remove_automation_type(type_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
    found cfg.automation_types := cfg_private.automation_type_for(type_id, 'admin', 'managing automation types');
    used bigint := (select count(*) from cfg.automations as a where a.org_id = found.org_id and a.type = found.slug);
begin
    if used > 0 then
        raise exception 'automation type % is used by % automation(s)', found.slug, used
            using errcode = 'PT409', detail = jsonb_build_object('type_id', found.id, 'automations', used)::text;
    end if;
    delete from cfg.automation_types as t where t.id = found.id;
end
$$;
revoke execute on function cfg.remove_automation_type(uuid) from public, anon;
grant execute on function cfg.remove_automation_type(uuid) to authenticated, service_role;

-- A rule from its definition: {name, scope ("entry" | "content"), section, key,
-- required, schema, severity ("error" | "warning"), environments (slugs; null: all),
-- description, enabled}. PT422 names an unknown field.
create or replace function cfg_private.rule_from(org_id uuid, type_id uuid, definition jsonb, base cfg.validation_rules)
returns cfg.validation_rules
language plpgsql stable
set search_path = ''
as $$
declare
    unknown text := (
        select string_agg(k, ', ') from jsonb_object_keys(definition) as k
        where k not in ('name', 'scope', 'section', 'key', 'required', 'schema', 'severity', 'environments',
                        'description', 'enabled')
    );
    rule cfg.validation_rules := base;
begin
    if jsonb_typeof(definition) is distinct from 'object' then
        raise exception 'a rule is a JSON object' using errcode = 'PT422';
    end if;
    if unknown is not null then
        raise exception 'unknown rule field(s): % (name, scope, section, key, required, schema, severity, '
                        'environments, description, enabled)', unknown
            using errcode = 'PT422', detail = jsonb_build_object('fields', unknown)::text;
    end if;
    rule := jsonb_populate_record(rule, definition - 'environments');
    rule.org_id := rule_from.org_id;
    rule.type_id := rule_from.type_id;
    if definition ? 'environments' then
        -- null: every environment.
        rule.environment_ids := cfg_private.environment_ids(rule_from.org_id, case
            when definition -> 'environments' <> 'null'::jsonb
                then array(select jsonb_array_elements_text(definition -> 'environments'))
        end);
    end if;
    rule.scope := coalesce(rule.scope, case when rule.section is null then 'content' else 'entry' end);
    rule.schema := coalesce(rule.schema, '{}');
    rule.required := coalesce(rule.required, false);
    rule.severity := coalesce(rule.severity, 'error');
    rule.enabled := coalesce(rule.enabled, true);
    rule.description := coalesce(rule.description, '');
    return rule;
end
$$;
revoke execute on function cfg_private.rule_from(uuid, uuid, jsonb, cfg.validation_rules) from public, anon;
grant execute on function cfg_private.rule_from(uuid, uuid, jsonb, cfg.validation_rules) to authenticated, service_role;

-- Adds a rule to type_id (admins). Its schema is checked (jsonschema_is_valid), and
-- what runs now is checked against it (cfg.validation_status, events).
create or replace function cfg.add_validation_rule(type_id uuid, definition jsonb)
returns cfg.validation_rules
language plpgsql
set search_path = ''
as $$
declare
    found cfg.automation_types := cfg_private.automation_type_for(type_id, 'admin', 'managing validation rules');
    rule cfg.validation_rules := cfg_private.rule_from(found.org_id, found.id, definition, null);
begin
    if exists (select 1 from cfg.validation_rules as r where r.type_id = found.id and r.name = rule.name) then
        raise exception 'type % has a rule named % already', found.slug, quote_literal(rule.name)
            using errcode = 'PT409', detail = jsonb_build_object('type_id', found.id, 'name', rule.name)::text;
    end if;
    insert into cfg.validation_rules (
        org_id, type_id, name, description, scope, section, key, required, schema, environment_ids, severity, enabled
    )
    values (
        rule.org_id, rule.type_id, rule.name, rule.description, rule.scope, rule.section, rule.key, rule.required,
        rule.schema, rule.environment_ids, rule.severity, rule.enabled
    )
    returning * into rule;
    return rule;
end
$$;
revoke execute on function cfg.add_validation_rule(uuid, jsonb) from public, anon;
grant execute on function cfg.add_validation_rule(uuid, jsonb) to authenticated, service_role;

-- The rule of rule_id for a caller with min_role; PT404 otherwise.
-- security definer: it must see the row to say which.
create or replace function cfg_private.validation_rule_for(rule_id uuid, min_role cfg.org_role, action text)
returns cfg.validation_rules
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    found cfg.validation_rules;
begin
    select * into found from cfg.validation_rules as r where r.id = rule_id;
    perform cfg_private.require_role_on(found.org_id, min_role, action, 'validation rule', 'rule_id', rule_id);
    return found;
end
$$;
revoke execute on function cfg_private.validation_rule_for(uuid, cfg.org_role, text) from public, anon;
grant execute on function cfg_private.validation_rule_for(uuid, cfg.org_role, text) to authenticated, service_role;

-- Changes the fields of rule_id that changes names (admins); a new version of it.
create or replace function cfg.edit_validation_rule(rule_id uuid, changes jsonb)
returns cfg.validation_rules
language plpgsql
set search_path = ''
as $$
declare
    found cfg.validation_rules := cfg_private.validation_rule_for(rule_id, 'admin', 'managing validation rules');
    rule cfg.validation_rules := cfg_private.rule_from(found.org_id, found.type_id, changes, found);
begin
    update cfg.validation_rules as r
    set name = rule.name, description = rule.description, scope = rule.scope, section = rule.section,
        key = rule.key, required = rule.required, schema = rule.schema, environment_ids = rule.environment_ids,
        severity = rule.severity, enabled = rule.enabled
    where r.id = found.id
    returning * into rule;
    return rule;
end
$$;
revoke execute on function cfg.edit_validation_rule(uuid, jsonb) from public, anon;
grant execute on function cfg.edit_validation_rule(uuid, jsonb) to authenticated, service_role;

create or replace function cfg.remove_validation_rule(rule_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
    found cfg.validation_rules := cfg_private.validation_rule_for(rule_id, 'admin', 'managing validation rules');
begin
    delete from cfg.validation_rules as r where r.id = found.id;
end
$$;
revoke execute on function cfg.remove_validation_rule(uuid) from public, anon;
grant execute on function cfg.remove_validation_rule(uuid) to authenticated, service_role;

-- org_id's rules (members: a rule is what an editor's save must pass), of one type or all.
create or replace function cfg.list_validation_rules(org_id uuid, type_id uuid default null)
returns table (
    id uuid, type text, name text, scope text, section text, key text, required boolean, schema jsonb,
    environments text [], severity text, enabled boolean, version integer, description text
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_validation_rules.org_id, 'viewer', 'reading validation rules');
    return query
    select r.id, t.slug, r.name, r.scope, r.section, r.key, r.required, r.schema,
        (select array_agg(e.slug order by e.position) from cfg.environments as e where e.id = any(r.environment_ids)),
        r.severity, r.enabled, r.version, r.description
    from cfg.validation_rules as r
    join cfg.automation_types as t on t.id = r.type_id
    where r.org_id = list_validation_rules.org_id and (list_validation_rules.type_id is null or r.type_id = list_validation_rules.type_id)
    order by t.slug, r.name;
end
$$;
revoke execute on function cfg.list_validation_rules(uuid, uuid) from public, anon;
grant execute on function cfg.list_validation_rules(uuid, uuid) to authenticated, service_role;

-- A rule's dry run (admins): which automations of type_id, in which environments, would
-- fail (or warn) if the rule were saved as definition (rule_id: as that rule changed by
-- it). Nothing is saved. What is checked is what each environment runs.
create or replace function cfg.test_validation_rule(type_id uuid, definition jsonb, rule_id uuid default null)
returns table (automation_id uuid, automation text, environment text, version integer, severity text,
               path text, message text)
language plpgsql stable
set search_path = ''
as $$
declare
    found cfg.automation_types := cfg_private.automation_type_for(type_id, 'admin', 'testing validation rules');
    base cfg.validation_rules := case when rule_id is not null
        then cfg_private.validation_rule_for(rule_id, 'admin', 'testing validation rules') end;
    rule cfg.validation_rules := cfg_private.rule_from(found.org_id, found.id, definition, base);
begin
    perform cfg_private.check_rule_schema(rule.schema);
    return query
    select a.id, a.slug, env.slug, v.version, rule.severity, f.path, f.message
    from cfg.automations as a
    join cfg.deployments as d on d.automation_id = a.id
    join cfg.environments as env on env.id = d.environment_id
    join cfg.config_versions as v on v.id = d.version_id
    cross join lateral cfg_private.rule_findings(rule, v.content) as f
    where a.org_id = found.org_id and a.type = found.slug
        and (rule.environment_ids is null or d.environment_id = any(rule.environment_ids))
    order by a.slug, env.position, f.path;
end
$$;
revoke execute on function cfg.test_validation_rule(uuid, jsonb, uuid) from public, anon;
grant execute on function cfg.test_validation_rule(uuid, jsonb, uuid) to authenticated, service_role;

-- Validates automation_id's latest version against the rules of each environment (or
-- of environment, a slug): {"<env>": {status, errors, warnings}}. Members.
create or replace function cfg.validate_config(automation_id uuid, environment text default null)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, 'viewer', 'validating');
    latest cfg.config_versions := cfg_private.current_version(target.id);
begin
    if environment is not null then
        perform cfg_private.environment_by_slug(target.org_id, environment);  -- PT404 for an unknown one
    end if;
    return (
        select coalesce(jsonb_object_agg(
            e.slug,
            cfg_private.validation_report(target.id, e.id, coalesce(latest.content, '{"sections": {}}'))
        ), '{}'::jsonb)
        from cfg.environments as e
        where e.org_id = target.org_id and (validate_config.environment is null or e.slug = validate_config.environment)
    );
end
$$;
revoke execute on function cfg.validate_config(uuid, text) from public, anon;
grant execute on function cfg.validate_config(uuid, text) to authenticated, service_role;
