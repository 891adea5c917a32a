-- =============================================================================
-- Audit log: who changed what and when, written by triggers (functions/audit.sql).
-- Append-only for everyone; retention runs only through cfg_private.purge_audit_log.
-- =============================================================================

create table cfg.audit_log (
    id bigint generated always as identity primary key,
    -- No foreign keys: the trail outlives the rows and orgs it describes.
    org_id uuid not null,
    automation_id uuid,
    actor_id uuid,
    actor_email text,
    -- 'authenticated', 'service_role', or the database role for DBA work.
    actor_role text not null,
    table_name text not null,
    row_id uuid not null,
    operation text not null,
    -- Only the fields that changed; secret values are redacted.
    old_values jsonb,
    new_values jsonb,
    -- Transaction time: every row of one change shares it, and the txid.
    created_at timestamptz not null default now(),
    txid bigint not null default txid_current(),
    constraint audit_log_operation_known check (operation in ('INSERT', 'UPDATE', 'DELETE'))
);
create index audit_log_org_time_idx on cfg.audit_log (org_id, created_at desc);
create index audit_log_org_automation_time_idx on cfg.audit_log (org_id, automation_id, created_at desc);
create index audit_log_org_actor_time_idx on cfg.audit_log (org_id, actor_id, created_at desc);

alter table cfg.audit_log enable row level security;
revoke all on cfg.audit_log from public, anon, authenticated, service_role;
grant select on cfg.audit_log to authenticated, service_role;

-- =============================================================================
-- Outbox: events appended in the same transaction as the change. Workers in the
-- sync service read it; nothing is sent from inside a transaction.
-- =============================================================================

create table cfg_private.events (
    id bigint generated always as identity primary key,
    org_id uuid not null,
    -- '<subject>.<verb>', e.g. 'automation.created', 'member.removed'.
    type text not null,
    subject_type text not null,
    subject_id uuid,
    automation_id uuid,
    -- Set for environment-scoped events (promotions), so webhooks can filter on it.
    environment_id uuid,
    -- Never holds a secret value.
    payload jsonb not null default '{}'::jsonb,
    actor_id uuid,
    actor_email text,
    created_at timestamptz not null default now(),
    txid bigint not null default txid_current(),
    constraint events_type_format check (type ~ '^[a-z_]+\.[a-z_]+$')
);
create index events_org_id_idx on cfg_private.events (org_id, id);
create index events_created_at_idx on cfg_private.events (created_at);

alter table cfg_private.events enable row level security;
revoke all on cfg_private.events from public, anon, authenticated;
grant select on cfg_private.events to service_role;

-- =============================================================================
-- Scheduled jobs run where pg_cron lives (cron.database_name, 'postgres' on
-- Supabase). Other databases of the cluster get the schema without the jobs.
-- =============================================================================

do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        create extension if not exists pg_cron;
        -- Audit retention: a year by default; the function is the only way rows leave.
        perform cron.schedule(
            'cfgctl-audit-retention', '17 3 * * *',
            'select cfg_private.purge_audit_log(interval ''1 year'')'
        );
    end if;
end
$cron$;
