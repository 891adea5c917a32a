-- =============================================================================
-- Analytics RPCs (issue 13; docs/analytics.md): any member of the org, viewer and up;
-- PT404 for an org the caller is not in, before anything else is said. Every series has
-- a row for every bucket, zeros included. Activity and lead times come from the rollup
-- plus the tail (cfg_private.activity, cfg_private.lead_times: 96_analytics.sql);
-- promotion requests by index only (their volume is that of promotions, not of saves).
-- =============================================================================

-- Changes per bucket: versions saved (any kind), or with `environment` the versions that
-- reached that environment (deployments: saves into the first, promotions into later
-- ones). Filters: automation_id, environment (slug), author (email or user id).
create or replace function cfg.analytics_changes(
    org_id uuid,
    since timestamptz default null,
    until timestamptz default null,
    bucket text default 'day',
    automation_id uuid default null,
    environment text default null,
    author text default null
)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    r record;
    env cfg.environments;
    result jsonb;
begin
    perform cfg_private.require_role(org_id, 'viewer', 'reading analytics');
    if automation_id is not null then
        perform cfg_private.require_role_on(
            (select a.org_id from cfg.automations as a
             where a.id = analytics_changes.automation_id and a.org_id = analytics_changes.org_id),
            'viewer', 'reading analytics', 'automation', 'automation_id', automation_id
        );
    end if;
    if environment is not null then
        env := cfg_private.environment_by_slug(org_id, environment);
    end if;
    r := cfg_private.analytics_range(since, until, bucket);
    with counted as (
        select date_trunc(analytics_changes.bucket, a.bucket, 'UTC') as at, sum(a.n) as n
        from cfg_private.activity(
            analytics_changes.org_id, case when env.id is null then 'version' else 'deployment' end,
            r.first_bucket, r.stop, r.grain, automation_id => analytics_changes.automation_id,
            environment_id => env.id, author => analytics_changes.author, totals => true
        ) as a
        group by 1
    )
    select jsonb_build_object(
        'bucket', analytics_changes.bucket, 'since', cfg_private.analytics_time(r.first_bucket),
        'until', cfg_private.analytics_time(r.stop),
        'source', case when env.id is null then 'versions' else 'deployments' end,
        'total', coalesce(sum(c.n), 0),
        'series', jsonb_agg(jsonb_build_object('at', b.label, 'changes', coalesce(c.n, 0))
                            order by b.at)
    ) into result
    from cfg_private.analytics_buckets(r.first_bucket, r.stop, r.step) as b
    left join counted as c on c.at = b.at;
    return result;
end
$$;
revoke execute on function cfg.analytics_changes(uuid, timestamptz, timestamptz, text, uuid, text, text)
from public, anon;
grant execute on function cfg.analytics_changes(uuid, timestamptz, timestamptz, text, uuid, text, text)
to authenticated, service_role;

-- The automations with the most versions in [since, until) (whole days, UTC), most first.
create or replace function cfg.analytics_top_automations(
    org_id uuid, since timestamptz default null, until timestamptz default null, max_rows integer default 10
)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    r record;
    result jsonb;
begin
    perform cfg_private.require_role(org_id, 'viewer', 'reading analytics');
    if max_rows is null or max_rows not between 1 and 100 then
        perform cfg_private.analytics_invalid(jsonb_build_array(
            jsonb_build_object('path', 'max_rows', 'message', 'max_rows must be between 1 and 100')
        ));
    end if;
    r := cfg_private.analytics_range(since, until, 'day');
    with counted as (
        select a.automation_id, sum(a.n) as changes, count(distinct coalesce(a.actor_id::text, a.actor_email)) as authors
        from (
            select a.automation_id, a.actor_id, a.actor_email, sum(a.n) as n
            from cfg_private.activity(analytics_top_automations.org_id, 'version', r.first_bucket, r.stop, 'week') as a
            group by 1, 2, 3
        ) as a
        group by 1
    ),
    top as (
        -- Deleted automations keep their counts, without a name.
        select c.*, au.name, au.slug from counted as c
        left join cfg.automations as au on au.id = c.automation_id
        order by c.changes desc, au.slug nulls last, c.automation_id
        limit max_rows
    )
    select jsonb_build_object(
        'since', cfg_private.analytics_time(r.first_bucket), 'until', cfg_private.analytics_time(r.stop),
        'automations', coalesce(jsonb_agg(jsonb_build_object(
            'automation_id', t.automation_id, 'name', t.name, 'slug', t.slug,
            'changes', t.changes, 'authors', t.authors
        ) order by t.changes desc, t.slug nulls last, t.automation_id), '[]')
    ) into result
    from top as t;
    return result;
