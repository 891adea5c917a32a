-- =============================================================================
-- Webhooks: validation (URL, SSRF, event types), secrets, fan-out of outbox
-- events into deliveries, the dispatcher's claim/record functions, retry
-- controls and the delivery log. Tables: migrations/20261125210000_webhooks.sql.
-- =============================================================================

-- Bodies larger than this are sent with their payload replaced by a marker.
create or replace function cfg_private.webhook_max_payload_bytes()
returns integer
language sql immutable
set search_path = ''
as $$ select 262144 $$;
revoke execute on function cfg_private.webhook_max_payload_bytes() from public, anon;
grant execute on function cfg_private.webhook_max_payload_bytes() to authenticated, service_role;

-- Loopback, private, link-local (169.254.169.254 metadata), CGNAT (100.100.100.200
-- metadata), unique-local (fd00:ec2::254 metadata), multicast and reserved ranges.
-- The dispatcher reads this list too, so it lives in one place.
create or replace function cfg_private.webhook_blocked_networks()
returns cidr []
language sql immutable
set search_path = ''
as $$
    select array[
        '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16',
        '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4',
        '240.0.0.0/4', '::/128', '::1/128', '::ffff:0:0/96', '64:ff9b::/96', 'fc00::/7',
        'fe80::/10', 'ff00::/8'
    ]::cidr []
$$;
revoke execute on function cfg_private.webhook_blocked_networks() from public, anon;
grant execute on function cfg_private.webhook_blocked_networks() to authenticated, service_role;

-- text -> inet, or null when it is not an address.
create or replace function cfg_private.try_inet(value text)
returns inet
language plpgsql immutable
set search_path = ''
as $$
begin
    return value::inet;
exception when others then
    return null;
end
$$;
revoke execute on function cfg_private.try_inet(text) from public, anon;
grant execute on function cfg_private.try_inet(text) to authenticated, service_role;

-- Whether the org's allowlist (cfg.webhook_allowed_hosts) admits host.
-- security definer: admins may read the allowlist, but the check also runs for
-- triggers fired by other roles, and must see every entry of the org.
create or replace function cfg_private.webhook_host_allowed(org_id uuid, host text)
returns boolean
language sql stable security definer
set search_path = ''
as $$
    select exists (
        select 1
        from cfg.webhook_allowed_hosts as h
        where h.org_id = webhook_host_allowed.org_id
            and (
                h.host = lower(webhook_host_allowed.host)
                or cfg_private.try_inet(webhook_host_allowed.host)
                <<= cfg_private.try_inet(h.host)
            )
    )
$$;
revoke execute on function cfg_private.webhook_host_allowed(uuid, text) from public, anon;
grant execute on function cfg_private.webhook_host_allowed(uuid, text) to authenticated, service_role;

-- Raises PT422 unless url is a well-formed https URL to a public host (or an
-- allowlisted one). Host names are resolved again by the dispatcher at send time.
create or replace function cfg_private.check_webhook_url(org_id uuid, url text)
returns void
language plpgsql stable
set search_path = ''
as $$
declare
    parts text [];
    host text;
    address inet;
    allowed boolean;
begin
    parts := regexp_match(
        url, '^(https?)://([^/?#@:\[\]\s]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?([/?#][^\s]*)?$'
    );
    if url is null or parts is null or length(url) > 2048 then
        raise exception 'invalid webhook URL %: use https://host[:port]/path (no user info, no spaces)',
            coalesce(quote_literal(left(url, 200)), 'null')
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'url', 'value', left(url, 200))::text;
    end if;
    if parts[3] is not null and parts[3]::integer not between 1 and 65535 then
        raise exception 'invalid webhook URL port %', parts[3]
            using errcode = 'PT422', detail = jsonb_build_object('field', 'url', 'port', parts[3])::text;
    end if;
    host := lower(btrim(parts[2], '[]'));
    address := cfg_private.try_inet(host);
    allowed := cfg_private.webhook_host_allowed(check_webhook_url.org_id, host);
    if not allowed and (
        address <<= any(cfg_private.webhook_blocked_networks())
        -- Numeric forms the OS resolver accepts but inet does not (2130706433, 0x7f.1).
        or (address is null and (host ~ '^[0-9.]+$' or host ~ '^0x'))
        or host = 'localhost' or host like '%.localhost' or host like '%.internal'
        or host like '%.local' or host = 'metadata'
    ) then
        raise exception 'refused webhook URL: % is a loopback, private, link-local or cloud-metadata address', host
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'url', 'host', host, 'reason', 'ssrf')::text,
                  hint = 'Use a public host, or ask the operator to allowlist this host for your organisation.';
    end if;
    if parts[1] <> 'https' and not allowed then
        raise exception 'webhook URLs must use https (plain http only for allowlisted hosts)'
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'url', 'scheme', parts[1])::text;
    end if;
