-- =============================================================================
-- Versioning and environments: immutable config versions per automation, the
-- secret values they captured (cfg_private, never exposed), the version deployed
-- in each environment with its history, and promotion requests with approval.
-- Functions live in functions/versioning.sql and functions/promotion.sql,
-- policies in policies/versioning.sql.
-- =============================================================================

-- =============================================================================
-- Versions: one row per save, numbered 1, 2, 3… per automation, never changed.
-- =============================================================================

create table cfg.config_versions (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    automation_id uuid not null,
    version integer not null,
    parent_version integer,
    -- The whole content: {"sections": {name: {description, position, entries: {key: entry}}}}.
    -- A secret entry is {"secret": true, "digest": <keyed hash>}: never its value.
    content jsonb not null,
    -- sha256 of content::text (jsonb text is canonical), to skip identical saves.
    content_hash text not null,
    message text not null default '',
    -- 'save' (save_config), 'rollback', 'direct' (a direct table write, versioned at commit).
    kind text not null default 'save',
    restored_from integer,
    author_id uuid references auth.users (id) on delete set null,
    author_email text,
    author_role text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- Version numbers are unique and dense per automation.
    constraint config_versions_automation_version_key unique (automation_id, version),
    constraint config_versions_id_automation_org_key unique (id, automation_id, org_id),
    constraint config_versions_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint config_versions_version_positive check (version >= 1),
    -- History is a chain: the parent is always an earlier version.
    constraint config_versions_parent_earlier check (parent_version is null or parent_version < version),
    constraint config_versions_kind_known check (kind in ('save', 'rollback', 'direct')),
    constraint config_versions_restored_only_on_rollback check ((kind = 'rollback') = (restored_from is not null)),
    constraint config_versions_message_length check (length(message) <= 2000),
    constraint config_versions_content_shape check (jsonb_typeof(content -> 'sections') = 'object')
);
-- History pages are read newest first within one automation of one org.
create index config_versions_org_automation_version_idx
on cfg.config_versions (org_id, automation_id, version desc);
create index config_versions_author_idx on cfg.config_versions (author_id);

-- Secret values captured by a version, so rollback and promotion can restore them.
-- Not in cfg: no API role can read it; only the versioning functions do.
create table cfg_private.version_secrets (
    version_id uuid not null references cfg.config_versions (id) on delete cascade,
    org_id uuid not null,
    section text not null,
    key text not null,
    value jsonb not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (version_id, section, key)
);
create index version_secrets_org_idx on cfg_private.version_secrets (org_id);

-- The key of the digests that stand for secret values in snapshots. A keyed hash
-- (HMAC) shows that a secret changed without letting anyone guess the value.
create table cfg_private.digest_keys (
    -- Exactly one row.
    id boolean primary key default true,
    key bytea not null default extensions.gen_random_bytes(32),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint digest_keys_single_row check (id)
);
insert into cfg_private.digest_keys default values;

-- =============================================================================
-- Deployments: the version each environment runs, and how it got there.
-- =============================================================================

