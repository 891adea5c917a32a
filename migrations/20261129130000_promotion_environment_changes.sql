-- =============================================================================
-- Two-person rule for the pipeline: loosening an environment (switching its
-- approval requirement off, moving it in the pipeline, deleting one that requires
-- approval) is a change request that another admin approves. A trigger on
-- cfg.environments refuses those writes from API roles (functions/tenancy_pipeline.sql);
-- the approval RPCs apply them. Policies: policies/versioning.sql.
-- =============================================================================

create table cfg.environment_change_requests (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    -- Null once the environment is gone (a delete request that was applied).
    environment_id uuid,
    environment_slug text not null,
    -- Exactly one of {"requires_approval": false}, {"position": n}, {"delete": true}.
    change jsonb not null,
    -- The environment as it was when requested: approving a request whose
    -- environment changed since would apply something nobody reviewed.
    before jsonb not null,
    reason text not null default '',
    status text not null default 'pending',
    -- Who-did-what ids are plain values: Supabase Auth must be able to delete the user.
    requested_by uuid,
    requested_by_email text,
    decided_by uuid,
    decided_by_email text,
    decided_at timestamptz,
    decision_comment text,
    applied_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint environment_change_requests_environment_fkey foreign key (environment_id, org_id)
    references cfg.environments (id, org_id) on delete set null (environment_id),
    constraint environment_change_requests_status_known check (
        status in ('pending', 'approved', 'applied', 'rejected')
    ),
    constraint environment_change_requests_change_shape check (jsonb_typeof(change) = 'object'),
    constraint environment_change_requests_reason_length check (length(reason) <= 2000),
    -- A rejection always says why; a decision always says who and when.
    constraint environment_change_requests_rejection_reason check (
        status <> 'rejected' or length(btrim(coalesce(decision_comment, ''))) > 0
    ),
    constraint environment_change_requests_decided check (status = 'pending' or decided_at is not null),
    constraint environment_change_requests_applied check ((status = 'applied') = (applied_at is not null))
);
-- At most one pending request per environment.
create unique index environment_change_requests_one_pending_idx
on cfg.environment_change_requests (environment_id)
where status = 'pending';
create index environment_change_requests_org_status_idx
on cfg.environment_change_requests (org_id, status, created_at desc);
create index environment_change_requests_environment_idx
on cfg.environment_change_requests (environment_id, org_id);
create index environment_change_requests_requested_by_idx on cfg.environment_change_requests (requested_by);
create index environment_change_requests_decided_by_idx on cfg.environment_change_requests (decided_by);

-- Members read; every write goes through the RPCs (security definer helpers that
-- check roles themselves), so nobody can forge an approval.
alter table cfg.environment_change_requests enable row level security;
revoke all on cfg.environment_change_requests from public, anon, authenticated, service_role;
grant select on cfg.environment_change_requests to authenticated, service_role;

alter publication supabase_realtime add table cfg.environment_change_requests;

insert into cfg_private.event_types (type, description) values
('environment.change_requested', 'A change to an environment that needs another admin''s approval was requested'),
('environment.change_approved', 'A requested environment change was approved'),
('environment.change_rejected', 'A requested environment change was rejected'),
('environment.changed', 'An approved (or, with no other admin, direct) environment change was applied')
on conflict (type) do nothing;
