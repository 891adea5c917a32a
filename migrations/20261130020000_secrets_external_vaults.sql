-- External vaults (issue 10, item 4): an org's admins configure AWS Secrets Manager or
-- HashiCorp Vault KV v2 backends and bind secret entries to secrets there. The sync
-- service (sync_service/workers/vaults.py) does every external call; the database
-- keeps the bindings, their state, and conflicts for an admin to resolve.
-- Functions: functions/72_secrets_external.sql. Policies: policies/secrets.sql.

create table cfg.vault_backends (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    name text not null,
    kind text not null,
    -- Non-secret settings (region, endpoint, address, namespace, auth method).
    config jsonb not null default '{}',
    -- The credentials are a Vault secret (JSON text); only the sync service reads it.
    credentials_secret_id uuid not null,
    -- `cfgctl vault backend test`: asked for at test_requested_at, answered by the
    -- sync service at tested_at with test_result ({ok, error_kind, error, facts}).
    test_requested_at timestamptz,
    tested_at timestamptz,
    test_result jsonb,
    -- Who did what: plain values, as everywhere (Supabase Auth deletes users).
    created_by uuid,
    updated_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint vault_backends_id_org_key unique (id, org_id),
    constraint vault_backends_org_name_key unique (org_id, name),
    constraint vault_backends_name_format check (name ~ '^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$'),
    constraint vault_backends_kind_known check (kind in ('aws_sm', 'hashicorp')),
    constraint vault_backends_config_object check (jsonb_typeof(config) = 'object'),
    constraint vault_backends_config_size check (octet_length(config::text) <= 4096)
);
create index vault_backends_credentials_idx on cfg.vault_backends (credentials_secret_id);