create table cfg.deployments (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    automation_id uuid not null,
    environment_id uuid not null,
    version integer not null,
    version_id uuid not null,
    deployed_by uuid references auth.users (id) on delete set null,
    deployed_by_email text,
    deployed_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- One deployed version per automation and environment.
    constraint deployments_automation_environment_key unique (automation_id, environment_id),
    constraint deployments_environment_fkey foreign key (environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade,
    -- The deployed version belongs to the same automation and org.
    constraint deployments_version_fkey foreign key (version_id, automation_id, org_id)
    references cfg.config_versions (id, automation_id, org_id) on delete cascade
);
create index deployments_org_automation_idx on cfg.deployments (org_id, automation_id);
create index deployments_environment_idx on cfg.deployments (environment_id, org_id);
create index deployments_version_idx on cfg.deployments (version_id, automation_id, org_id);
create index deployments_deployed_by_idx on cfg.deployments (deployed_by);

create table cfg.deployment_history (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    automation_id uuid not null,
    environment_id uuid not null,
    version integer not null,
    version_id uuid not null,
    previous_version integer,
    -- 'save' and 'rollback' land in the first environment; 'promotion' moves a later one.
    source text not null,
    from_environment_id uuid,
    request_id uuid,
    -- Why an admin skipped a pipeline step.
    reason text,
    actor_id uuid references auth.users (id) on delete set null,
    actor_email text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint deployment_history_source_known check (source in ('save', 'rollback', 'direct', 'promotion')),
    constraint deployment_history_environment_fkey foreign key (environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade,
    constraint deployment_history_version_fkey foreign key (version_id, automation_id, org_id)
    references cfg.config_versions (id, automation_id, org_id) on delete cascade
);
create index deployment_history_org_automation_idx
on cfg.deployment_history (org_id, automation_id, environment_id, created_at desc);
create index deployment_history_environment_idx on cfg.deployment_history (environment_id, org_id);
create index deployment_history_version_idx on cfg.deployment_history (version_id, automation_id, org_id);
create index deployment_history_actor_idx on cfg.deployment_history (actor_id);

-- =============================================================================
-- Promotion requests: promotions into an environment that requires approval.
-- =============================================================================

create type cfg.promotion_status as enum ('pending', 'approved', 'applied', 'rejected', 'superseded');

create table cfg.promotion_requests (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    automation_id uuid not null,
    from_environment_id uuid not null,
    to_environment_id uuid not null,
    -- Bound to this exact version: approving promotes it, never a newer one.
    version integer not null,
    version_id uuid not null,
    -- What the target ran when the request was made (the diff the approver sees).
    target_version integer,
    status cfg.promotion_status not null default 'pending',
    message text not null default '',
    -- Set when an admin skipped a pipeline step.
    skip_reason text,
    requested_by uuid references auth.users (id) on delete set null,
    requested_by_email text,
    decided_by uuid references auth.users (id) on delete set null,
    decided_by_email text,
    decided_at timestamptz,
    decision_comment text,
    applied_at timestamptz,
    superseded_by uuid references cfg.promotion_requests (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint promotion_requests_from_environment_fkey foreign key (from_environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade,
    constraint promotion_requests_to_environment_fkey foreign key (to_environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade,
    constraint promotion_requests_version_fkey foreign key (version_id, automation_id, org_id)
    references cfg.config_versions (id, automation_id, org_id) on delete cascade,
    constraint promotion_requests_distinct_environments check (from_environment_id <> to_environment_id),
    -- A rejection always says why; a decision always says who and when.
    constraint promotion_requests_rejection_reason check (
        status <> 'rejected' or length(btrim(coalesce(decision_comment, ''))) > 0
    ),
    constraint promotion_requests_decided check (
        status not in ('approved', 'applied', 'rejected') or decided_at is not null
    ),
    constraint promotion_requests_applied check ((status = 'applied') = (applied_at is not null)),
    constraint promotion_requests_message_length check (length(message) <= 2000)
);
-- At most one open (pending or approved) request per automation and target environment.
create unique index promotion_requests_one_open_idx
on cfg.promotion_requests (automation_id, to_environment_id)
where status in ('pending', 'approved');
create index promotion_requests_org_status_idx on cfg.promotion_requests (org_id, status, created_at desc);
create index promotion_requests_org_automation_idx on cfg.promotion_requests (org_id, automation_id);
create index promotion_requests_from_environment_idx on cfg.promotion_requests (from_environment_id, org_id);
create index promotion_requests_to_environment_idx on cfg.promotion_requests (to_environment_id, org_id);
create index promotion_requests_version_idx on cfg.promotion_requests (version_id, automation_id, org_id);
create index promotion_requests_requested_by_idx on cfg.promotion_requests (requested_by);
create index promotion_requests_decided_by_idx on cfg.promotion_requests (decided_by);
create index promotion_requests_superseded_by_idx on cfg.promotion_requests (superseded_by);

-- =============================================================================
-- Privileges: API roles read; every write goes through the RPCs, which check
-- roles themselves (functions/versioning.sql, functions/promotion.sql).
-- =============================================================================

alter table cfg.config_versions enable row level security;
alter table cfg.deployments enable row level security;
alter table cfg.deployment_history enable row level security;
alter table cfg.promotion_requests enable row level security;
alter table cfg_private.version_secrets enable row level security;
alter table cfg_private.digest_keys enable row level security;

revoke all on cfg.config_versions, cfg.deployments, cfg.deployment_history, cfg.promotion_requests
from public, anon, authenticated, service_role;
grant select on cfg.config_versions, cfg.deployments, cfg.deployment_history, cfg.promotion_requests
to authenticated, service_role;
revoke all on cfg_private.version_secrets, cfg_private.digest_keys from public, anon, authenticated, service_role;

-- Dashboards show deployments and approvals live.
alter publication supabase_realtime add table cfg.deployments, cfg.promotion_requests;
