-- Scheduled and recurring config switches (issue 16): a change (a key-level patch, a
-- whole content, a rollback, a promotion, a status, a secret rotation) applied at an
-- instant or on a cron schedule, optionally reverted after a window, by a pg_cron
-- tick acting as the schedule's author. Functions: functions/90_schedules.sql (the
-- model and the RPCs), 91_schedules_run.sql (the tick), 92_schedules_timeline.sql.
-- Policies: policies/schedules.sql. Occurrences of cron schedules are computed by the
-- sync service's schedules worker (croniter + zoneinfo) over a horizon.

create table cfg.schedules (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    automation_id uuid not null,
    -- What: patch {set, unset, before} (before: the values the touched keys held when
    -- scheduled), content {content}, rollback {version}, promote {from, to},
    -- status {status}, rotate {section, key, format, length}.
    action text not null,
    change jsonb not null,
    message text not null default '',
    -- When: a one-off instant, or a cron expression read in timezone, until/max_runs.
    run_at timestamptz,
    cron text,
    timezone text not null default 'UTC',
    until timestamptz,
    max_runs integer,
    -- A window: each apply is reverted this long after it was due.
    revert_after interval,
    -- Occurrences missed (the database was down): run the latest once if at most
    -- max_lateness late, or skip them. Recorded either way.
    missed text not null default 'run_late',
    max_lateness interval not null default '1 hour',
    -- Apply a patch (or revert) even when its keys changed since it was scheduled.
    force boolean not null default false,
    state text not null default 'active',
    -- Why the schedule is invalid (a cron expression croniter refused).
    error text,
    -- The hash of the exact change and its timing; an approval holds for that hash only.
    change_hash text not null,
    approved_hash text,
    approved_by uuid,
    approved_by_email text,
    approved_at timestamptz,
    -- The schedules worker has written occurrences up to here ('infinity': all of them).
    materialised_until timestamptz,
    -- The author: whoever last added or edited the change; occurrences run as them.
    author_id uuid not null,
    author_email text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint schedules_id_org_key unique (id, org_id),
    constraint schedules_automation_fkey foreign key (automation_id, org_id)
    references cfg.automations (id, org_id) on delete cascade,
    constraint schedules_action_known check (action in ('patch', 'content', 'rollback', 'promote', 'status', 'rotate')),
    constraint schedules_change_object check (jsonb_typeof(change) = 'object'),
    constraint schedules_change_size check (octet_length(change::text) <= 1048576),
    constraint schedules_message_length check (length(message) <= 2000),
    -- Exactly one of a one-off instant and a cron expression.
    constraint schedules_one_when check ((run_at is null) <> (cron is null)),
    constraint schedules_cron_length check (length(cron) <= 200),
    constraint schedules_max_runs_positive check (max_runs > 0),
    constraint schedules_revert_after_positive check (revert_after > interval '0'),
    constraint schedules_missed_known check (missed in ('run_late', 'skip')),
    constraint schedules_max_lateness_nonnegative check (max_lateness >= interval '0'),
    constraint schedules_state_known check (state in ('active', 'paused', 'cancelled', 'completed', 'invalid'))
);
create index schedules_org_idx on cfg.schedules (org_id);
create index schedules_automation_idx on cfg.schedules (automation_id, org_id);
-- What the worker tops up.
create index schedules_to_materialise_idx on cfg.schedules (materialised_until) where state = 'active' and cron is not null;

-- One run of a schedule: apply at due_at, or revert the apply it is paired with.
create table cfg.schedule_occurrences (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    schedule_id uuid not null,
    automation_id uuid not null,
    due_at timestamptz not null,
    phase text not null,
    status text not null default 'pending',
    -- A revert's apply (its outcome holds the values to restore).
    apply_id uuid references cfg.schedule_occurrences (id) on delete cascade,
    applied_at timestamptz,
    lateness interval,
    -- What happened: the version or deployment made, the values before and after; never a secret.
    outcome jsonb,
    error text,
    version integer,
    version_id uuid,
    environment_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- Exactly once: one row per schedule, instant and phase, claimed with SKIP LOCKED.
    constraint schedule_occurrences_once unique (schedule_id, due_at, phase),
    constraint schedule_occurrences_schedule_fkey foreign key (schedule_id, org_id)
    references cfg.schedules (id, org_id) on delete cascade,
    constraint schedule_occurrences_phase_known check (phase in ('apply', 'revert')),
    constraint schedule_occurrences_status_known check (status in ('pending', 'applied', 'failed', 'skipped')),
    -- A revert always names its apply; an apply never does.
    constraint schedule_occurrences_revert_paired check ((phase = 'revert') = (apply_id is not null))
);
-- The tick reads only what is due: pending rows in the order it takes them.
create index schedule_occurrences_due_idx on cfg.schedule_occurrences (due_at, phase) where status = 'pending';
create index schedule_occurrences_schedule_idx on cfg.schedule_occurrences (schedule_id, org_id, due_at);
create index schedule_occurrences_org_due_idx on cfg.schedule_occurrences (org_id, due_at);
create index schedule_occurrences_apply_idx on cfg.schedule_occurrences (apply_id);

alter table cfg.schedules enable row level security;
alter table cfg.schedule_occurrences enable row level security;
-- Members read; every write goes through the RPCs and the tick.
grant select on cfg.schedules, cfg.schedule_occurrences to authenticated, service_role;

-- The tick marks the transaction while it applies an occurrence: what save_config and
-- rollback write then is a version of kind 'scheduled' (deployed with that source).
alter table cfg_private.transaction_marks drop constraint transaction_marks_mark_known;
alter table cfg_private.transaction_marks add constraint transaction_marks_mark_known check (
    mark in ('versioned_write', 'direct_versioned', 'audit_retention', 'scheduled')
);

insert into cfg_private.event_types (type, description) values
('schedule.created', 'A schedule was added (its change, when, window, author)'),
('schedule.updated', 'A schedule was edited; its approval, if any, was reset'),
('schedule.approved', 'An admin approved a schedule''s exact change'),
('schedule.paused', 'A schedule was paused'),
('schedule.resumed', 'A paused schedule was resumed'),
('schedule.cancelled', 'A schedule was cancelled; its pending occurrences were dropped'),
('schedule.completed', 'A schedule ran its last occurrence'),
('schedule.invalid', 'The schedules worker could not compute a schedule''s occurrences (the error says why)'),
('schedule.applied', 'An occurrence was applied (or reverted): the version or deployment it made, its lateness'),
('schedule.failed', 'An occurrence failed: the reason (conflict, validation, role, approval), nothing changed'),
('schedule.skipped', 'An occurrence was skipped (missed while down, superseded, paused or nothing to revert)')
on conflict (type) do nothing;
