-- Webhooks, the dispatcher's functions (service role only). See functions/60_webhooks.sql.

-- =============================================================================
-- The dispatcher's side (service role): claim due deliveries, record attempts.
-- =============================================================================

-- Claims up to max_rows due deliveries for lease. Each claim is a new attempt
-- number; the row becomes due again when the lease ends (a killed worker's
-- deliveries are retried). Returns what is needed to sign and send each one: the
-- signing secrets by Vault id (cfg_private.webhook_signing_secrets has them).
create or replace function cfg_private.claim_webhook_deliveries(worker text, max_rows integer, lease interval)
returns table (
    delivery_id bigint, attempt integer, run_attempt integer, org_id uuid, endpoint_id uuid,
    url text, secret_ids uuid [], allowed_hosts text [], webhook_id text, body text
)
-- plpgsql, not sql: its plan is cached per session, where a sql function's
-- statement is planned again on every call (a millisecond at 1,000 claims/s).
language plpgsql volatile
set search_path = ''
-- Estimated costs of these small queries can pass jit_above_cost; compiling
-- would take longer than running them.
set jit = off
as $$
begin
    return query
    -- `= any(array(...))` rather than a join keeps the plan an index lookup per
    -- claimed row whatever the planner guesses for max_rows (a join with an
    -- unknown limit was planned as a hash join over the whole table).
    with claimed as (
        update cfg_private.webhook_deliveries as d
        set attempt_count = d.attempt_count + 1,
            run_attempts = d.run_attempts + 1,
            next_attempt_at = now() + claim_webhook_deliveries.lease,
            leased_by = claim_webhook_deliveries.worker,
            updated_at = now()
        where d.id = any(array(
            select q.id
            from cfg_private.webhook_deliveries as q
            where q.status = 'pending' and q.next_attempt_at <= now()
            order by q.next_attempt_at, q.id
            limit claim_webhook_deliveries.max_rows
            for update skip locked
        ))
        returning d.id, d.attempt_count, d.run_attempts, d.org_id, d.endpoint_id, d.event_id
    )

    select
        c.id, c.attempt_count, c.run_attempts, c.org_id, c.endpoint_id, e.url,
        array(
            select s.secret_id from cfg_private.webhook_secrets as s
            where s.endpoint_id = c.endpoint_id and (s.expires_at is null or s.expires_at > now())
            order by s.expires_at desc nulls first
        ),
        array(select h.host from cfg.webhook_allowed_hosts as h where h.org_id = c.org_id),
        'evt_' || ev.id,
        jsonb_build_object(
            'id', 'evt_' || ev.id,
            'type', ev.type,
            'timestamp', to_char(ev.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object(
                'org_id', ev.org_id,
                'subject_type', ev.subject_type,
                'subject_id', ev.subject_id,
                'automation_id', ev.automation_id,
                'environment_id', ev.environment_id,
                'actor', jsonb_build_object('id', ev.actor_id, 'email', ev.actor_email),
                'payload', case
                    when octet_length(ev.payload::text) > cfg_private.webhook_max_payload_bytes()
                        then jsonb_build_object('truncated', true, 'bytes', octet_length(ev.payload::text))
                    else ev.payload
                end
            )
        )::text
    from claimed as c
    join cfg.webhook_endpoints as e on e.id = c.endpoint_id
    join cfg_private.events as ev on ev.id = c.event_id
    order by c.id;
end
$$;
revoke execute on function cfg_private.claim_webhook_deliveries(text, integer, interval)
from public, anon, authenticated;
grant execute on function cfg_private.claim_webhook_deliveries(text, integer, interval) to service_role;

-- Records a batch of attempts (arrays of equal length, one element per attempt).
-- outcome: 'succeeded' (2xx), 'retry' (due again in retry_in seconds), 'failed'
-- (retries exhausted), 'gone' (410: the endpoint is disabled). A result whose
-- attempt no longer holds the delivery (lease lost) is logged but changes nothing.
create or replace function cfg_private.record_webhook_attempts(
    worker text,
    delivery_ids bigint [],
    attempts integer [],
    outcomes text [],
    status_codes integer [],
    latencies integer [],
    errors text [],
    excerpts text [],
    retry_in double precision [],
    disable_after interval default interval '5 days'
)
returns integer
language plpgsql
set search_path = ''
set jit = off
as $$
declare
    changed integer;
    failing uuid [];
    healthy uuid [];
    gone uuid [];
begin
    insert into cfg_private.webhook_attempts (
        org_id, delivery_id, endpoint_id, attempt, worker, status_code, latency_ms, error, response_excerpt
    )
    select d.org_id, d.id, d.endpoint_id, x.attempt, worker, x.status_code, x.latency_ms,
        left(x.error, 2000), x.excerpt
    from unnest(delivery_ids, attempts, status_codes, latencies, errors, excerpts)
        as x (delivery_id, attempt, status_code, latency_ms, error, excerpt)
    join cfg_private.webhook_deliveries as d on d.id = x.delivery_id
    on conflict (delivery_id, attempt) do nothing;

    with updated as (
        update cfg_private.webhook_deliveries as d
        set status = case x.outcome when 'succeeded' then 'succeeded' when 'retry' then 'pending' else 'failed' end,
            next_attempt_at = case
                when x.outcome = 'retry' then now() + make_interval(secs => greatest(x.retry_in, 0))
                else d.next_attempt_at
            end,
            completed_at = case when x.outcome = 'retry' then null else now() end,
            leased_by = null,
            last_attempt_at = now(),
            last_status_code = x.status_code,
            last_error = left(x.error, 2000),
            updated_at = now()
        from unnest(delivery_ids, attempts, outcomes, status_codes, errors, retry_in)
            as x (delivery_id, attempt, outcome, status_code, error, retry_in)
        where d.id = x.delivery_id and d.attempt_count = x.attempt and d.status = 'pending'
        returning d.*, x.outcome
    ),

    failed as (
        select cfg_private.emit_event(
            u.org_id, 'webhook.delivery_failed', 'webhook_endpoint', u.endpoint_id, null,
            jsonb_build_object(
                'endpoint_id', u.endpoint_id, 'delivery_id', u.id, 'event_id', u.event_id,
                'event_type', u.event_type, 'attempts', u.attempt_count,
                'last_status_code', u.last_status_code, 'last_error', u.last_error
            )
        ) as event_id
        from updated as u
        where u.outcome in ('failed', 'gone')
    )

    select count(*) into changed from failed;

    select
        array_agg(distinct d.endpoint_id) filter (where x.outcome <> 'succeeded'),
        array_agg(distinct d.endpoint_id) filter (where x.outcome = 'succeeded'),
        array_agg(distinct d.endpoint_id) filter (where x.outcome = 'gone')
    into failing, healthy, gone
    from unnest(delivery_ids, outcomes) as x (delivery_id, outcome)
    join cfg_private.webhook_deliveries as d on d.id = x.delivery_id;

    -- Health: failing_since is set by the first failure after a success.
    if healthy is not null then
        update cfg_private.webhook_endpoint_health as h
        set failing_since = null, updated_at = now()
        where h.endpoint_id = any(healthy) and h.failing_since is not null;
    end if;
    if failing is not null then
        insert into cfg_private.webhook_endpoint_health as h (endpoint_id, org_id, failing_since)
        select e.id, e.org_id, now()
        from cfg.webhook_endpoints as e
        where e.id = any(failing) and not e.id = any(coalesce(healthy, '{}'))
        on conflict (endpoint_id) do update
        set failing_since = now(), updated_at = now()
        where h.failing_since is null;

        -- 410 Gone, or failing without a break for disable_after: disable, with an
        -- event (and an audit row from the endpoint's audit trigger).
        with disabled as (
            update cfg.webhook_endpoints as e
            set enabled = false,
                disabled_at = now(),
                disabled_reason = case
                    when e.id = any(coalesce(gone, '{}')) then 'the endpoint answered 410 Gone'
                    else 'failing continuously since ' || h.failing_since::text
                end
            from cfg_private.webhook_endpoint_health as h
            where h.endpoint_id = e.id
                and e.id = any(failing)
                and e.enabled
                and (e.id = any(coalesce(gone, '{}')) or h.failing_since <= now() - disable_after)
            returning e.*
        )

        select changed + count(cfg_private.emit_event(
            d.org_id, 'webhook.endpoint_disabled', 'webhook_endpoint', d.id, null,
            jsonb_build_object('endpoint_id', d.id, 'reason', d.disabled_reason)
        ))::integer into changed
        from disabled as d;
    end if;
    return changed;
end
$$;
revoke execute on function cfg_private.record_webhook_attempts(
    text, bigint [], integer [], text [], integer [], integer [], text [], text [], double precision [], interval
) from public, anon, authenticated;
grant execute on function cfg_private.record_webhook_attempts(
    text, bigint [], integer [], text [], integer [], integer [], text [], text [], double precision [], interval
) to service_role;

-- Delivery-log retention (pg_cron, daily): attempts older than keep, and
-- finished deliveries older than keep. Returns how many rows left.
create or replace function cfg_private.purge_webhook_log(keep interval default interval '30 days')
returns bigint
language plpgsql
set search_path = ''
as $$
declare
    attempts_removed bigint;
    deliveries_removed bigint;
begin
    if keep is null or keep < interval '1 day' then
        raise exception 'webhook log retention must keep at least one day'
            using errcode = 'PT422', detail = jsonb_build_object('keep', keep::text)::text;
    end if;
    delete from cfg_private.webhook_attempts as a where a.created_at < now() - keep;
    get diagnostics attempts_removed = row_count;
    delete from cfg_private.webhook_deliveries as d where d.completed_at < now() - keep;
    get diagnostics deliveries_removed = row_count;
    return attempts_removed + deliveries_removed;
end
$$;
revoke execute on function cfg_private.purge_webhook_log(interval) from public, anon, authenticated;
grant execute on function cfg_private.purge_webhook_log(interval) to service_role;