-- One row per external target of a secret entry.
--   reference: the value lives only in the external vault (environment_id is null:
--              every environment reads the same secret); cfgctl keeps a token of it.
--   push:      cfgctl is the source; the value is written to the external secret on
--              each save (environment_id null) or on each deployment to environment_id.
create table cfg.secret_bindings (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    automation_id uuid not null,
    entry_id uuid not null,
    environment_id uuid,
    backend_id uuid not null,
    ref text not null,
    mode text not null,
    -- The first characters of the value's token (an HMAC): shows that it changed, never what it is.
    fingerprint text,
    -- The external secret's version last seen (AWS VersionId, Vault KV version).
    external_version text,
    -- push: the Vault secret last written out (compared with what should be there).
    pushed_secret_id uuid,
    -- A conflict resolved for the external side: the next check imports its value.
    import_next boolean not null default false,
    status text not null default 'pending',
    error_kind text,
    last_error text,
    last_success_at timestamptz,
    attempts integer not null default 0,
    -- When the sync service looks next: soon after a change, on failure with backoff.
    next_check_at timestamptz not null default now(),
    -- Who did what: plain values, as everywhere (Supabase Auth deletes users).
    created_by uuid,
    updated_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint secret_bindings_id_org_key unique (id, org_id),
    -- An entry that stops being a secret, or goes, takes its bindings along. (Same
    -- org: the automation's, set by cfg_private.bind_secret, the only writer.)
    constraint secret_bindings_entry_fkey foreign key (entry_id)
    references cfg.entry_secrets (id) on delete cascade,
    constraint secret_bindings_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint secret_bindings_environment_fkey foreign key (environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade,
    constraint secret_bindings_backend_fkey foreign key (backend_id, org_id)
    references cfg.vault_backends (id, org_id) on delete restrict,
    constraint secret_bindings_entry_environment_key unique nulls not distinct (entry_id, environment_id),
    constraint secret_bindings_mode_known check (mode in ('reference', 'push')),
    constraint secret_bindings_reference_everywhere check (mode = 'push' or environment_id is null),
    constraint secret_bindings_ref_length check (length(ref) between 1 and 512),
    constraint secret_bindings_status_known check (status in ('pending', 'ok', 'error', 'conflict')),
    constraint secret_bindings_error_kind_known check (
        error_kind in ('denied', 'not_found', 'unreachable', 'invalid', 'conflict')
    )
);
create index secret_bindings_automation_idx on cfg.secret_bindings (automation_id);
create index secret_bindings_backend_idx on cfg.secret_bindings (backend_id);
create index secret_bindings_org_idx on cfg.secret_bindings (org_id);
create index secret_bindings_environment_idx on cfg.secret_bindings (environment_id);
create index secret_bindings_due_idx on cfg.secret_bindings (next_check_at);

-- Changed on both sides: the external secret moved while cfgctl had a value to push.
-- Neither side wins until an admin says which (cfg.resolve_secret_conflict).
create table cfg.secret_conflicts (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    binding_id uuid not null,
    automation_id uuid not null,
    external_version text not null,
    status text not null default 'open',
    resolution text,
    resolved_by uuid,
    resolved_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint secret_conflicts_binding_fkey foreign key (binding_id, org_id)
    references cfg.secret_bindings (id, org_id) on delete cascade,
    constraint secret_conflicts_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint secret_conflicts_status_known check (status in ('open', 'resolved')),
    constraint secret_conflicts_resolution_known check (
        (status = 'open' and resolution is null) or resolution in ('keep_local', 'take_external')
    )
);
create unique index secret_conflicts_one_open_idx on cfg.secret_conflicts (binding_id) where status = 'open';
create index secret_conflicts_org_idx on cfg.secret_conflicts (org_id);
create index secret_conflicts_automation_idx on cfg.secret_conflicts (automation_id);

-- A reveal of a reference-bound secret goes through the sync service: the request
-- (checked and audited when made) is answered with a short-lived Vault secret that the
-- requester collects once.
create table cfg_private.external_reveals (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    binding_id uuid not null references cfg.secret_bindings (id) on delete cascade,
    requested_by uuid,
    status text not null default 'pending',
    secret_id uuid,
    error text,
    created_at timestamptz not null default now(),
    answered_at timestamptz,
    constraint external_reveals_status_known check (status in ('pending', 'ready', 'failed'))
);
create index external_reveals_pending_idx on cfg_private.external_reveals (created_at) where status = 'pending';
create index external_reveals_secret_idx on cfg_private.external_reveals (secret_id);
create index external_reveals_binding_idx on cfg_private.external_reveals (binding_id);

-- Deleting an org does not scan the reveal requests.
create index external_reveals_org_idx on cfg_private.external_reveals (org_id);

-- A reference-bound entry holds no value in Vault: only its token.
alter table cfg.entry_secrets alter column secret_id drop not null;

-- A version recorded because the external value changed (changed keys, no values).
alter table cfg.config_versions drop constraint config_versions_kind_known;
alter table cfg.config_versions add constraint config_versions_kind_known
check (kind in ('save', 'rollback', 'direct', 'sync'));
alter table cfg.deployment_history drop constraint deployment_history_source_known;
alter table cfg.deployment_history add constraint deployment_history_source_known
check (source in ('save', 'rollback', 'direct', 'promotion', 'sync'));

alter table cfg.vault_backends enable row level security;
alter table cfg.secret_bindings enable row level security;
alter table cfg.secret_conflicts enable row level security;
alter table cfg_private.external_reveals enable row level security;

-- Reads under RLS; every write goes through the RPCs (credentials go to Vault, refs
-- are checked, the sync state is the sync service's).
grant select on cfg.vault_backends, cfg.secret_bindings, cfg.secret_conflicts to authenticated, service_role;

insert into cfg_private.event_types (type, description) values
('secret.synced', 'The sync service found a new value in an external vault (a version of kind sync)'),
('secret.pushed', 'The sync service wrote a secret value to an external vault'),
('secret.sync_failed', 'An external vault refused or could not be reached for a binding (first failure)'),
('secret.sync_conflict', 'A bound secret changed both in cfgctl and in the external vault'),
('secret.conflict_resolved', 'An admin resolved a secret sync conflict')
on conflict (type) do nothing;
