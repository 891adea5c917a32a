-- Validation rules (issue 11, first part): automation types belong to the org; its
-- admins define JSON Schema rules per type, run on every deployment (a save lands in
-- dev, a promotion elsewhere), for all environments or some, as errors or warnings.
-- The engine is pg_jsonschema's (extensions.jsonschema_validation_errors): enable the
-- pg_jsonschema extension on a hosted project first; the embedded stack provides the
-- same functions (supabase/local/40_jsonschema.sql).
-- Functions: functions/35_validation.sql (the engine's use) and 81_validation_api.sql. Policies: policies/validation.sql.

do $engine$
begin
    if to_regprocedure('extensions.jsonschema_validation_errors(json, json)') is null then
        raise exception 'validation rules need pg_jsonschema: create extension pg_jsonschema with schema extensions';
    end if;
end
$engine$;

create table cfg.automation_types (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    slug text not null,
    name text not null,
    description text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint automation_types_id_org_key unique (id, org_id),
    constraint automation_types_org_slug_key unique (org_id, slug),
    constraint automation_types_slug_format check (slug ~ '^[a-z0-9](?:[a-z0-9_-]{0,38}[a-z0-9])?$'),
    constraint automation_types_name_length check (length(name) between 1 and 200),
    constraint automation_types_description_length check (length(description) <= 1000)
);

-- Every org starts with the types automations had so far.
insert into cfg.automation_types (org_id, slug, name)
select o.id, t.slug, t.name
from cfg.orgs as o
cross join (values
    ('service', 'Service'), ('cron_job', 'Cron job'), ('api_gateway', 'API gateway'),
    ('worker', 'Worker'), ('other', 'Other')
) as t (slug, name);

-- An automation's type is one of its org's types (renaming a type's slug follows).
alter table cfg.automations alter column type drop default;
alter table cfg.automations alter column type type text using type::text;
alter table cfg.automations alter column type set default 'service';
alter table cfg.automations add constraint automations_type_fkey foreign key (org_id, type)
references cfg.automation_types (org_id, slug) on update cascade;
create index automations_org_type_idx on cfg.automations (org_id, type);
drop function if exists cfg.create_automation(uuid, text, text, cfg.automation_type, text [], text);
drop type cfg.automation_type;

-- A rule of one type. scope 'entry': section.key must be there (when required) and its
-- value must match schema; scope 'content': schema over the whole content, seen as
-- {"<section>": {"<key>": <value>}} (a secret as "********": rules never see secret values).
create table cfg.validation_rules (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    type_id uuid not null,
    name text not null,
    description text not null default '',
    scope text not null,
    section text,
    key text,
    required boolean not null default false,
    schema jsonb not null default '{}',
    -- null: every environment; else only deployments to these.
    environment_ids uuid [],
    severity text not null default 'error',
    enabled boolean not null default true,
    version integer not null default 1,
    created_by uuid,
    updated_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint validation_rules_id_org_key unique (id, org_id),
    constraint validation_rules_type_fkey foreign key (type_id, org_id)
    references cfg.automation_types (id, org_id) on delete cascade,
    constraint validation_rules_type_name_key unique (type_id, name),
    constraint validation_rules_name_length check (length(name) between 1 and 200),
    constraint validation_rules_description_length check (length(description) <= 1000),
    constraint validation_rules_scope_known check (scope in ('entry', 'content')),
    constraint validation_rules_entry_names_a_key check (
        (scope = 'entry') = (section is not null and key is not null)
    ),
    constraint validation_rules_required_is_for_entries check (scope = 'entry' or not required),
    constraint validation_rules_severity_known check (severity in ('error', 'warning')),
    constraint validation_rules_schema_object check (jsonb_typeof(schema) in ('object', 'boolean')),
    constraint validation_rules_schema_size check (octet_length(schema::text) <= 65536),
    constraint validation_rules_environments_limit check (cardinality(environment_ids) between 1 and 100)
);
create index validation_rules_org_idx on cfg.validation_rules (org_id);
create index validation_rules_type_idx on cfg.validation_rules (type_id);

-- Every version of every rule, as it was defined (rules are versioned like configs).
create table cfg.validation_rule_versions (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    rule_id uuid not null,
    version integer not null,
    change text not null,
    definition jsonb not null,
    changed_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint validation_rule_versions_rule_version_key unique (rule_id, version),
    constraint validation_rule_versions_change_known check (change in ('created', 'updated', 'deleted'))
);
create index validation_rule_versions_org_idx on cfg.validation_rule_versions (org_id);

-- What the rules say about what each environment runs, kept current on every
-- deployment and rule change (a dashboard's badges and "configs with errors").
create table cfg.validation_status (
    id uuid primary key default gen_random_uuid(),
    automation_id uuid not null,
    environment_id uuid not null,
    org_id uuid not null,
    version integer not null,
    status text not null,
    errors jsonb not null default '[]',
    warnings jsonb not null default '[]',
    checked_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint validation_status_automation_environment_key unique (automation_id, environment_id),
    constraint validation_status_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint validation_status_environment_fkey foreign key (environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade,
    constraint validation_status_known check (status in ('valid', 'warnings', 'errors'))
);
create index validation_status_org_status_idx on cfg.validation_status (org_id, status);
create index validation_status_environment_idx on cfg.validation_status (environment_id);
create index validation_status_automation_idx on cfg.validation_status (automation_id);

alter table cfg.automation_types enable row level security;
alter table cfg.validation_rules enable row level security;
alter table cfg.validation_rule_versions enable row level security;
alter table cfg.validation_status enable row level security;

-- Types and rules: members read, admins write (directly or through the RPCs; triggers
-- check and version every write). Versions and status are written by cfgctl only.
grant select, insert, update, delete on cfg.automation_types, cfg.validation_rules to authenticated, service_role;
grant select on cfg.validation_rule_versions, cfg.validation_status to authenticated, service_role;

alter publication supabase_realtime add table cfg.validation_status;

insert into cfg_private.event_types (type, description) values
('rule.created', 'A validation rule was created (its definition, version 1)'),
('rule.updated', 'A validation rule was changed (its new definition and version)'),
('rule.deleted', 'A validation rule was deleted'),
('validation.status_changed', 'What an environment runs went from valid to warnings or errors, or back')
on conflict (type) do nothing;
