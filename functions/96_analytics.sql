-- =============================================================================
-- Analytics, the model (issue 13; docs/analytics.md): what counts as activity, read from
-- the source tables in one place; the rollup the pg_cron job keeps behind a watermark
-- (hourly, daily and weekly rows, with and without automation and person; lead times);
-- and the reader the RPCs share: the coarsest rows that fit before the watermark, the
-- sources after it.
-- The RPCs are in 97_analytics_api.sql.
-- =============================================================================

-- PT422 with detail.errors = [{path, message}], the shape every analytics input error has.
create or replace function cfg_private.analytics_invalid(errors jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
    raise exception '%', errors -> 0 ->> 'message'
        using errcode = 'PT422', detail = jsonb_build_object('errors', errors)::text;
end
$$;
revoke execute on function cfg_private.analytics_invalid(jsonb) from public, anon;
grant execute on function cfg_private.analytics_invalid(jsonb) to authenticated, service_role;

-- Activity of one org and kind in [since, until), counted from the source tables by index
-- range, grouped by hour: the rows the rollup holds for closed hours (grain 'hour'). The one definition
-- of each kind (see the migration): the job and the query-time tail both call it.
create or replace function cfg_private.activity_from_sources(
    org_id uuid, kind text, since timestamptz, until timestamptz
)
returns setof cfg_private.activity_rollup
language plpgsql stable
set search_path = ''
as $$
begin
    if kind = 'version' then
        return query
        select v.org_id, date_trunc('hour', v.created_at, 'UTC'), activity_from_sources.kind, v.automation_id, null::uuid,
               v.author_id, v.author_email, count(*)::integer, 'hour'
        from cfg.config_versions as v
        where v.org_id = activity_from_sources.org_id
          and v.created_at >= since and v.created_at < until
        group by 1, 2, 4, 6, 7;
    elsif kind in ('deployment', 'direct_promotion') then
        -- Direct promotions: deployments by promotion with no request (no approval needed).
        return query
        select d.org_id, date_trunc('hour', d.created_at, 'UTC'), activity_from_sources.kind, d.automation_id, d.environment_id,
               d.actor_id, d.actor_email, count(*)::integer, 'hour'
        from cfg.environments as e
        join cfg.deployment_history as d
            on d.org_id = e.org_id and d.environment_id = e.id and d.created_at >= since and d.created_at < until
        where e.org_id = activity_from_sources.org_id
          and (activity_from_sources.kind = 'deployment' or (d.source = 'promotion' and d.request_id is null))
        group by 1, 2, 4, 5, 6, 7;
    elsif kind = 'action' then
        -- Actions of people (a user id): the service key and database roles are not users.
        return query
        select l.org_id, date_trunc('hour', l.created_at, 'UTC'), activity_from_sources.kind, null::uuid, null::uuid,
               l.actor_id, max(l.actor_email), count(*)::integer, 'hour'
        from cfg.audit_log as l
        where l.org_id = activity_from_sources.org_id
          and l.created_at >= since and l.created_at < until and l.actor_id is not null
        group by 1, 2, 6;
    elsif kind in ('validation_errors', 'validation_warnings') then
        -- What an environment runs went into errors (or warnings): a rule changed, or a
        -- version with warnings was deployed. Refused deployments leave no row anywhere.
        return query
        select ev.org_id, date_trunc('hour', ev.created_at, 'UTC'), activity_from_sources.kind, ev.automation_id, ev.environment_id,
               null::uuid, null::text, count(*)::integer, 'hour'
        from cfg_private.events as ev
        where ev.created_at >= since and ev.created_at < until and ev.org_id = activity_from_sources.org_id
          and ev.type = 'validation.status_changed' and ev.payload ->> 'to' = substr(kind, 12)
        group by 1, 2, 4, 5;
    else
        raise exception 'unknown activity kind %', activity_from_sources.kind using errcode = 'PT422';
    end if;
end
$$;
revoke execute on function cfg_private.activity_from_sources(uuid, text, timestamptz, timestamptz)
from public, anon, authenticated, service_role;

-- The hour before which every source row is committed: rows take their transaction's
-- start time (now()), so nothing still running in this database can add one earlier than
-- the oldest running transaction's start.
create or replace function cfg_private.activity_horizon()
returns timestamptz
language plpgsql stable
set search_path = ''
as $$
begin
    return date_trunc('hour', least(now(), (
        select min(a.xact_start) from pg_catalog.pg_stat_activity as a
        where a.datname = current_database() and a.xact_start is not null
    )), 'UTC');
end
$$;
revoke execute on function cfg_private.activity_horizon() from public, anon, authenticated, service_role;

-- Deployments by promotion into environment_id in [since, until), each with when its
-- version first landed in from_environment_id before it (null if it had not): the one
-- definition of a lead time's ends, for the job and for the query-time tail.
create or replace function cfg_private.promotion_arrivals(
    org_id uuid, environment_id uuid, from_environment_id uuid, since timestamptz, until timestamptz
)
returns table (deployed_at timestamptz, arrived_at timestamptz)
language sql stable
set search_path = ''
as $$
    select d.created_at, (
        select min(f.created_at) from cfg.deployment_history as f
        where f.version_id = d.version_id and f.automation_id = d.automation_id and f.org_id = d.org_id
          and f.environment_id = promotion_arrivals.from_environment_id and f.created_at <= d.created_at
    )
    from cfg.deployment_history as d
    where d.org_id = promotion_arrivals.org_id and d.environment_id = promotion_arrivals.environment_id
      and d.created_at >= since and d.created_at < until and d.source = 'promotion'
$$;
revoke execute on function cfg_private.promotion_arrivals(uuid, uuid, uuid, timestamptz, timestamptz)
from public, anon, authenticated, service_role;

-- The pg_cron job (every minute): rolls up the whole hours between the watermark and the
-- horizon (at most 31 days per run, so a first run over a long history is gradual; the
-- tail covers the rest meanwhile): hourly rows and their totals, then the days and weeks
-- that closed summed from them, and the lead times of the promotions; then moves the
-- watermark, in one transaction. up_to (tests, operators) stops earlier. Returns the
-- hourly rows written. A transaction left open for hours holds the horizon back: answers
-- stay exact, the tail grows.
create or replace function cfg_private.roll_up_activity(up_to timestamptz default null)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    mark cfg_private.activity_watermark;
    since timestamptz;
    until timestamptz;
    written integer;
    coarser text;
    finer text := 'hour';
begin
    select * into mark from cfg_private.activity_watermark as w where w.id for update;
    since := coalesce(mark.rolled_up_to, date_trunc('hour', (
        select min(x.at) from (
            select min(v.created_at) as at from cfg.config_versions as v
            union all select min(d.created_at) from cfg.deployment_history as d
            union all select min(l.created_at) from cfg.audit_log as l
            union all select min(ev.created_at) from cfg_private.events as ev
        ) as x
    ), 'UTC'), cfg_private.activity_horizon());
    until := least(cfg_private.activity_horizon(), since + interval '31 days',
                   coalesce(date_trunc('hour', up_to, 'UTC'), 'infinity'));
    if until <= since then
        update cfg_private.activity_watermark as w set rolled_up_to = since, updated_at = now()
        where w.id and w.rolled_up_to is null;
        return 0;
    end if;
    insert into cfg_private.activity_rollup
    select r.*
    from cfg.orgs as o
    cross join unnest(array[
        'version', 'deployment', 'direct_promotion', 'action', 'validation_errors', 'validation_warnings'
    ]) as k (kind)
    cross join lateral cfg_private.activity_from_sources(o.id, k.kind, since, until) as r;
    get diagnostics written = row_count;
    insert into cfg_private.activity_totals (org_id, bucket, kind, environment_id, n, grain)
    select r.org_id, r.bucket, r.kind, r.environment_id, sum(r.n), 'hour'
    from cfg_private.activity_rollup as r
    where r.grain = 'hour' and r.bucket >= since and r.bucket < until
    group by r.org_id, r.bucket, r.kind, r.environment_id;
    -- The days, then the weeks, now wholly rolled up: sums of the grain below.
    foreach coarser in array array['day', 'week'] loop
        insert into cfg_private.activity_rollup (
            org_id, bucket, kind, automation_id, environment_id, actor_id, actor_email, n, grain
        )
        select r.org_id, date_trunc(coarser, r.bucket, 'UTC'), r.kind, r.automation_id, r.environment_id,
               r.actor_id, r.actor_email, sum(r.n), coarser
        from cfg_private.activity_rollup as r
        where r.grain = finer
          and r.bucket >= date_trunc(coarser, since, 'UTC') and r.bucket < date_trunc(coarser, until, 'UTC')
        group by r.org_id, 2, r.kind, r.automation_id, r.environment_id, r.actor_id, r.actor_email;
        insert into cfg_private.activity_totals (org_id, bucket, kind, environment_id, n, grain)
        select t.org_id, date_trunc(coarser, t.bucket, 'UTC'), t.kind, t.environment_id, sum(t.n), coarser
        from cfg_private.activity_totals as t
        where t.grain = finer
          and t.bucket >= date_trunc(coarser, since, 'UTC') and t.bucket < date_trunc(coarser, until, 'UTC')
        group by t.org_id, 2, t.kind, t.environment_id;
        finer := coarser;
    end loop;
    insert into cfg_private.promotion_rollup (org_id, environment_id, deployed_at, from_environment_id, arrived_at)
    select e.org_id, e.id, p.deployed_at, first_env.id, p.arrived_at
    from cfg.environments as e
    cross join lateral (
        select f.id from cfg.environments as f where f.org_id = e.org_id order by f.position limit 1
    ) as first_env
    cross join lateral cfg_private.promotion_arrivals(e.org_id, e.id, first_env.id, since, until) as p;
    update cfg_private.activity_watermark as w set rolled_up_to = until, updated_at = now() where w.id;
    return written;
end
$$;
revoke execute on function cfg_private.roll_up_activity(timestamptz) from public, anon, authenticated, service_role;

-- Which rollup rows cover [since, until) up to the watermark: the coarsest grain (up to
-- `coarsest`) for the whole units inside, each finer grain for the partial edges around
-- them. All bounds are whole hours; a grain's unit is wholly rolled up once it ends
-- before the watermark. [greatest(since, least(until, mark)), until) is the tail.
create or replace function cfg_private.activity_pieces(
    since timestamptz, until timestamptz, mark timestamptz, coarsest text
)
returns table (grain text, lo timestamptz, hi timestamptz)
language plpgsql stable
rows 5
set search_path = ''
as $$
declare
    finer text := 'hour';
    inner_lo timestamptz := since;
    inner_hi timestamptz := greatest(since, least(until, mark));
    g text;
    g_lo timestamptz;
    g_hi timestamptz;
begin
    foreach g in array array['day', 'week'] loop
        exit when coarsest = finer;
        g_lo := date_trunc(g, inner_lo, 'UTC');
        if g_lo < inner_lo then
            g_lo := g_lo + ('1 ' || g)::interval;
        end if;
        g_hi := date_trunc(g, inner_hi, 'UTC');
        exit when g_lo >= g_hi;
        grain := finer; lo := inner_lo; hi := g_lo;
        return next;
        lo := g_hi; hi := inner_hi;
        return next;
        finer := g; inner_lo := g_lo; inner_hi := g_hi;
    end loop;
    grain := finer; lo := inner_lo; hi := inner_hi;
    return next;
end
$$;
revoke execute on function cfg_private.activity_pieces(timestamptz, timestamptz, timestamptz, text) from public, anon;
grant execute on function cfg_private.activity_pieces(timestamptz, timestamptz, timestamptz, text)
to authenticated, service_role;

-- One org's activity of one kind in [since, until) (whole units of `grain`, the coarsest
-- rows it may read: 'hour', 'day' or 'week'): rollup rows up to the watermark (see
-- activity_pieces), then the sources from it on. Filters: automation_id, environment_id,
-- author (a user id or an email). With totals (and no automation or author filter) it
-- reads the totals rows: counts per bucket and environment, automation and person null.
-- One query per piece, its bounds known when it is planned: joined to the pieces as a
-- function's rows, the rollup was planned blind and read whole (a sequential scan of every
-- org's rows until vacuum marks them visible; issue 13, benchmark d).
-- security definer: the rollup is private and every member reads the same numbers (an
-- activity count says nothing a row would); so it checks the caller's membership itself,
-- PT404 for another org.
create or replace function cfg_private.activity(
    org_id uuid, kind text, since timestamptz, until timestamptz, grain text,
    automation_id uuid default null, environment_id uuid default null, author text default null,
    totals boolean default false
)
returns setof cfg_private.activity_rollup
language plpgsql stable security definer
set search_path = ''
as $$
declare
    mark timestamptz := coalesce(
        (select w.rolled_up_to from cfg_private.activity_watermark as w where w.id), '-infinity'
    );
    p record;
