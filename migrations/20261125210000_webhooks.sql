-- =============================================================================
-- Webhooks: endpoints and their host allowlist (cfg, admins only), secrets,
-- the delivery queue and the delivery log (cfg_private, service only).
-- Functions and triggers live in functions/webhooks.sql, policies in
-- policies/webhooks.sql.
-- =============================================================================

-- The one list of event types webhooks may subscribe to. Other features add
-- theirs with `insert ... on conflict do nothing` in their own migration.
create table cfg_private.event_types (
    type text primary key,
    description text not null default '',
    created_at timestamptz not null default now(),
    constraint event_types_format check (type ~ '^[a-z_]+\.[a-z_]+$')
);
alter table cfg_private.event_types enable row level security;
revoke all on cfg_private.event_types from public, anon, authenticated;
grant select, insert, update, delete on cfg_private.event_types to service_role;

insert into cfg_private.event_types (type, description) values
('automation.created', 'An automation was created'),
('automation.updated', 'An automation was changed'),
('automation.deleted', 'An automation was deleted'),
('config.saved', 'A config version was saved'),
('config.rolled_back', 'A config was rolled back to an earlier version'),
('promotion.requested', 'A promotion to another environment was requested'),
('promotion.approved', 'A promotion was approved'),
('promotion.rejected', 'A promotion was rejected'),
('promotion.applied', 'A promotion was applied'),
('member.added', 'A member joined the organisation'),
('member.role_changed', 'A member''s role changed'),
('member.removed', 'A member left the organisation'),
('webhook.delivery_failed', 'A webhook delivery exhausted its retries'),
('webhook.endpoint_disabled', 'A webhook endpoint was disabled by the dispatcher'),
('webhook.test', 'A test event sent to one endpoint on request')
on conflict (type) do nothing;

-- =============================================================================
-- Endpoints: where an org's events go. Admins manage them through RPCs or
-- directly under RLS; a trigger validates every write (functions/webhooks.sql).
-- =============================================================================

create table cfg.webhook_endpoints (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    url text not null,
    description text not null default '',
    -- Event types to send; empty means every type.
    event_types text [] not null default '{}',
    -- Optional filters: only events of this environment / automation.
    environment_id uuid,
    automation_id uuid,
    enabled boolean not null default true,
    disabled_reason text,
    disabled_at timestamptz,
    created_by uuid references auth.users (id) on delete set null,
    updated_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint webhook_endpoints_id_org_key unique (id, org_id),
    -- Filters point into the same org.
    constraint webhook_endpoints_environment_fkey foreign key (environment_id, org_id)
    references cfg.environments (id, org_id) on delete cascade,
    constraint webhook_endpoints_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint webhook_endpoints_url_length check (length(url) between 1 and 2048),
    constraint webhook_endpoints_description_length check (length(description) <= 1000),
    constraint webhook_endpoints_event_types_limit check (cardinality(event_types) <= 100),
    -- A disabled endpoint says why and since when.
    constraint webhook_endpoints_disabled_reason check (
        enabled or (disabled_reason is not null and disabled_at is not null)
    )
);
create index webhook_endpoints_org_idx on cfg.webhook_endpoints (org_id) include (enabled);
create index webhook_endpoints_environment_idx on cfg.webhook_endpoints (environment_id, org_id);
create index webhook_endpoints_automation_idx on cfg.webhook_endpoints (automation_id, org_id);
create index webhook_endpoints_created_by_idx on cfg.webhook_endpoints (created_by);
create index webhook_endpoints_updated_by_idx on cfg.webhook_endpoints (updated_by);

-- Hosts an org may send to although they are private (loopback, RFC 1918,
-- link-local, metadata) or plain http. Set by the operator (service role);
-- org admins can read theirs.
create table cfg.webhook_allowed_hosts (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    -- A host name (exact match) or an IP address or CIDR network.
    host text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint webhook_allowed_hosts_org_host_key unique (org_id, host),
    constraint webhook_allowed_hosts_format check (host ~ '^[a-z0-9.:/_-]{1,253}$')
);

-- =============================================================================
-- Secrets: never readable by API users after creation (service role only).
-- =============================================================================

create table cfg_private.webhook_secrets (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    endpoint_id uuid not null,
    secret text not null,
    -- Null while current; rotation sets it to now() + 24 h on the replaced one.
    expires_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint webhook_secrets_endpoint_fkey foreign key (endpoint_id, org_id)
    references cfg.webhook_endpoints (id, org_id) on delete cascade,
    -- Standard Webhooks format: whsec_ + base64 of 24 to 64 random bytes.
    constraint webhook_secrets_format check (secret ~ '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$')
);
-- At most one current secret per endpoint.
create unique index webhook_secrets_current_key on cfg_private.webhook_secrets (endpoint_id)
where expires_at is null;
create index webhook_secrets_endpoint_idx on cfg_private.webhook_secrets (endpoint_id, org_id);

-- =============================================================================
-- Delivery queue: one row per (event, endpoint), claimed by the dispatcher
-- with FOR UPDATE SKIP LOCKED. A claim pushes next_attempt_at to the lease's
-- end, so a worker that dies mid-delivery leaves the row due again later.
-- =============================================================================

