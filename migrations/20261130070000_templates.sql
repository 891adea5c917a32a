-- Templates and cloning (issue 11, second part): an org's admins keep templates of
-- content with typed placeholders, bound to an automation type and versioned; an
-- automation can start from a template or as a clone of another one, and records
-- where it came from. Functions: functions/82_templates.sql (the model) and
-- 83_templates_api.sql (the RPCs). Policies: policies/templates.sql.

-- A template: content (as save_config takes it) whose values may be placeholders,
-- {"$placeholder": "<name>"} for a whole value or "${<name>}" inside a string.
-- Every write is checked and recorded as a new version by triggers.
create table cfg.templates (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    type_id uuid not null,
    slug text not null,
    name text not null,
    description text not null default '',
    content jsonb not null default '{"sections": {}}',
    placeholders jsonb not null default '[]',
    -- What the last edit said; copied into its version.
    message text not null default '',
    version integer not null default 1,
    created_by uuid,
    updated_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint templates_id_org_key unique (id, org_id),
    constraint templates_org_slug_key unique (org_id, slug),
    -- A template's output must pass its type's rules: the type is of the same org.
    constraint templates_type_fkey foreign key (type_id, org_id) references cfg.automation_types (id, org_id),
    constraint templates_slug_format check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$'),
    constraint templates_name_length check (length(name) between 1 and 200),
    constraint templates_description_length check (length(description) <= 1000),
    constraint templates_message_length check (length(message) <= 2000),
    -- Bounded like a saved content document (1 MiB) and a form (100 placeholders).
    constraint templates_content_size check (octet_length(content::text) <= 1048576),
    constraint templates_placeholders_array check (
        jsonb_typeof(placeholders) = 'array' and jsonb_array_length(placeholders) <= 100
    )
);
create index templates_type_idx on cfg.templates (type_id, org_id);

-- Every version of every template, as it was (append-only, written by cfgctl).
create table cfg.template_versions (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    template_id uuid not null,
    version integer not null,
    content jsonb not null,
    placeholders jsonb not null,
    message text not null default '',
    created_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint template_versions_template_version_key unique (template_id, version),
    constraint template_versions_template_fkey foreign key (template_id, org_id)
    references cfg.templates (id, org_id) on delete cascade
);
create index template_versions_org_idx on cfg.template_versions (org_id);

-- Where an automation came from: a template version and the (non-secret) values it
-- was filled with, or another automation's version (a clone; that one may be in
-- another org or gone since: plain values, no foreign key). Written by cfgctl only.
create table cfg.automation_origins (
    id uuid primary key default gen_random_uuid(),
    automation_id uuid not null,
    org_id uuid not null,
    template_id uuid,
    template_version integer,
    template_values jsonb not null default '{}',
    source_automation_id uuid,
    source_org_id uuid,
    source_version integer,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint automation_origins_automation_key unique (automation_id),
    constraint automation_origins_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    -- A deleted template leaves the version number it was: drift and apply then say so.
    constraint automation_origins_template_fkey foreign key (template_id, org_id)
    references cfg.templates (id, org_id) on delete set null (template_id),
    constraint automation_origins_values_object check (jsonb_typeof(template_values) = 'object'),
    constraint automation_origins_has_an_origin check (template_version is not null or source_automation_id is not null)
);
create index automation_origins_org_idx on cfg.automation_origins (org_id);
create index automation_origins_template_idx on cfg.automation_origins (template_id, org_id);

alter table cfg.templates enable row level security;
alter table cfg.template_versions enable row level security;
alter table cfg.automation_origins enable row level security;

-- Templates: members read, admins write (directly or through the RPCs; triggers check
-- and version every write). Versions and origins are written by cfgctl only.
grant select, insert, update, delete on cfg.templates to authenticated, service_role;
grant select on cfg.template_versions, cfg.automation_origins to authenticated, service_role;

insert into cfg_private.event_types (type, description) values
('template.created', 'A template was created (version 1)'),
('template.updated', 'A template was changed (its new version)'),
('template.deleted', 'A template was deleted'),
('template.applied', 'An automation was created from a template version, or a newer template version was merged into it'),
('automation.cloned', 'An automation was created as a copy of a version of another one (source, version, secrets copied or left out)')
on conflict (type) do nothing;