end
$$;
revoke execute on function cfg_private.check_webhook_url(uuid, text) from public, anon;
grant execute on function cfg_private.check_webhook_url(uuid, text) to authenticated, service_role;

-- The event types endpoints can subscribe to. security definer: the list lives
-- in cfg_private, which API roles cannot read.
create or replace function cfg.webhook_event_types()
returns table (type text, description text)
language sql stable security definer
set search_path = ''
as $$
    select t.type, t.description from cfg_private.event_types as t order by t.type
$$;
revoke execute on function cfg.webhook_event_types() from public, anon;
grant execute on function cfg.webhook_event_types() to authenticated, service_role;

-- The elements of types that are not known event types (null when all are).
-- security definer: the list lives in cfg_private; endpoint writes by admins check it.
create or replace function cfg_private.unknown_event_types(types text [])
returns text []
language sql stable security definer
set search_path = ''
as $$
    select array_agg(t order by t)
    from unnest(types) as t
    where not exists (select 1 from cfg_private.event_types as k where k.type = t)
$$;
revoke execute on function cfg_private.unknown_event_types(text []) from public, anon;
grant execute on function cfg_private.unknown_event_types(text []) to authenticated, service_role;

-- A new signing secret: whsec_ + base64 of 32 random bytes.
create or replace function cfg_private.new_webhook_secret()
returns text
language sql volatile
set search_path = ''
as $$ select 'whsec_' || encode(extensions.gen_random_bytes(32), 'base64') $$;
revoke execute on function cfg_private.new_webhook_secret() from public, anon, authenticated;
grant execute on function cfg_private.new_webhook_secret() to service_role;

-- =============================================================================
-- Endpoint triggers: validate every write (RPC or direct), keep secrets and
-- the queue in step with the endpoint.
-- =============================================================================

create or replace function cfg_private.check_webhook_endpoint()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    unknown text [];
begin
    new.url := btrim(new.url);
    new.description := coalesce(new.description, '');
    if tg_op = 'INSERT' or new.url is distinct from old.url then
        perform cfg_private.check_webhook_url(new.org_id, new.url);
    end if;
    new.event_types := array(select distinct t from unnest(coalesce(new.event_types, '{}')) as t order by t);
    unknown := cfg_private.unknown_event_types(new.event_types);
    if unknown is not null then
        raise exception 'unknown event type(s): %', array_to_string(unknown, ', ')
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'event_types', 'unknown', unknown)::text,
                  hint = 'cfg.webhook_event_types() lists the known types.';
    end if;
    if new.environment_id is not null and not exists (
        select 1 from cfg.environments as e where e.id = new.environment_id and e.org_id = new.org_id
    ) then
        raise exception 'environment not found in this organisation'
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'environment_id', 'value', new.environment_id)::text;
    end if;
    if new.automation_id is not null and not exists (
        select 1 from cfg.automations as a where a.id = new.automation_id and a.org_id = new.org_id
    ) then
        raise exception 'automation not found in this organisation'
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'automation_id', 'value', new.automation_id)::text;
    end if;
    if new.enabled then
        new.disabled_reason := null;
        new.disabled_at := null;
    elsif tg_op = 'INSERT' or old.enabled then
        new.disabled_reason := coalesce(
            new.disabled_reason,
            'disabled by ' || coalesce((select auth.email()), (select auth.role()), current_user::text)
        );
        new.disabled_at := now();
    end if;
    return new;
end
$$;

-- security definer: secrets, health and the queue live in cfg_private, which the
-- admin editing the endpoint cannot write.
create or replace function cfg_private.webhook_endpoint_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        insert into cfg_private.webhook_secrets (org_id, endpoint_id, secret)
        values (new.org_id, new.id, cfg_private.new_webhook_secret());
    elsif old.enabled and not new.enabled then
        -- Nothing is sent to a disabled endpoint; its queue can be retried later.
        update cfg_private.webhook_deliveries as d
        set status = 'cancelled', completed_at = now(), updated_at = now(),
            last_error = coalesce(d.last_error, 'endpoint disabled')
        where d.endpoint_id = new.id and d.status = 'pending';
    elsif new.enabled and not old.enabled then
        delete from cfg_private.webhook_endpoint_health as h where h.endpoint_id = new.id;
    end if;
    return null;