begin
    perform cfg_private.require_role(activity.org_id, 'viewer', 'reading analytics');
    totals := totals and activity.automation_id is null and author is null;
    for p in select * from cfg_private.activity_pieces(since, until, mark, grain) as x where x.lo < x.hi loop
        if totals then
            return query
            select t.org_id, t.bucket, t.kind, null::uuid, t.environment_id, null::uuid, null::text, t.n, t.grain
            from cfg_private.activity_totals as t
            where t.org_id = activity.org_id and t.kind = activity.kind and t.grain = p.grain
              and t.bucket >= p.lo and t.bucket < p.hi
              and (activity.environment_id is null or t.environment_id = activity.environment_id);
        else
            return query
            select r.* from cfg_private.activity_rollup as r
            where r.org_id = activity.org_id and r.kind = activity.kind and r.grain = p.grain
              and r.bucket >= p.lo and r.bucket < p.hi
              and (activity.automation_id is null or r.automation_id = activity.automation_id)
              and (activity.environment_id is null or r.environment_id = activity.environment_id)
              and (author is null or r.actor_id::text = author or lower(r.actor_email) = lower(author));
        end if;
    end loop;
    return query
    select s.* from cfg_private.activity_from_sources(org_id, kind, greatest(since, mark), until) as s
    where (activity.automation_id is null or s.automation_id = activity.automation_id)
      and (activity.environment_id is null or s.environment_id = activity.environment_id)
      and (author is null or s.actor_id::text = author or lower(s.actor_email) = lower(author));