create table cfg_private.webhook_deliveries (
    id bigint generated always as identity primary key,
    org_id uuid not null,
    endpoint_id uuid not null,
    event_id bigint not null references cfg_private.events (id) on delete cascade,
    event_type text not null,
    status text not null default 'pending',
    -- Incremented by every claim: attempt N is handed to exactly one worker.
    attempt_count integer not null default 0,
    -- Attempts in the current run of the retry schedule; a manual retry starts a new run.
    run_attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    leased_by text,
    last_attempt_at timestamptz,
    last_status_code integer,
    last_error text,
    completed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint webhook_deliveries_endpoint_fkey foreign key (endpoint_id, org_id)
    references cfg.webhook_endpoints (id, org_id) on delete cascade,
    constraint webhook_deliveries_status_known check (
        status in ('pending', 'succeeded', 'failed', 'cancelled')
    ),
    -- Only a finished delivery has a completion time.
    constraint webhook_deliveries_completed check ((status = 'pending') = (completed_at is null)),
    constraint webhook_deliveries_attempts_nonnegative check (attempt_count >= 0 and run_attempts >= 0)
);
-- The claim query: due pending rows in order.
create index webhook_deliveries_due_idx on cfg_private.webhook_deliveries (next_attempt_at, id)
where status = 'pending';
create index webhook_deliveries_endpoint_idx on cfg_private.webhook_deliveries (endpoint_id, org_id, id desc);
create index webhook_deliveries_event_idx on cfg_private.webhook_deliveries (event_id);
create index webhook_deliveries_completed_idx on cfg_private.webhook_deliveries (completed_at)
where completed_at is not null;
-- Every claim and result rewrites a row: vacuum and analyze after 2 % changed rows, not
-- 20 %, so dead entries of the due index do not pile up in front of the claims.
alter table cfg_private.webhook_deliveries set (
    autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02
);

-- =============================================================================
-- Delivery log: every attempt, kept 30 days by default (pg_cron below).
-- =============================================================================

create table cfg_private.webhook_attempts (
    id bigint generated always as identity primary key,
    org_id uuid not null,
    delivery_id bigint not null references cfg_private.webhook_deliveries (id) on delete cascade,
    endpoint_id uuid not null,
    attempt integer not null,
    worker text not null,
    status_code integer,
    latency_ms integer,
    error text,
    response_excerpt text,
    created_at timestamptz not null default now(),
    -- An attempt number is recorded once: two workers never send the same attempt.
    constraint webhook_attempts_delivery_attempt_key unique (delivery_id, attempt),
    -- At most 4 KB of the receiver's answer is kept.
    constraint webhook_attempts_excerpt_max_4kb check (octet_length(response_excerpt) <= 4096),
    constraint webhook_attempts_error_length check (length(error) <= 2000)
);
create index webhook_attempts_created_at_idx on cfg_private.webhook_attempts (created_at);
create index webhook_attempts_endpoint_idx on cfg_private.webhook_attempts (endpoint_id, created_at desc);

-- Since when an endpoint has failed without a success in between (null: healthy).
create table cfg_private.webhook_endpoint_health (
    endpoint_id uuid primary key,
    org_id uuid not null,
    failing_since timestamptz,
    updated_at timestamptz not null default now(),
    constraint webhook_endpoint_health_endpoint_fkey foreign key (endpoint_id, org_id)
    references cfg.webhook_endpoints (id, org_id) on delete cascade
);
create index webhook_endpoint_health_fk_idx on cfg_private.webhook_endpoint_health (endpoint_id, org_id);

-- =============================================================================
-- Privileges: endpoints and allowlist are API tables under RLS; the queue,
-- log and secrets belong to the service role (the dispatcher) alone.
-- =============================================================================

alter table cfg.webhook_endpoints enable row level security;
alter table cfg.webhook_allowed_hosts enable row level security;
alter table cfg_private.webhook_secrets enable row level security;
alter table cfg_private.webhook_deliveries enable row level security;
alter table cfg_private.webhook_attempts enable row level security;
alter table cfg_private.webhook_endpoint_health enable row level security;

revoke all on cfg.webhook_endpoints, cfg.webhook_allowed_hosts from public, anon;
grant select, insert, update, delete on cfg.webhook_endpoints to authenticated, service_role;
-- The allowlist weakens SSRF protection, so only the operator writes it.
grant select on cfg.webhook_allowed_hosts to authenticated;
grant select, insert, update, delete on cfg.webhook_allowed_hosts to service_role;

revoke all on cfg_private.webhook_secrets, cfg_private.webhook_deliveries, cfg_private.webhook_attempts,
cfg_private.webhook_endpoint_health from public, anon, authenticated;
grant select, insert, update, delete on cfg_private.webhook_secrets, cfg_private.webhook_deliveries,
cfg_private.webhook_attempts, cfg_private.webhook_endpoint_health to service_role;

-- =============================================================================
-- Delivery-log retention: daily, 30 days kept (see migrations/…_audit_and_outbox.sql
-- for why jobs are only scheduled in cron.database_name).
-- =============================================================================

do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        create extension if not exists pg_cron;
        perform cron.schedule(
            'cfgctl-webhook-log-retention', '41 3 * * *',
            'select cfg_private.purge_webhook_log(interval ''30 days'')'
        );
    end if;
end
$cron$;
