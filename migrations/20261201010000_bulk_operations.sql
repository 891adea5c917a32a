-- Bulk operations (issue 12, items 1, 2 and 6): one action (status, tag, untag, patch,
-- promote, delete) over a selection of automations, recorded with a result per item.
-- Functions: functions/86_bulk.sql (the records) and 87_bulk_api.sql (the RPCs).
-- Policies: policies/bulk.sql. Members read both tables; nobody writes them directly.

-- One bulk operation: who asked for what, over which automations, and how far it got.
-- The selection is resolved once, when the operation starts (target_ids, in selection
-- order), so a filter on status cannot shift under a status change.
create table cfg.bulk_operations (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    action text not null,
    selection jsonb not null,
    -- As given, checked (functions/86_bulk.sql, cfg_private.bulk_options); never a secret
    -- value: a patch that would set one is refused before it is recorded.
    options jsonb not null default '{}',
    status text not null default 'running',
    atomic boolean not null default false,
    batch_size integer not null default 500,
    -- The automations still to act on, in selection order, and their positions in it.
    target_ids uuid [] not null default '{}',
    target_positions integer [] not null default '{}',
    -- How many of target_ids are done (the next batch starts after them).
    cursor integer not null default 0,
    total integer not null default 0,
    done integer not null default 0,
    succeeded integer not null default 0,
    unchanged integer not null default 0,
    failed integer not null default 0,
    not_found integer not null default 0,
    -- Atomic operations that failed: items that had succeeded and were undone with the rest.
    rolled_back integer not null default 0,
    -- Plain values: the record outlives its author's account.
    created_by uuid,
    created_by_email text,
    cancelled_by uuid,
    -- Last time a batch ran or the continuation worker took the operation up.
    heartbeat_at timestamptz not null default now(),
    finished_at timestamptz,
    -- Why the continuation worker gave up (the author can no longer act, say).
    error jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint bulk_operations_id_org_key unique (id, org_id),
    constraint bulk_operations_action_known check (action in ('status', 'tag', 'untag', 'patch', 'promote', 'delete')),
    constraint bulk_operations_status_known check (status in ('queued', 'running', 'completed', 'cancelled', 'failed')),
    constraint bulk_operations_batch_size_range check (batch_size between 1 and 5000),
    -- Every item done is counted once, in exactly one outcome.
    constraint bulk_operations_counts_add_up check (
        done = succeeded + unchanged + failed + not_found + rolled_back and done <= total
    ),
    constraint bulk_operations_targets_paired check (
        cardinality(target_ids) = cardinality(target_positions) and cursor between 0 and cardinality(target_ids)
    ),
    -- A finished operation says when; a running one has not.
    constraint bulk_operations_finished check ((finished_at is null) = (status in ('queued', 'running')))
);
create index bulk_operations_org_created_idx on cfg.bulk_operations (org_id, created_at desc);
-- The continuation worker's look-up of running operations with no recent progress.
create index bulk_operations_running_idx on cfg.bulk_operations (heartbeat_at) where status = 'running';

-- The result of one item of an operation: the automation (as selected: an unknown or
-- foreign id is recorded as given, found nowhere), the outcome with the error a single
-- call gave, and what it created (a version, a promotion request, audit rows).
create table cfg.bulk_operation_items (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    operation_id uuid not null,
    position integer not null,
    -- No foreign key: a deleted automation keeps its results.
    automation_id uuid not null,
    result text not null,
    code text,
    message text,
    detail jsonb,
    version_id uuid,
    request_id uuid,
    audit_ids bigint [] not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint bulk_operation_items_position_key unique (operation_id, position),
    constraint bulk_operation_items_operation_fkey foreign key (operation_id, org_id)
    references cfg.bulk_operations (id, org_id) on delete cascade,
    constraint bulk_operation_items_result_known check (
        result in ('succeeded', 'unchanged', 'failed', 'not_found', 'rolled_back')
    ),
    -- A failure (not found included) says why, with an SQLSTATE; a success does not.
    constraint bulk_operation_items_code_iff_failed check ((code is not null) = (result in ('failed', 'not_found')))
);
create index bulk_operation_items_org_idx on cfg.bulk_operation_items (org_id);
create index bulk_operation_items_request_idx on cfg.bulk_operation_items (request_id) where request_id is not null;

alter table cfg.bulk_operations enable row level security;
alter table cfg.bulk_operation_items enable row level security;

-- Read by members (policies/bulk.sql); written by cfgctl's definer code only.
grant select on cfg.bulk_operations, cfg.bulk_operation_items to authenticated, service_role;

-- Progress: a dashboard polls the operation row (cfg.get_bulk_operation); bulk.completed
-- reaches its org topic as every event does (functions/95_realtime.sql).

insert into cfg_private.event_types (type, description) values
('bulk.completed', 'A bulk operation finished (completed, failed, or cancelled): its action and counts')
on conflict (type) do nothing;