end
$$;
revoke execute on function cfg_private.activity(uuid, text, timestamptz, timestamptz, text, uuid, uuid, text, boolean)
from public, anon;
grant execute on function cfg_private.activity(uuid, text, timestamptz, timestamptz, text, uuid, uuid, text, boolean)
to authenticated, service_role;

-- {count, median_seconds, p90_seconds} of n durations whose 50th and 90th percentiles
-- (seconds, interpolated: percentile_cont(array[0.5, 0.9])) are given, rounded to 0.1 s.
create or replace function cfg_private.analytics_durations(n bigint, percentiles double precision [])
returns jsonb
language sql immutable
set search_path = ''
as $$
    select jsonb_build_object(
        'count', n, 'median_seconds', round(percentiles[1]::numeric, 1), 'p90_seconds', round(percentiles[2]::numeric, 1)
    )
$$;
revoke execute on function cfg_private.analytics_durations(bigint, double precision []) from public, anon;
grant execute on function cfg_private.analytics_durations(bigint, double precision []) to authenticated, service_role;

-- Lead times (deployed - arrived; count, median, p90) of the promotions into
-- to_environment_id in [since, until) whose version was in from_environment_id before: the
-- stored ones up to the watermark, the sources after it. Stored ones were measured from
-- the pipeline's first environment of their time: if that is not from_environment_id any
-- more (the pipeline was reordered), the whole period is counted from the sources.
-- security definer like activity(): the rollup is private; it checks the caller's
-- membership itself.
create or replace function cfg_private.lead_times(
    org_id uuid, from_environment_id uuid, to_environment_id uuid, since timestamptz, until timestamptz
)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
    rolled timestamptz := greatest(since, least(until, coalesce(
        (select w.rolled_up_to from cfg_private.activity_watermark as w where w.id), '-infinity'
    )));
    result jsonb;
