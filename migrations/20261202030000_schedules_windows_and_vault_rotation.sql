-- Scheduled switches, the two parts of issue 16 built after the rest: windows on
-- promotions (functions/92_schedules_run.sql: the revert puts back the version the
-- target ran before the start) and rotations of secrets bound by reference to an
-- external vault, which the tick hands to the sync service (state 'dispatched', a row
-- of cfg_private.schedule_dispatches) and the vaults worker performs with the
-- backend's own means (functions/93_schedules_timeline.sql, sync_service/workers/vaults.py).

-- dispatched: handed to the sync service, which applies or fails it.
alter table cfg.schedule_occurrences drop constraint schedule_occurrences_status_known;
alter table cfg.schedule_occurrences add constraint schedule_occurrences_status_known check (
    status in ('pending', 'dispatched', 'applied', 'failed', 'skipped')
);

-- A rotation of a reference-bound secret waiting for the sync service: one row per
-- dispatched occurrence, gone when it is applied or failed. The new value is made by
-- the worker and never reaches the database (only the external version id does).
create table cfg_private.schedule_dispatches (
    occurrence_id uuid primary key references cfg.schedule_occurrences (id) on delete cascade,
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    -- Null once unbound: the occurrence then fails, saying so.
    binding_id uuid references cfg.secret_bindings (id) on delete set null,
    format text not null,
    length integer not null,
    attempts integer not null default 0,
    -- When the worker may claim it: now, after a lease (60 s), or after a backoff.
    next_attempt_at timestamptz not null default now(),
    last_error text,
    created_at timestamptz not null default now(),
    constraint schedule_dispatches_format_known check (format in ('hex', 'base64url', 'alphanumeric', 'uuid')),
    constraint schedule_dispatches_length_range check (length between 16 and 128)
);
create index schedule_dispatches_due_idx on cfg_private.schedule_dispatches (next_attempt_at);
create index schedule_dispatches_binding_idx on cfg_private.schedule_dispatches (binding_id);
create index schedule_dispatches_org_idx on cfg_private.schedule_dispatches (org_id);
-- Only cfgctl's definer functions touch it.
alter table cfg_private.schedule_dispatches enable row level security;

insert into cfg_private.event_types (type, description) values
('schedule.dispatched', 'An occurrence was handed to the sync service (the rotation of a secret an external vault keeps)')
on conflict (type) do nothing;

-- Replaced: finish_occurrence now takes the schedule (it acts as its author).
drop function if exists cfg_private.finish_occurrence(cfg.schedule_occurrences, text, timestamptz, jsonb, text);