end
$$;
revoke execute on function cfg.analytics_top_automations(uuid, timestamptz, timestamptz, integer) from public, anon;
grant execute on function cfg.analytics_top_automations(uuid, timestamptz, timestamptz, integer)
to authenticated, service_role;

-- Promotions into each environment after the first, over [since, until) (whole days):
-- requests made in the period by outcome, with each outcome's share of those closed
-- (applied, rejected, superseded), direct promotions (no approval needed), and the
-- approval wait (request to decision); and the lead time from the first environment of
-- the pipeline to the last (dev -> prod) of the versions that reached the last in it.
create or replace function cfg.analytics_promotions(
    org_id uuid, since timestamptz default null, until timestamptz default null
)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    r record;
    first_env cfg.environments;
    last_env cfg.environments;
    per_environment jsonb;
begin
    perform cfg_private.require_role(org_id, 'viewer', 'reading analytics');
    r := cfg_private.analytics_range(since, until, 'day');
    select * into first_env from cfg.environments as e where e.org_id = analytics_promotions.org_id
    order by e.position limit 1;
    select * into last_env from cfg.environments as e where e.org_id = analytics_promotions.org_id
    order by e.position desc limit 1;

    select coalesce(jsonb_agg(jsonb_build_object(
        'environment', e.slug, 'environment_id', e.id, 'requires_approval', e.requires_approval,
        'requested', q.requested, 'pending', q.pending, 'approved', q.approved, 'applied', q.applied,
        'rejected', q.rejected, 'superseded', q.superseded,
        'applied_rate', round(q.applied::numeric / nullif(q.closed, 0), 4),
        'rejected_rate', round(q.rejected::numeric / nullif(q.closed, 0), 4),
        'superseded_rate', round(q.superseded::numeric / nullif(q.closed, 0), 4),
        'direct', coalesce(dp.direct, 0),
        'approval_wait', q.wait
    ) order by e.position), '[]') into per_environment
    from cfg.environments as e
    cross join lateral (
        select count(*) as requested,
               count(*) filter (where p.status = 'pending') as pending,
               count(*) filter (where p.status = 'approved') as approved,
               count(*) filter (where p.status = 'applied') as applied,
               count(*) filter (where p.status = 'rejected') as rejected,
               count(*) filter (where p.status = 'superseded') as superseded,
               count(*) filter (where p.status in ('applied', 'rejected', 'superseded')) as closed,
               -- Undecided requests have no wait: null, which count and percentile_cont skip.
               cfg_private.analytics_durations(
                   count(p.decided_at),
                   percentile_cont(array[0.5, 0.9]) within group (order by date_part('epoch', p.decided_at - p.created_at))
               ) as wait
        from cfg.promotion_requests as p
        where p.org_id = e.org_id and p.to_environment_id = e.id
          and p.created_at >= r.first_bucket and p.created_at < r.stop
    ) as q
    left join (
        select a.environment_id, sum(a.n) as direct
        from cfg_private.activity(
            analytics_promotions.org_id, 'direct_promotion', r.first_bucket, r.stop, 'week', totals => true
        ) as a
        group by 1
    ) as dp on dp.environment_id = e.id
    where e.org_id = analytics_promotions.org_id and e.id <> first_env.id;

    return jsonb_build_object(
        'since', cfg_private.analytics_time(r.first_bucket), 'until', cfg_private.analytics_time(r.stop),
        'environments', per_environment,
        'lead_time', jsonb_build_object('from', first_env.slug, 'to', last_env.slug)
        || cfg_private.lead_times(analytics_promotions.org_id, first_env.id, last_env.id, r.first_bucket, r.stop)
    );
end
$$;
revoke execute on function cfg.analytics_promotions(uuid, timestamptz, timestamptz) from public, anon;
grant execute on function cfg.analytics_promotions(uuid, timestamptz, timestamptz) to authenticated, service_role;

-- People who changed something (an audit row with their user id) in [since, until) (whole
-- days): how many per day and per week (weeks from Monday, UTC, those the period touches),
-- and who, with their number of actions, active days and last active day.
create or replace function cfg.analytics_active_users(
    org_id uuid, since timestamptz default null, until timestamptz default null
)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    days record;
    weeks record;
    result jsonb;