begin
    perform cfg_private.require_role(lead_times.org_id, 'viewer', 'reading analytics');
    if exists (
        select 1 from cfg_private.promotion_rollup as p
        where p.org_id = lead_times.org_id and p.environment_id = lead_times.to_environment_id
          and p.deployed_at >= since and p.deployed_at < rolled
          and p.from_environment_id is distinct from lead_times.from_environment_id
    ) then
        rolled := since;
    end if;
    select cfg_private.analytics_durations(
        count(*), percentile_cont(array[0.5, 0.9]) within group (order by date_part('epoch', x.lead))
    ) into result
    from (
        select p.deployed_at - p.arrived_at as lead from cfg_private.promotion_rollup as p
        where p.org_id = lead_times.org_id and p.environment_id = lead_times.to_environment_id
          and p.deployed_at >= since and p.deployed_at < rolled and p.arrived_at is not null
        union all
        select a.deployed_at - a.arrived_at
        from cfg_private.promotion_arrivals(org_id, to_environment_id, from_environment_id, rolled, until) as a
        where a.arrived_at is not null
    ) as x;
    return result;
end
$$;
revoke execute on function cfg_private.lead_times(uuid, uuid, uuid, timestamptz, timestamptz) from public, anon;
grant execute on function cfg_private.lead_times(uuid, uuid, uuid, timestamptz, timestamptz)
to authenticated, service_role;

