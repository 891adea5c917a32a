-- Analytics over a year (issue 13, benchmark d): coarser rollups so a year-long chart
-- reads a few hundred rows. Kept by the same pg_cron job behind the same watermark
-- (functions/96_analytics.sql); docs/analytics.md says what each chart reads.

-- The rollup is rebuilt from the sources by the job (31 days per run; meanwhile the tail
-- answers, exactly and more slowly): it gains kinds and grains that its past rows lack.
truncate cfg_private.activity_rollup;
update cfg_private.activity_watermark set rolled_up_to = null, updated_at = now() where id;

-- Weekly rows (weeks from Monday, UTC), summed from the daily ones once a week is wholly
-- rolled up. New kind 'direct_promotion': deployments by promotion without a request.
alter table cfg_private.activity_rollup
drop constraint activity_rollup_grain_known,
drop constraint activity_rollup_kind_known;
alter table cfg_private.activity_rollup
add constraint activity_rollup_grain_known check (
    grain = 'hour'
    or (grain = 'day' and bucket = date_trunc('day', bucket, 'UTC'))
    or (grain = 'week' and bucket = date_trunc('week', bucket, 'UTC'))
),
add constraint activity_rollup_kind_known check (
    kind in ('version', 'deployment', 'direct_promotion', 'action', 'validation_errors', 'validation_warnings')
);
-- The author filter matches the email too: in the index, so filtered charts scan it only.
drop index cfg_private.activity_rollup_org_kind_bucket_idx;
create index activity_rollup_org_kind_bucket_idx on cfg_private.activity_rollup (org_id, kind, grain, bucket)
include (automation_id, environment_id, actor_id, actor_email, n);

-- The same counts per bucket and environment only (no automation, no person): what a chart
-- without an automation or author filter reads, one row per bucket and environment.
create table cfg_private.activity_totals (
    org_id uuid not null,
    bucket timestamptz not null,
    kind text not null,
    environment_id uuid,
    n integer not null,
    grain text not null,
    constraint activity_totals_kind_known check (
        kind in ('version', 'deployment', 'direct_promotion', 'action', 'validation_errors', 'validation_warnings')
    ),
    constraint activity_totals_bucket_hour check (bucket = date_trunc('hour', bucket, 'UTC')),
    constraint activity_totals_grain_known check (
        grain = 'hour'
        or (grain = 'day' and bucket = date_trunc('day', bucket, 'UTC'))
        or (grain = 'week' and bucket = date_trunc('week', bucket, 'UTC'))
    ),
    constraint activity_totals_count_positive check (n > 0)
);
create index activity_totals_org_kind_bucket_idx on cfg_private.activity_totals (org_id, kind, grain, bucket)
include (environment_id, n);
alter table cfg_private.activity_totals enable row level security;
revoke all on cfg_private.activity_totals from public, anon, authenticated, service_role;

-- Lead times: one row per deployment by promotion in the rolled-up hours, with when its
-- version first landed in the pipeline's first environment (then) before it. Exact
-- durations, so percentiles stay exact; a reordered pipeline is noticed by
-- from_environment_id and counted from the sources (functions/97_analytics_api.sql).
create table cfg_private.promotion_rollup (
    org_id uuid not null,
    environment_id uuid not null,
    deployed_at timestamptz not null,
    from_environment_id uuid not null,
    -- null: the version was not in from_environment_id before (not a lead time).
    arrived_at timestamptz,
    constraint promotion_rollup_arrived_before check (arrived_at <= deployed_at)
);
create index promotion_rollup_org_environment_deployed_idx
on cfg_private.promotion_rollup (org_id, environment_id, deployed_at) include (from_environment_id, arrived_at);
alter table cfg_private.promotion_rollup enable row level security;
revoke all on cfg_private.promotion_rollup from public, anon, authenticated, service_role;

-- Promotion outcomes and approval waits read the requests by index only: status and
-- decision time ride along (a request changes status, so a rollup would need a trigger;
-- this index is that narrow copy, kept by Postgres, on the promotion path only).
create index promotion_requests_org_to_environment_created_idx
on cfg.promotion_requests (org_id, to_environment_id, created_at) include (status, decided_at);

-- Replaced (functions/96_analytics.sql): the reader gains filters; durations come with
-- their percentiles computed by the caller, in one sort.
drop function if exists cfg_private.activity(uuid, text, timestamptz, timestamptz, text);
drop function if exists cfg_private.analytics_durations(interval []);
