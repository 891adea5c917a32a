-- =============================================================================
-- Validation rules: automation types of an org, JSON Schema rules per type (pg_jsonschema's
-- extensions.jsonschema_validation_errors), run on every deployment: a save, rollback or
-- direct write lands in dev, a promotion in its target. Tables:
-- migrations/20261130060000_validation_rules.sql.
-- =============================================================================

-- Content as rules see it: {"<section>": {"<key>": <value>}}, a secret as "********"
-- (rules never see a secret's value). From a version snapshot or RPC content alike.
create or replace function cfg_private.rule_view(content jsonb)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
begin
    -- plpgsql, not sql: PostgreSQL 15 plans a sql function's query on every call, and
    -- every save with a content rule builds this view.
    return (
        select coalesce(jsonb_object_agg(s.key, (
            select coalesce(jsonb_object_agg(
                e.key,
                case when (e.value -> 'secret') = 'true'::jsonb then '"********"'::jsonb else e.value -> 'value' end
            ), '{}'::jsonb)
            from jsonb_each(s.value -> 'entries') as e
        )), '{}'::jsonb)
        from jsonb_each(content -> 'sections') as s
    );
end
$$;
revoke execute on function cfg_private.rule_view(jsonb) from public, anon;
grant execute on function cfg_private.rule_view(jsonb) to authenticated, service_role;

-- What one rule finds in content (a version snapshot): (path, message) per problem.
-- An entry rule names section.key: missing when required, else its value against the
-- schema (a secret's presence only). A content rule: the whole view against the schema;
-- view is cfg_private.rule_view(content), passed in when several rules share it.
create or replace function cfg_private.rule_findings(rule cfg.validation_rules, content jsonb, view json default null)
returns table (path text, message text)
language plpgsql stable
set search_path = ''
as $$
declare
    entry jsonb;
begin
    if rule.scope = 'content' then
        return query
        select '', m
        from unnest(extensions.jsonschema_validation_errors(
            rule.schema::json, coalesce(view, cfg_private.rule_view(content)::json)
        )) as m;
        return;
    end if;
    entry := content -> 'sections' -> rule.section -> 'entries' -> rule.key;
    if entry is null then
        if rule.required then
            return query select rule.section || '.' || rule.key, rule.section || '.' || rule.key || ' is required';
        end if;
    elsif (entry -> 'secret') is distinct from 'true'::jsonb then
        return query
        select rule.section || '.' || rule.key, m
        from unnest(extensions.jsonschema_validation_errors(rule.schema::json, (entry -> 'value')::json)) as m;
    end if;
end
$$;
revoke execute on function cfg_private.rule_findings(cfg.validation_rules, jsonb, json) from public, anon;
grant execute on function cfg_private.rule_findings(cfg.validation_rules, jsonb, json) to authenticated, service_role;

-- Every rule of the automation's type that applies in environment_id, against content:
-- {status, errors: [{path, message, rule_id, rule_name}], warnings: [...]}, each list by
-- path, rule name and message. It runs on every save: the rules' view of the content is
-- built once, and content without findings (the usual case) costs no sorting.
-- security definer: rules are read whoever deploys (a service key, an approver).
create or replace function cfg_private.validation_report(automation_id uuid, environment_id uuid, content jsonb)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    rule cfg.validation_rules;
    view json;
    found jsonb := '[]';
begin
    for rule in
        select r.*
        from cfg.automations as a
        join cfg.automation_types as t on t.org_id = a.org_id and t.slug = a.type
        join cfg.validation_rules as r on r.type_id = t.id
        where a.id = validation_report.automation_id and r.enabled
            and (r.environment_ids is null or validation_report.environment_id = any(r.environment_ids))
    loop
        if rule.scope = 'content' and view is null then
            view := cfg_private.rule_view(content)::json;
        end if;
        found := found || coalesce((
            select jsonb_agg(jsonb_build_object(
                'severity', rule.severity, 'path', f.path, 'message', f.message,
                'rule_id', rule.id, 'rule_name', rule.name
            ))
            from cfg_private.rule_findings(rule, content, view) as f
        ), '[]');
    end loop;
    if found = '[]' then
        return '{"status": "valid", "errors": [], "warnings": []}';
    end if;
    return (
        select jsonb_build_object(
            'status', case when bool_or(f ->> 'severity' = 'error') then 'errors' else 'warnings' end,
            'errors', coalesce(jsonb_agg(f order by f ->> 'path', f ->> 'rule_name', f ->> 'message')
                filter (where f ->> 'severity' = 'error'), '[]'),
            'warnings', coalesce(jsonb_agg(f order by f ->> 'path', f ->> 'rule_name', f ->> 'message')
                filter (where f ->> 'severity' = 'warning'), '[]')
        )
        from jsonb_array_elements(found) as f
    );
end
$$;
revoke execute on function cfg_private.validation_report(uuid, uuid, jsonb) from public, anon;
grant execute on function cfg_private.validation_report(uuid, uuid, jsonb) to authenticated, service_role;

-- Records what the rules say about version in environment_id (cfg.validation_status,
-- an event when the status changes) and returns the report. An automation without a
-- row is valid there (rows appear with the first finding, and stay).
create or replace function cfg_private.record_validation(version cfg.config_versions, environment_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    report jsonb := cfg_private.validation_report(version.automation_id, environment_id, version.content);
    was text;
begin
    select vs.status into was from cfg.validation_status as vs
    where vs.automation_id = version.automation_id and vs.environment_id = record_validation.environment_id;
    if was is null and report ->> 'status' = 'valid' then
        return report;  -- no row means valid: automations no rule ever found fault with cost nothing
    end if;
    insert into cfg.validation_status as vs (
        automation_id, environment_id, org_id, version, status, errors, warnings, checked_at
    )
    values (
        version.automation_id, environment_id, version.org_id, version.version, report ->> 'status',
        report -> 'errors', report -> 'warnings', now()
    )
    on conflict on constraint validation_status_automation_environment_key do update
        set version = excluded.version, status = excluded.status, errors = excluded.errors,
            warnings = excluded.warnings, checked_at = excluded.checked_at;
    if was is distinct from report ->> 'status' and (was is not null or report ->> 'status' <> 'valid') then
        perform cfg_private.emit_event(
            version.org_id, 'validation.status_changed', 'automation', version.automation_id, version.automation_id,
            jsonb_build_object('version', version.version, 'from', was, 'to', report ->> 'status',
                               'errors', jsonb_array_length(report -> 'errors'),
                               'warnings', jsonb_array_length(report -> 'warnings')),
            environment_id
        );
    end if;
    return report;
end
$$;
revoke execute on function cfg_private.record_validation(cfg.config_versions, uuid)
from public, anon, authenticated, service_role;

-- Refuses (PT422) a deployment the rules of its environment fail; records the status
-- otherwise. Called by cfg_private.deploy, the one way a version reaches an environment.
create or replace function cfg_private.enforce_rules(version cfg.config_versions, environment_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
    report jsonb := cfg_private.record_validation(version, environment_id);
begin
    if report ->> 'status' = 'errors' then
        raise exception 'invalid content: % validation rule error(s) in %, first: % %',
            jsonb_array_length(report -> 'errors'),
            (select e.slug from cfg.environments as e where e.id = enforce_rules.environment_id),
            report -> 'errors' -> 0 ->> 'path', report -> 'errors' -> 0 ->> 'message'
            using errcode = 'PT422',
                  detail = (report || jsonb_build_object('environment_id', environment_id))::text;
    end if;
end
$$;
revoke execute on function cfg_private.enforce_rules(cfg.config_versions, uuid)
from public, anon, authenticated, service_role;

-- After a rule changed: the status of everything deployed of its type, again.
create or replace function cfg_private.refresh_validation_status(type_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
    perform cfg_private.record_validation(v, d.environment_id)
    from cfg.automation_types as t
    join cfg.automations as a on a.org_id = t.org_id and a.type = t.slug
    join cfg.deployments as d on d.automation_id = a.id
    join cfg.config_versions as v on v.id = d.version_id
    where t.id = refresh_validation_status.type_id;
end
$$;
revoke execute on function cfg_private.refresh_validation_status(uuid) from public, anon, authenticated, service_role;

-- =============================================================================
-- Rules: every write (an RPC or a direct one) checked, versioned, an event
-- =============================================================================

-- A rule's schema must be a JSON Schema pg_jsonschema accepts, and say what it checks:
-- pg_jsonschema asserts "format" in drafts 4 to 7 only (in 2019-09 and 2020-12, the
-- default, it is an annotation), so a rule using it names its draft, or it would check
-- nothing there (and the draft a hosted project defaults to depends on its version).
create or replace function cfg_private.check_rule_schema(schema jsonb)
returns void
language plpgsql stable
set search_path = ''
as $$
begin
    if not extensions.jsonschema_is_valid(schema::json) then
        raise exception 'the rule''s schema is not a valid JSON Schema'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'schema')::text;
    end if;
    if jsonb_path_exists(schema, 'strict $.** ? (@.type() == "object" && @.format.type() == "string")')
        and coalesce(schema ->> '$schema', '') !~ 'json-schema\.org/draft-0[4-7]/schema'
    then
        raise exception 'the rule uses "format", which pg_jsonschema checks in drafts 4 to 7 only'
            using errcode = 'PT422',
                  hint = 'add "$schema": "http://json-schema.org/draft-07/schema#" to the rule''s schema',
                  detail = jsonb_build_object('field', 'schema.$schema')::text;
    end if;
end
$$;
revoke execute on function cfg_private.check_rule_schema(jsonb) from public, anon;
grant execute on function cfg_private.check_rule_schema(jsonb) to authenticated, service_role;

create or replace function cfg_private.check_validation_rule()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.name := btrim(new.name);
    new.description := coalesce(new.description, '');
    perform cfg_private.check_rule_schema(new.schema);
    if exists (
        select 1 from unnest(new.environment_ids) as e (id)
        where not exists (select 1 from cfg.environments as env where env.id = e.id and env.org_id = new.org_id)
    ) then
        raise exception 'environment not found'
            using errcode = 'PT404', detail = jsonb_build_object('field', 'environment_ids')::text;
    end if;
    if tg_op = 'UPDATE' then
        new.version := old.version + 1;
        new.type_id := old.type_id;  -- a rule stays with its type: make a new one elsewhere
    else
        new.version := 1;
    end if;
    return new;
end
$$;
revoke execute on function cfg_private.check_validation_rule() from public, anon, authenticated, service_role;

-- security definer: rule versions and statuses take no writes from API roles.
create or replace function cfg_private.record_rule_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    rule cfg.validation_rules := case when tg_op = 'DELETE' then old else new end;
    change text := case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end;
begin
    insert into cfg.validation_rule_versions (org_id, rule_id, version, change, definition, changed_by)
    values (
        rule.org_id, rule.id, case when tg_op = 'DELETE' then rule.version + 1 else rule.version end, change,
        to_jsonb(rule) - 'created_at' - 'updated_at' - 'created_by' - 'updated_by', (select auth.uid())
    );
    perform cfg_private.emit_event(
        rule.org_id, 'rule.' || change, 'validation_rule', rule.id, null,
        jsonb_build_object('rule_id', rule.id, 'name', rule.name, 'type_id', rule.type_id, 'version', rule.version,
                           'severity', rule.severity)
    );
    -- Deleting a type deletes its rules: nothing is left to refresh then.
    if exists (select 1 from cfg.automation_types as t where t.id = rule.type_id) then
        perform cfg_private.refresh_validation_status(rule.type_id);
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.record_rule_change() from public, anon, authenticated, service_role;

create or replace trigger check_validation_rule before insert or update on cfg.validation_rules
for each row execute function cfg_private.check_validation_rule();
create or replace trigger record_rule_change after insert or update or delete on cfg.validation_rules
for each row execute function cfg_private.record_rule_change();

-- A new org starts with the usual automation types.
-- security definer: it writes the org's first rows before anyone is its member.
create or replace function cfg_private.seed_automation_types()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into cfg.automation_types (org_id, slug, name)
    values (new.id, 'service', 'Service'), (new.id, 'cron_job', 'Cron job'), (new.id, 'api_gateway', 'API gateway'),
        (new.id, 'worker', 'Worker'), (new.id, 'other', 'Other');
    return null;
end
$$;
revoke execute on function cfg_private.seed_automation_types() from public, anon, authenticated, service_role;

create or replace trigger seed_automation_types after insert on cfg.orgs
for each row execute function cfg_private.seed_automation_types();

select cfg_private.register_table('cfg.automation_types');
select cfg_private.register_table('cfg.validation_rules', stamp_author => true);
select cfg_private.register_table('cfg.validation_rule_versions');
-- Like deployments: a save's own status row is recorded by its version, not audited again.
select cfg_private.register_table('cfg.validation_status', versioned => 'audit');