-- [since, until) checked and widened to whole buckets (UTC; weeks start on Monday):
-- until defaults to now, since to a bucket-sized look back; at most 5,000 buckets.
create or replace function cfg_private.analytics_range(
    since timestamptz, until timestamptz, bucket text,
    out first_bucket timestamptz, out stop timestamptz, out step interval, out grain text
)
language plpgsql stable
set search_path = ''
as $$
declare
    errors jsonb := '[]';
begin
    if bucket is null or bucket not in ('hour', 'day', 'week') then
        errors := errors || jsonb_build_object('path', 'bucket', 'message', 'bucket must be hour, day or week');
        bucket := 'day';
    end if;
    step := ('1 ' || bucket)::interval;
    grain := bucket;  -- the coarsest rollup rows it may read
    until := coalesce(until, now());
    since := coalesce(since, until - 30 * step);
    if not isfinite(since) or not isfinite(until) then
        errors := errors || jsonb_build_object('path', 'since', 'message', 'since and until must be finite times');
    elsif since > until then
        errors := errors || jsonb_build_object('path', 'since', 'message', 'since must not be after until');
    else
        first_bucket := date_trunc(bucket, since, 'UTC');
        stop := date_trunc(bucket, until, 'UTC') + step;
        if extract(epoch from stop - first_bucket) / extract(epoch from step) > 5000 then
            errors := errors || jsonb_build_object(
                'path', 'until', 'message', format('at most 5000 %ss per chart: shorten the period or use a longer bucket', bucket)
            );
        end if;
    end if;
    if jsonb_array_length(errors) > 0 then
        perform cfg_private.analytics_invalid(errors);
    end if;
end
$$;
revoke execute on function cfg_private.analytics_range(timestamptz, timestamptz, text) from public, anon;
grant execute on function cfg_private.analytics_range(timestamptz, timestamptz, text) to authenticated, service_role;

-- The buckets of a range (UTC: stepped without time zone, so days are 24 hours), each with
-- its time as the API prints it (analytics_time's format, computed here in the same query:
-- one function call per point cost more than the rest of a 4,800-point chart).
create or replace function cfg_private.analytics_buckets(first_bucket timestamptz, stop timestamptz, step interval)
returns table (at timestamptz, label text)
language sql stable
set search_path = ''
as $$
    select g at time zone 'UTC', to_char(g, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    from generate_series(first_bucket at time zone 'UTC', (stop at time zone 'UTC') - step, step) as g
$$;
revoke execute on function cfg_private.analytics_buckets(timestamptz, timestamptz, interval) from public, anon;
grant execute on function cfg_private.analytics_buckets(timestamptz, timestamptz, interval)
to authenticated, service_role;

-- A time as the API prints it: ISO 8601 in UTC, whatever the session's time zone.
create or replace function cfg_private.analytics_time(at timestamptz)
returns text
language sql stable
set search_path = ''
as $$
    select to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;
revoke execute on function cfg_private.analytics_time(timestamptz) from public, anon;
grant execute on function cfg_private.analytics_time(timestamptz) to authenticated, service_role;