end
$$;

create or replace trigger touch_row before insert or update on cfg.webhook_endpoints
for each row execute function cfg_private.touch_row();
create or replace trigger stamp_author before insert or update on cfg.webhook_endpoints
for each row execute function cfg_private.stamp_author();
create or replace trigger check_endpoint before insert or update on cfg.webhook_endpoints
for each row execute function cfg_private.check_webhook_endpoint();
create or replace trigger endpoint_changed after insert or update on cfg.webhook_endpoints
for each row execute function cfg_private.webhook_endpoint_changed();
-- URLs (Slack, Teams…) often carry a bearer token, so audit rows redact them.
create or replace trigger audit after insert or update or delete on cfg.webhook_endpoints
for each row execute function cfg_private.audit_row('url');

create or replace trigger touch_row before insert or update on cfg.webhook_allowed_hosts
for each row execute function cfg_private.touch_row();
create or replace trigger audit after insert or update or delete on cfg.webhook_allowed_hosts
for each row execute function cfg_private.audit_row();

create or replace trigger touch_row before insert or update on cfg_private.webhook_secrets
for each row execute function cfg_private.touch_row();
create or replace trigger audit after insert or update or delete on cfg_private.webhook_secrets
for each row execute function cfg_private.audit_row('secret');

-- =============================================================================
-- Fan-out: each outbox event becomes one delivery per matching enabled
-- endpoint, in the event's own transaction (so a committed event always has
-- its deliveries, and NOTIFY on commit finds them).
-- security definer: events are appended on behalf of API users, who cannot
-- read endpoints of their org or write the queue.
-- =============================================================================

create or replace function cfg_private.fan_out_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- Test events go only to the endpoint they were sent to (cfg.send_test_webhook).
    if new.type = 'webhook.test' then
        return null;
    end if;
    insert into cfg_private.webhook_deliveries (org_id, endpoint_id, event_id, event_type)
    select new.org_id, e.id, new.id, new.type
    from cfg.webhook_endpoints as e
    where e.org_id = new.org_id
        and e.enabled
        and (cardinality(e.event_types) = 0 or new.type = any(e.event_types))
        and (e.environment_id is null or e.environment_id = new.environment_id)
        and (e.automation_id is null or e.automation_id = new.automation_id)
        -- An endpoint never hears about its own failures (no feedback loop).
        and not (new.type like 'webhook.%' and e.id::text = new.payload ->> 'endpoint_id');
    return null;
end
$$;

create or replace trigger fan_out after insert on cfg_private.events
for each row execute function cfg_private.fan_out_event();

-- =============================================================================
-- The dispatcher's side (service role): claim due deliveries, record attempts.
-- =============================================================================