begin
    perform cfg_private.require_role(org_id, 'viewer', 'reading analytics');
    days := cfg_private.analytics_range(since, until, 'day');
    weeks := cfg_private.analytics_range(days.first_bucket, days.stop - interval '1 day', 'week');
    -- Distinct people do not add up across buckets: they are counted over rows that keep the
    -- person, one per person and day (per week for the weekly series).
    with acts as materialized (
        select date_trunc('day', a.bucket, 'UTC') as at, a.actor_id, max(a.actor_email) as email, sum(a.n) as n
        from cfg_private.activity(analytics_active_users.org_id, 'action', days.first_bucket, days.stop, 'day') as a
        group by 1, 2
    ),
    per_day as (
        select a.at, count(*) as users from acts as a group by 1
    ),
    per_week as (
        select date_trunc('week', a.bucket, 'UTC') as at, count(distinct a.actor_id) as users
        from cfg_private.activity(analytics_active_users.org_id, 'action', weeks.first_bucket, weeks.stop, 'week') as a
        group by 1
    ),
    people as (
        select a.actor_id, max(a.email) as email, sum(a.n) as actions, count(*) as active_days,
               max(a.at) as last_active_day
        from acts as a
        group by a.actor_id
    )
    select jsonb_build_object(
        'since', cfg_private.analytics_time(days.first_bucket), 'until', cfg_private.analytics_time(days.stop),
        'daily', (
            select jsonb_agg(jsonb_build_object('at', b.label, 'users', coalesce(d.users, 0))
                             order by b.at)
            from cfg_private.analytics_buckets(days.first_bucket, days.stop, days.step) as b
            left join per_day as d on d.at = b.at
        ),
        'weekly', (
            select jsonb_agg(jsonb_build_object('at', b.label, 'users', coalesce(w.users, 0))
                             order by b.at)
            from cfg_private.analytics_buckets(weeks.first_bucket, weeks.stop, weeks.step) as b
            left join per_week as w on w.at = b.at
        ),
        'users', (
            select coalesce(jsonb_agg(jsonb_build_object(
                'user_id', u.actor_id, 'email', u.email, 'actions', u.actions,
                'active_days', u.active_days, 'last_active_day', cfg_private.analytics_time(u.last_active_day)
            ) order by u.actions desc, u.email), '[]')
            from people as u
        )
    ) into result;
    return result;
end
$$;
revoke execute on function cfg.analytics_active_users(uuid, timestamptz, timestamptz) from public, anon;
grant execute on function cfg.analytics_active_users(uuid, timestamptz, timestamptz) to authenticated, service_role;

-- Validation failures per bucket: how many times what an environment runs went into
-- errors, or into warnings (validation.status_changed); optionally one environment (slug).
create or replace function cfg.analytics_validation_failures(
    org_id uuid, since timestamptz default null, until timestamptz default null, bucket text default 'day',
    environment text default null
)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    r record;
    env cfg.environments;
    result jsonb;
begin
    perform cfg_private.require_role(org_id, 'viewer', 'reading analytics');
    if environment is not null then
        env := cfg_private.environment_by_slug(org_id, environment);
    end if;
    r := cfg_private.analytics_range(since, until, bucket);
    with counted as (
        select date_trunc(analytics_validation_failures.bucket, a.bucket, 'UTC') as at,
               coalesce(sum(a.n) filter (where a.kind = 'validation_errors'), 0) as errors,
               coalesce(sum(a.n) filter (where a.kind = 'validation_warnings'), 0) as warnings
        from (
            select * from cfg_private.activity(
                analytics_validation_failures.org_id, 'validation_errors', r.first_bucket, r.stop, r.grain,
                environment_id => env.id, totals => true
            )
            union all
            select * from cfg_private.activity(
                analytics_validation_failures.org_id, 'validation_warnings', r.first_bucket, r.stop, r.grain,
                environment_id => env.id, totals => true
            )
        ) as a
        group by 1
    )
    select jsonb_build_object(
        'bucket', analytics_validation_failures.bucket, 'since', cfg_private.analytics_time(r.first_bucket),
        'until', cfg_private.analytics_time(r.stop),
        'series', jsonb_agg(jsonb_build_object(
            'at', b.label, 'errors', coalesce(c.errors, 0), 'warnings', coalesce(c.warnings, 0)
        ) order by b.at)
    ) into result
    from cfg_private.analytics_buckets(r.first_bucket, r.stop, r.step) as b
    left join counted as c on c.at = b.at;
    return result;
end
$$;
revoke execute on function cfg.analytics_validation_failures(uuid, timestamptz, timestamptz, text, text)
from public, anon;
grant execute on function cfg.analytics_validation_failures(uuid, timestamptz, timestamptz, text, text)
to authenticated, service_role;
