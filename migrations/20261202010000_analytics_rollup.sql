-- Analytics (issue 13): hourly counts per org, kept by a pg_cron job, never by a trigger
-- on the save path. The job rolls up whole hours behind a watermark; the RPCs read the
-- rollup before the watermark and count the source rows after it by index range, so a
-- chart is current to the second without scanning history (docs/analytics.md).
-- Functions: functions/96_analytics.sql (the job, ranges), 97_analytics_api.sql (RPCs).

-- One row per (org, hour, kind, automation, environment, actor) that saw something, and the
-- same summed per day once a whole day is rolled up (grain 'day'): a month of daily rows is
-- what a day or week chart reads, a tenth of its hours.
-- kind: 'version' (cfg.config_versions, by author), 'deployment' (cfg.deployment_history,
-- by environment and actor), 'action' (cfg.audit_log rows with a user, by actor),
-- 'validation_errors' / 'validation_warnings' (validation.status_changed events into that
-- status, by automation and environment). Not in cfg: read only through the RPCs.
create table cfg_private.activity_rollup (
    org_id uuid not null,
    -- Start of the hour, UTC.
    bucket timestamptz not null,
    kind text not null,
    automation_id uuid,
    environment_id uuid,
    actor_id uuid,
    actor_email text,
    n integer not null,
    grain text not null default 'hour',
    constraint activity_rollup_kind_known check (
        kind in ('version', 'deployment', 'action', 'validation_errors', 'validation_warnings')
    ),
    -- Buckets are whole hours, so day and week buckets are exact sums of them.
    constraint activity_rollup_bucket_hour check (bucket = date_trunc('hour', bucket, 'UTC')),
    constraint activity_rollup_grain_known check (
        grain = 'hour' or (grain = 'day' and bucket = date_trunc('day', bucket, 'UTC'))
    ),
    constraint activity_rollup_count_positive check (n > 0)
);
create index activity_rollup_org_kind_bucket_idx
on cfg_private.activity_rollup (org_id, kind, grain, bucket) include (automation_id, environment_id, actor_id, n);

alter table cfg_private.activity_rollup enable row level security;
revoke all on cfg_private.activity_rollup from public, anon, authenticated, service_role;

-- Everything before this hour is in the rollup; everything from it on is counted from the
-- sources at query time. Exactly one row; null until the job first runs.
create table cfg_private.activity_watermark (
    id boolean primary key default true,
    rolled_up_to timestamptz,
    updated_at timestamptz not null default now(),
    constraint activity_watermark_single_row check (id),
    constraint activity_watermark_hour check (rolled_up_to = date_trunc('hour', rolled_up_to, 'UTC'))
);
insert into cfg_private.activity_watermark default values;
alter table cfg_private.activity_watermark enable row level security;
revoke all on cfg_private.activity_watermark from public, anon, authenticated, service_role;

-- The tail past the watermark is read by index range per org (and per environment for
-- deployments, which lead times and direct promotions read too). One index entry per
-- save each: measured in docs/analytics.md.
create index config_versions_org_created_idx on cfg.config_versions (org_id, created_at);
create index deployment_history_org_environment_created_idx
on cfg.deployment_history (org_id, environment_id, created_at);
-- Validation events are read by time (events_created_at_idx), with no new index: the
-- tail is at most an hour or two of every org's events.

-- The job runs every minute where pg_cron lives; it only does work when an hour closes.
do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        perform cron.schedule('cfgctl-analytics-rollup', '* * * * *', 'select cfg_private.roll_up_activity()');
    end if;
end
$cron$;