-- Claims up to max_rows due deliveries for lease. Each claim is a new attempt
-- number; the row becomes due again when the lease ends (a killed worker's
-- deliveries are retried). Returns what is needed to sign and send each one.
create or replace function cfg_private.claim_webhook_deliveries(worker text, max_rows integer, lease interval)
returns table (
    delivery_id bigint, attempt integer, run_attempt integer, org_id uuid, endpoint_id uuid,
    url text, secrets text [], allowed_hosts text [], webhook_id text, body text
)
language sql volatile
set search_path = ''
as $$
    with due as (
        select d.id
        from cfg_private.webhook_deliveries as d
        where d.status = 'pending' and d.next_attempt_at <= now()
        order by d.next_attempt_at, d.id
        limit max_rows
        for update skip locked
    ),

    claimed as (
        update cfg_private.webhook_deliveries as d
        set attempt_count = d.attempt_count + 1,
            run_attempts = d.run_attempts + 1,
            next_attempt_at = now() + lease,
            leased_by = worker,
            updated_at = now()
        from due
        where d.id = due.id
        returning d.id, d.attempt_count, d.run_attempts, d.org_id, d.endpoint_id, d.event_id
    )

    select
        c.id, c.attempt_count, c.run_attempts, c.org_id, c.endpoint_id, e.url,
        array(
            select s.secret from cfg_private.webhook_secrets as s
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
    order by c.id
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

-- =============================================================================
-- RPCs for admins (and the service role)
-- =============================================================================

-- The org of an endpoint, after checking the caller is an admin there (PT404 for
-- an endpoint the caller cannot see, PT403 for a member below admin).
-- security definer: it must find the endpoint to tell the two apart.
create or replace function cfg_private.webhook_endpoint_org(endpoint_id uuid, action text)
returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
    found uuid;
begin
    select e.org_id into found from cfg.webhook_endpoints as e where e.id = webhook_endpoint_org.endpoint_id;
    if found is null then
        raise exception 'webhook endpoint not found'
            using errcode = 'PT404', detail = jsonb_build_object('endpoint_id', endpoint_id)::text;
    end if;
    perform cfg_private.require_role(found, 'admin', action);
    return found;
end
$$;
revoke execute on function cfg_private.webhook_endpoint_org(uuid, text) from public, anon;
grant execute on function cfg_private.webhook_endpoint_org(uuid, text) to authenticated, service_role;

-- Creates an endpoint and returns it with its signing secret, shown this once.
-- security definer: the secret is kept in cfg_private, which admins cannot read.
create or replace function cfg.create_webhook_endpoint(
    org_id uuid,
    url text,
    description text default '',
    event_types text [] default '{}',
    environment_id uuid default null,
    automation_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    created cfg.webhook_endpoints;
begin
    perform cfg_private.require_role(create_webhook_endpoint.org_id, 'admin', 'managing webhooks');
    insert into cfg.webhook_endpoints as e (org_id, url, description, event_types, environment_id, automation_id)
    values (
        create_webhook_endpoint.org_id, create_webhook_endpoint.url, coalesce(create_webhook_endpoint.description, ''),
        coalesce(create_webhook_endpoint.event_types, '{}'), create_webhook_endpoint.environment_id,
        create_webhook_endpoint.automation_id
    )
    returning * into created;
    return to_jsonb(created) || jsonb_build_object(
        'secret',
        (select s.secret from cfg_private.webhook_secrets as s where s.endpoint_id = created.id and s.expires_at is null)
    );
end
$$;
revoke execute on function cfg.create_webhook_endpoint(uuid, text, text, text [], uuid, uuid) from public, anon;
grant execute on function cfg.create_webhook_endpoint(uuid, text, text, text [], uuid, uuid)
to authenticated, service_role;

-- Replaces the signing secret; the previous one stays valid for 24 hours (the
-- dispatcher signs with both meanwhile). Returns the new secret, shown this once.
-- security definer: secrets live in cfg_private.
create or replace function cfg.rotate_webhook_secret(endpoint_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    org uuid := cfg_private.webhook_endpoint_org(rotate_webhook_secret.endpoint_id, 'rotating webhook secrets');
    fresh text := cfg_private.new_webhook_secret();
begin
    -- Only the secret being replaced keeps a grace period; older ones end now.
    update cfg_private.webhook_secrets as s set expires_at = now()
    where s.endpoint_id = rotate_webhook_secret.endpoint_id and s.expires_at > now();
    update cfg_private.webhook_secrets as s set expires_at = now() + interval '24 hours'
    where s.endpoint_id = rotate_webhook_secret.endpoint_id and s.expires_at is null;
    insert into cfg_private.webhook_secrets (org_id, endpoint_id, secret)
    values (org, rotate_webhook_secret.endpoint_id, fresh);
    return jsonb_build_object(
        'endpoint_id', rotate_webhook_secret.endpoint_id, 'secret', fresh,
        'previous_valid_until', now() + interval '24 hours'
    );
end
$$;
revoke execute on function cfg.rotate_webhook_secret(uuid) from public, anon;
grant execute on function cfg.rotate_webhook_secret(uuid) to authenticated, service_role;

-- Enables or disables an endpoint. Disabling cancels its pending deliveries.
create or replace function cfg.set_webhook_endpoint_enabled(endpoint_id uuid, enabled boolean)
returns cfg.webhook_endpoints
language plpgsql
set search_path = ''
as $$
declare
    changed cfg.webhook_endpoints;
begin
    perform cfg_private.webhook_endpoint_org(set_webhook_endpoint_enabled.endpoint_id, 'managing webhooks');
    if enabled is null then
        raise exception 'enabled must be true or false'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'enabled')::text;
    end if;
    update cfg.webhook_endpoints as e set enabled = set_webhook_endpoint_enabled.enabled
    where e.id = set_webhook_endpoint_enabled.endpoint_id
    returning * into changed;
    return changed;
end
$$;
revoke execute on function cfg.set_webhook_endpoint_enabled(uuid, boolean) from public, anon;
grant execute on function cfg.set_webhook_endpoint_enabled(uuid, boolean) to authenticated, service_role;

create or replace function cfg.delete_webhook_endpoint(endpoint_id uuid)
returns cfg.webhook_endpoints
language plpgsql
set search_path = ''
as $$
declare
    deleted cfg.webhook_endpoints;
begin
    perform cfg_private.webhook_endpoint_org(delete_webhook_endpoint.endpoint_id, 'managing webhooks');
    delete from cfg.webhook_endpoints as e where e.id = delete_webhook_endpoint.endpoint_id
    returning * into deleted;
    return deleted;
end
$$;
revoke execute on function cfg.delete_webhook_endpoint(uuid) from public, anon;
grant execute on function cfg.delete_webhook_endpoint(uuid) to authenticated, service_role;

-- What the delivery log shows: one delivery (no secrets, no body).
create or replace function cfg_private.require_enabled_endpoint(endpoint_id uuid)
returns void
language plpgsql stable
set search_path = ''
as $$
begin
    if exists (select 1 from cfg.webhook_endpoints as e where e.id = endpoint_id and not e.enabled) then
        raise exception 'the webhook endpoint is disabled; enable it first'
            using errcode = 'PT409', detail = jsonb_build_object('endpoint_id', endpoint_id)::text;
    end if;
end
$$;
revoke execute on function cfg_private.require_enabled_endpoint(uuid) from public, anon;
grant execute on function cfg_private.require_enabled_endpoint(uuid) to authenticated, service_role;

-- Sends one finished delivery again now, with a fresh retry schedule.
-- security definer: the queue lives in cfg_private; admin is checked here.
create or replace function cfg.retry_webhook_delivery(delivery_id bigint)
returns table (id bigint, endpoint_id uuid, status text, next_attempt_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg_private.webhook_deliveries;
begin
    select * into target from cfg_private.webhook_deliveries as d where d.id = retry_webhook_delivery.delivery_id;
    if target.id is null then
        raise exception 'webhook delivery not found'
            using errcode = 'PT404', detail = jsonb_build_object('delivery_id', delivery_id)::text;
    end if;
    perform cfg_private.webhook_endpoint_org(target.endpoint_id, 'retrying webhook deliveries');
    perform cfg_private.require_enabled_endpoint(target.endpoint_id);
    if target.status = 'pending' then
        raise exception 'the delivery is already pending'
            using errcode = 'PT409', detail = jsonb_build_object('delivery_id', delivery_id)::text;
    end if;
    perform pg_notify('cfgctl_webhooks', '');
    return query
    update cfg_private.webhook_deliveries as d
    set status = 'pending', run_attempts = 0, next_attempt_at = now(), completed_at = null, updated_at = now()
    where d.id = target.id
    returning d.id, d.endpoint_id, d.status, d.next_attempt_at;
end
$$;
revoke execute on function cfg.retry_webhook_delivery(bigint) from public, anon;
grant execute on function cfg.retry_webhook_delivery(bigint) to authenticated, service_role;

-- Sends every failed (or cancelled) delivery of an endpoint created since `since`
-- again now. Returns how many. security definer: as above.
create or replace function cfg.retry_failed_webhook_deliveries(endpoint_id uuid, since timestamptz)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    retried integer;
begin
    perform cfg_private.webhook_endpoint_org(retry_failed_webhook_deliveries.endpoint_id, 'retrying webhook deliveries');
    if since is null then
        raise exception 'since is required: retry failed deliveries created since when?'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'since')::text;
    end if;
    perform cfg_private.require_enabled_endpoint(retry_failed_webhook_deliveries.endpoint_id);
    update cfg_private.webhook_deliveries as d
    set status = 'pending', run_attempts = 0, next_attempt_at = now(), completed_at = null, updated_at = now()
    where d.endpoint_id = retry_failed_webhook_deliveries.endpoint_id
        and d.status in ('failed', 'cancelled')
        and d.created_at >= since;
    get diagnostics retried = row_count;
    perform pg_notify('cfgctl_webhooks', '');
    return retried;
end
$$;
revoke execute on function cfg.retry_failed_webhook_deliveries(uuid, timestamptz) from public, anon;
grant execute on function cfg.retry_failed_webhook_deliveries(uuid, timestamptz) to authenticated, service_role;

-- Sends a webhook.test event to one endpoint. Returns the delivery id.
-- security definer: the event and the delivery are written to cfg_private.
create or replace function cfg.send_test_webhook(endpoint_id uuid, payload jsonb default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    org uuid := cfg_private.webhook_endpoint_org(send_test_webhook.endpoint_id, 'sending test webhooks');
    event_id bigint;
    created bigint;
begin
    perform cfg_private.require_enabled_endpoint(send_test_webhook.endpoint_id);
    if octet_length(payload::text) > cfg_private.webhook_max_payload_bytes() then
        raise exception 'test payload is larger than % bytes', cfg_private.webhook_max_payload_bytes()
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'payload', 'bytes', octet_length(payload::text))::text;
    end if;
    event_id := cfg_private.emit_event(
        org, 'webhook.test', 'webhook_endpoint', send_test_webhook.endpoint_id, null,
        jsonb_build_object('endpoint_id', send_test_webhook.endpoint_id)
        || coalesce(payload, jsonb_build_object('message', 'cfgctl test event'))
    );
    insert into cfg_private.webhook_deliveries (org_id, endpoint_id, event_id, event_type)
    values (org, send_test_webhook.endpoint_id, event_id, 'webhook.test')
    returning id into created;
    return created;
end
$$;
revoke execute on function cfg.send_test_webhook(uuid, jsonb) from public, anon;
grant execute on function cfg.send_test_webhook(uuid, jsonb) to authenticated, service_role;

-- The deliveries of an endpoint, newest first. security definer: the queue is in cfg_private.
create or replace function cfg.webhook_deliveries(
    endpoint_id uuid,
    with_status text default null,
    since timestamptz default null,
    max_rows integer default 100
)
returns table (
    id bigint, event_id bigint, event_type text, status text, attempt_count integer,
    next_attempt_at timestamptz, last_attempt_at timestamptz, last_status_code integer, last_error text,
    created_at timestamptz, completed_at timestamptz
)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform cfg_private.webhook_endpoint_org(webhook_deliveries.endpoint_id, 'reading webhook deliveries');
    if max_rows is null or max_rows not between 1 and 10000 then
        raise exception 'max_rows must be between 1 and 10000'
            using errcode = 'PT422', detail = jsonb_build_object('max_rows', max_rows)::text;
    end if;
    if with_status is not null and with_status not in ('pending', 'succeeded', 'failed', 'cancelled') then
        raise exception 'unknown delivery status %: use pending, succeeded, failed or cancelled',
            quote_literal(with_status)
            using errcode = 'PT422', detail = jsonb_build_object('field', 'with_status', 'value', with_status)::text;
    end if;
    return query
    select d.id, d.event_id, d.event_type, d.status, d.attempt_count, d.next_attempt_at,
        d.last_attempt_at, d.last_status_code, d.last_error, d.created_at, d.completed_at
    from cfg_private.webhook_deliveries as d
    where d.endpoint_id = webhook_deliveries.endpoint_id
        and (with_status is null or d.status = with_status)
        and (since is null or d.created_at >= since)
    order by d.id desc
    limit max_rows;
end
$$;
revoke execute on function cfg.webhook_deliveries(uuid, text, timestamptz, integer) from public, anon;
grant execute on function cfg.webhook_deliveries(uuid, text, timestamptz, integer) to authenticated, service_role;

-- Every attempt of one delivery. security definer: the log is in cfg_private.
create or replace function cfg.webhook_delivery_attempts(delivery_id bigint)
returns table (
    attempt integer, created_at timestamptz, status_code integer, latency_ms integer, error text,
    response_excerpt text, worker text
)
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    endpoint uuid;
begin
    select d.endpoint_id into endpoint from cfg_private.webhook_deliveries as d
    where d.id = webhook_delivery_attempts.delivery_id;
    if endpoint is null then
        raise exception 'webhook delivery not found'
            using errcode = 'PT404', detail = jsonb_build_object('delivery_id', delivery_id)::text;
    end if;
    perform cfg_private.webhook_endpoint_org(endpoint, 'reading webhook deliveries');
    return query
    select a.attempt, a.created_at, a.status_code, a.latency_ms, a.error, a.response_excerpt, a.worker
    from cfg_private.webhook_attempts as a
    where a.delivery_id = webhook_delivery_attempts.delivery_id
    order by a.attempt;
end
$$;
revoke execute on function cfg.webhook_delivery_attempts(bigint) from public, anon;
grant execute on function cfg.webhook_delivery_attempts(bigint) to authenticated, service_role;
