-- =============================================================================
-- Tenancy: organisations, members with roles, environments, automations,
-- config sections and entries. Functions and triggers live in functions/,
-- row-level security policies in policies/.
-- =============================================================================

create schema if not exists cfg;
create schema if not exists cfg_private;

-- cfg is exposed through PostgREST to signed-in users only; anon sees nothing.
revoke all on schema cfg from public;
grant usage on schema cfg to authenticated, service_role;
-- cfg_private is never exposed.
revoke all on schema cfg_private from public;
grant usage on schema cfg_private to service_role;

-- New functions are not executable by everyone: each one grants explicitly.
alter default privileges in schema cfg revoke execute on functions from public;
alter default privileges in schema cfg_private revoke execute on functions from public;

-- Ordered: viewer < editor < admin. Policies compare roles with >=.
create type cfg.org_role as enum ('viewer', 'editor', 'admin');
create type cfg.automation_type as enum ('service', 'cron_job', 'api_gateway', 'worker', 'other');
create type cfg.automation_status as enum ('active', 'paused', 'archived');

-- =============================================================================
-- Organisations and members
-- =============================================================================

create table cfg.orgs (
    -- An org is its own tenant: its id is the org_id every other table carries.
    id uuid primary key default gen_random_uuid(),
    name text not null,
    slug text not null,
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint orgs_slug_key unique (slug),
    -- Slugs go into URLs and CLI arguments: lowercase, digits, inner hyphens.
    constraint orgs_slug_format check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
    constraint orgs_name_length check (length(btrim(name)) between 1 and 200)
);
create index orgs_created_by_idx on cfg.orgs (created_by);

create table cfg.org_members (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    role cfg.org_role not null default 'viewer',
    invited_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- One membership per user and org.
    constraint org_members_org_user_key unique (org_id, user_id)
);
-- The RLS helper looks memberships up by user first.
create index org_members_user_org_idx on cfg.org_members (user_id, org_id) include (role);
create index org_members_invited_by_idx on cfg.org_members (invited_by);

-- =============================================================================
-- Environments: an ordered pipeline per org (dev -> staging -> prod by default)
-- =============================================================================

create table cfg.environments (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    name text not null,
    slug text not null,
    position integer not null,
    requires_approval boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint environments_org_slug_key unique (org_id, slug),
    -- Pipeline order is total; deferrable so a reorder can swap positions in one transaction.
    constraint environments_org_position_key unique (org_id, position) deferrable initially immediate,
    -- Target of composite foreign keys that keep children in the same org.
    constraint environments_id_org_key unique (id, org_id),
    constraint environments_slug_format check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$'),
    constraint environments_name_length check (length(btrim(name)) between 1 and 100),
    constraint environments_position_nonnegative check (position >= 0)
);

-- =============================================================================
-- Automations, their config sections and entries
-- =============================================================================

create table cfg.automations (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    name text not null,
    slug text not null,
    type cfg.automation_type not null default 'service',
    status cfg.automation_status not null default 'active',
    tags text [] not null default '{}',
    description text not null default '',
    created_by uuid references auth.users (id) on delete set null,
    updated_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint automations_org_slug_key unique (org_id, slug),
    constraint automations_id_org_key unique (id, org_id),
    constraint automations_slug_format check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$'),
    constraint automations_name_length check (length(btrim(name)) between 1 and 200),
    constraint automations_description_length check (length(description) <= 10000),
    constraint automations_tags_limit check (cardinality(tags) <= 50)
);
create index automations_created_by_idx on cfg.automations (created_by);
create index automations_updated_by_idx on cfg.automations (updated_by);
create index automations_org_updated_idx on cfg.automations (org_id, updated_at desc);
create index automations_tags_idx on cfg.automations using gin (tags);

create table cfg.config_sections (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    automation_id uuid not null,
    name text not null,
    description text not null default '',
    position integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint config_sections_automation_name_key unique (automation_id, name),
    constraint config_sections_id_automation_org_key unique (id, automation_id, org_id),
    -- A section belongs to an automation of the same org.
    constraint config_sections_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint config_sections_name_format check (name ~ '^[A-Za-z0-9_.-]{1,100}$'),
    constraint config_sections_description_length check (length(description) <= 10000)
);
create index config_sections_org_automation_idx on cfg.config_sections (org_id, automation_id);

create table cfg.config_entries (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    automation_id uuid not null,
    section_id uuid not null,
    key text not null,
    -- Secret values never live here: they are kept in cfg.entry_secrets.
    value jsonb,
    is_secret boolean not null default false,
    description text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint config_entries_section_key_key unique (section_id, key),
    constraint config_entries_id_org_key unique (id, org_id),
    -- An entry belongs to a section of the same automation and org.
    constraint config_entries_section_fkey foreign key (section_id, automation_id, org_id)
    references cfg.config_sections (id, automation_id, org_id) on delete cascade,
    constraint config_entries_key_format check (key ~ '^[A-Za-z0-9_.-]{1,200}$'),
    -- A plain entry has a value; a secret entry keeps it in cfg.entry_secrets.
    constraint config_entries_value_placement check (
        (is_secret and value is null) or (not is_secret and value is not null)
    ),
    -- 1 MiB per value keeps rows, versions and realtime messages bounded.
    constraint config_entries_value_max_1mib check (octet_length(value::text) <= 1048576),
    constraint config_entries_description_length check (length(description) <= 10000)
);
-- Entries are read per automation (embedded selects, saves); org_id follows for RLS.
create index config_entries_automation_org_idx on cfg.config_entries (automation_id, org_id);
create index config_entries_automation_fk_idx on cfg.config_entries (section_id, automation_id, org_id);

create table cfg.entry_secrets (
    -- The id of the cfg.config_entries row whose value this is.
    id uuid primary key,
    org_id uuid not null,
    value jsonb not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- Deferred: the entry row is written by the same statement that diverts its value here.
    constraint entry_secrets_entry_fkey foreign key (id, org_id)
    references cfg.config_entries (id, org_id) on delete cascade
    deferrable initially deferred,
    constraint entry_secrets_value_max_1mib check (octet_length(value::text) <= 1048576)
);
create index entry_secrets_org_idx on cfg.entry_secrets (org_id);

-- =============================================================================
-- Privileges: the API roles get table access, row-level security decides rows.
-- =============================================================================

alter table cfg.orgs enable row level security;
alter table cfg.org_members enable row level security;
alter table cfg.environments enable row level security;
alter table cfg.automations enable row level security;
alter table cfg.config_sections enable row level security;
alter table cfg.config_entries enable row level security;
alter table cfg.entry_secrets enable row level security;

revoke all on all tables in schema cfg from public, anon;
grant select, insert, update, delete on
cfg.orgs, cfg.org_members, cfg.environments, cfg.automations,
cfg.config_sections, cfg.config_entries, cfg.entry_secrets
to authenticated, service_role;

-- Browser tabs subscribe to these through Supabase Realtime. Secrets are not published.
alter publication supabase_realtime add table
cfg.automations, cfg.config_sections, cfg.config_entries, cfg.environments;
