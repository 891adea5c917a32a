-- Webhooks, the RPCs admins call (supabase.rpc / cfgctl webhook). See functions/60_webhooks.sql.

-- =============================================================================
-- RPCs for admins (and the service role)
-- =============================================================================

-- Creates an endpoint (under the caller's RLS; the endpoint trigger validates it and
-- creates its secret) and returns it with its signing secret, shown this once.
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
    return to_jsonb(created) || jsonb_build_object('secret', cfg_private.reveal_webhook_secret(created.id));
end
$$;
revoke execute on function cfg.create_webhook_endpoint(uuid, text, text, text [], uuid, uuid) from public, anon;
grant execute on function cfg.create_webhook_endpoint(uuid, text, text, text [], uuid, uuid)
to authenticated, service_role;

-- Replaces the signing secret; the previous one stays valid for 24 hours (the
-- dispatcher signs with both meanwhile). Returns the new secret, shown this once.
-- security definer: secrets live in cfg_private; admin is checked here.
create or replace function cfg_private.replace_webhook_secret(endpoint_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    org uuid := cfg_private.webhook_endpoint_org(replace_webhook_secret.endpoint_id, 'rotating webhook secrets');
    fresh text := cfg_private.new_webhook_secret();
begin
    -- Only the secret being replaced keeps a grace period; older ones end now.
    update cfg_private.webhook_secrets as s set expires_at = now()
    where s.endpoint_id = replace_webhook_secret.endpoint_id and s.expires_at > now();
    update cfg_private.webhook_secrets as s set expires_at = now() + interval '24 hours'
    where s.endpoint_id = replace_webhook_secret.endpoint_id and s.expires_at is null;
    -- Secrets that expired are of no use any more: they go (with their Vault rows).
    delete from cfg_private.webhook_secrets as s
    where s.endpoint_id = replace_webhook_secret.endpoint_id and s.expires_at <= now();
    insert into cfg_private.webhook_secrets (org_id, endpoint_id, secret_id, revealed_at)
    values (org, replace_webhook_secret.endpoint_id,
            cfg_private.store_webhook_secret(replace_webhook_secret.endpoint_id, fresh), now());
    return jsonb_build_object(
        'endpoint_id', replace_webhook_secret.endpoint_id, 'secret', fresh,
        'previous_valid_until', now() + interval '24 hours'
    );
end
$$;
revoke execute on function cfg_private.replace_webhook_secret(uuid) from public, anon;
grant execute on function cfg_private.replace_webhook_secret(uuid) to authenticated, service_role;

create or replace function cfg.rotate_webhook_secret(endpoint_id uuid)
returns jsonb
language sql
set search_path = ''
as $$
    select cfg_private.replace_webhook_secret(rotate_webhook_secret.endpoint_id)
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

-- PT409 when the endpoint is disabled (nothing is sent to it).
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

-- Puts deliveries back in the queue, due now with a fresh retry schedule: one finished
-- delivery (delivery_id), or every failed or cancelled one of endpoint_id created since
-- `since`. PT409 for a disabled endpoint or a delivery already pending. Returns the
-- ids of the requeued deliveries (now pending, due now()) and wakes the dispatcher.
-- security definer: the queue lives in cfg_private; admin is checked here.
create or replace function cfg_private.requeue_webhook_deliveries(
    endpoint_id uuid, delivery_id bigint, since timestamptz
)
returns setof bigint
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.webhook_endpoint_org(requeue_webhook_deliveries.endpoint_id, 'retrying webhook deliveries');
    perform cfg_private.require_enabled_endpoint(requeue_webhook_deliveries.endpoint_id);
    if requeue_webhook_deliveries.delivery_id is not null and exists (
        select 1 from cfg_private.webhook_deliveries as d
        where d.id = requeue_webhook_deliveries.delivery_id
            and d.endpoint_id = requeue_webhook_deliveries.endpoint_id and d.status = 'pending'
    ) then
        raise exception 'the delivery is already pending'
            using errcode = 'PT409', detail = jsonb_build_object('delivery_id', delivery_id)::text;
    end if;
    perform pg_notify('cfgctl_webhooks', '');
    return query
    update cfg_private.webhook_deliveries as d
    set status = 'pending', run_attempts = 0, next_attempt_at = now(), completed_at = null, updated_at = now()
    where d.endpoint_id = requeue_webhook_deliveries.endpoint_id
        and case
            when requeue_webhook_deliveries.delivery_id is not null
                then d.id = requeue_webhook_deliveries.delivery_id
            else d.status in ('failed', 'cancelled') and d.created_at >= requeue_webhook_deliveries.since
        end
    returning d.id;
end
$$;
revoke execute on function cfg_private.requeue_webhook_deliveries(uuid, bigint, timestamptz) from public, anon;
grant execute on function cfg_private.requeue_webhook_deliveries(uuid, bigint, timestamptz)
to authenticated, service_role;

-- Sends one finished delivery again now, with a fresh retry schedule.
create or replace function cfg.retry_webhook_delivery(delivery_id bigint)
returns table (id bigint, endpoint_id uuid, status text, next_attempt_at timestamptz)
language plpgsql
set search_path = ''
as $$
declare
    endpoint uuid := cfg_private.webhook_delivery_endpoint(retry_webhook_delivery.delivery_id, 'retrying webhook deliveries');
begin
    return query
    select r.id, endpoint, 'pending'::text, now()
    from cfg_private.requeue_webhook_deliveries(endpoint, retry_webhook_delivery.delivery_id, null) as r (id);
end
$$;
revoke execute on function cfg.retry_webhook_delivery(bigint) from public, anon;
grant execute on function cfg.retry_webhook_delivery(bigint) to authenticated, service_role;

-- Sends every failed (or cancelled) delivery of an endpoint created since `since`
-- again now. Returns how many.
create or replace function cfg.retry_failed_webhook_deliveries(endpoint_id uuid, since timestamptz)
returns integer
language plpgsql
set search_path = ''
as $$
begin
    perform cfg_private.webhook_endpoint_org(retry_failed_webhook_deliveries.endpoint_id, 'retrying webhook deliveries');
    if since is null then
        raise exception 'since is required: retry failed deliveries created since when?'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'since')::text;
    end if;
    return (
        select count(*)::integer
        from cfg_private.requeue_webhook_deliveries(retry_failed_webhook_deliveries.endpoint_id, null, since)
    );
end
$$;
revoke execute on function cfg.retry_failed_webhook_deliveries(uuid, timestamptz) from public, anon;
grant execute on function cfg.retry_failed_webhook_deliveries(uuid, timestamptz) to authenticated, service_role;

-- Appends a webhook.test event and queues it for one endpoint only (PT409 when it is
-- disabled, PT422 for a payload over the size limit). Returns the delivery id.
-- security definer: the event and the delivery are written to cfg_private; admin is
-- checked here.
create or replace function cfg_private.queue_test_webhook(endpoint_id uuid, payload jsonb)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    org uuid := cfg_private.webhook_endpoint_org(queue_test_webhook.endpoint_id, 'sending test webhooks');
    event_id bigint;
    created bigint;
begin
    perform cfg_private.require_enabled_endpoint(queue_test_webhook.endpoint_id);
    if octet_length(payload::text) > cfg_private.webhook_max_payload_bytes() then
        raise exception 'test payload is larger than % bytes', cfg_private.webhook_max_payload_bytes()
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'payload', 'bytes', octet_length(payload::text))::text;
    end if;
    event_id := cfg_private.emit_event(
        org, 'webhook.test', 'webhook_endpoint', queue_test_webhook.endpoint_id, null,
        jsonb_build_object('endpoint_id', queue_test_webhook.endpoint_id)
        || coalesce(payload, jsonb_build_object('message', 'cfgctl test event'))
    );
    insert into cfg_private.webhook_deliveries (org_id, endpoint_id, event_id, event_type)
    values (org, queue_test_webhook.endpoint_id, event_id, 'webhook.test')
    returning id into created;
    return created;
end
$$;
revoke execute on function cfg_private.queue_test_webhook(uuid, jsonb) from public, anon;
grant execute on function cfg_private.queue_test_webhook(uuid, jsonb) to authenticated, service_role;

-- Sends a webhook.test event to one endpoint. Returns the delivery id.
create or replace function cfg.send_test_webhook(endpoint_id uuid, payload jsonb default null)
returns bigint
language sql
set search_path = ''
as $$
    select cfg_private.queue_test_webhook(send_test_webhook.endpoint_id, send_test_webhook.payload)
$$;
revoke execute on function cfg.send_test_webhook(uuid, jsonb) from public, anon;
grant execute on function cfg.send_test_webhook(uuid, jsonb) to authenticated, service_role;

-- The deliveries of an endpoint, newest first (no secrets, no body).
-- security definer: the queue is in cfg_private; admin is checked here.
create or replace function cfg_private.webhook_delivery_log(
    endpoint_id uuid, with_status text, since timestamptz, max_rows integer
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
    perform cfg_private.webhook_endpoint_org(webhook_delivery_log.endpoint_id, 'reading webhook deliveries');
    return query
    select d.id, d.event_id, d.event_type, d.status, d.attempt_count, d.next_attempt_at,
        d.last_attempt_at, d.last_status_code, d.last_error, d.created_at, d.completed_at
    from cfg_private.webhook_deliveries as d
    where d.endpoint_id = webhook_delivery_log.endpoint_id
        and (with_status is null or d.status = with_status)
        and (since is null or d.created_at >= since)
    order by d.id desc
    limit max_rows;
end
$$;
revoke execute on function cfg_private.webhook_delivery_log(uuid, text, timestamptz, integer) from public, anon;
grant execute on function cfg_private.webhook_delivery_log(uuid, text, timestamptz, integer)
to authenticated, service_role;

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
    select * from cfg_private.webhook_delivery_log(webhook_deliveries.endpoint_id, with_status, since, max_rows);
end
$$;
revoke execute on function cfg.webhook_deliveries(uuid, text, timestamptz, integer) from public, anon;
grant execute on function cfg.webhook_deliveries(uuid, text, timestamptz, integer) to authenticated, service_role;

-- Every attempt of one delivery. security definer: the log is in cfg_private; admin
-- is checked here.
create or replace function cfg_private.webhook_attempt_log(delivery_id bigint)
returns table (
    attempt integer, created_at timestamptz, status_code integer, latency_ms integer, error text,
    response_excerpt text, worker text
)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform cfg_private.webhook_delivery_endpoint(webhook_attempt_log.delivery_id, 'reading webhook deliveries');
    return query
    select a.attempt, a.created_at, a.status_code, a.latency_ms, a.error, a.response_excerpt, a.worker
    from cfg_private.webhook_attempts as a
    where a.delivery_id = webhook_attempt_log.delivery_id
    order by a.attempt;
end
$$;
revoke execute on function cfg_private.webhook_attempt_log(bigint) from public, anon;
grant execute on function cfg_private.webhook_attempt_log(bigint) to authenticated, service_role;

create or replace function cfg.webhook_delivery_attempts(delivery_id bigint)
returns table (
    attempt integer, created_at timestamptz, status_code integer, latency_ms integer, error text,
    response_excerpt text, worker text
)
language sql stable
set search_path = ''
as $$
    select * from cfg_private.webhook_attempt_log(webhook_delivery_attempts.delivery_id)
$$;
revoke execute on function cfg.webhook_delivery_attempts(bigint) from public, anon;
grant execute on function cfg.webhook_delivery_attempts(bigint) to authenticated, service_role;

-- =============================================================================
-- Reading endpoints, and the host allowlist (cfg.webhook_allowed_hosts)
-- =============================================================================

-- The endpoints of an org, oldest first (their secrets live in cfg_private, never here).
-- security invoker: admins read them under RLS.
create or replace function cfg.list_webhook_endpoints(org_id uuid)
returns setof cfg.webhook_endpoints
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_webhook_endpoints.org_id, 'admin', 'managing webhooks');
    return query
    select * from cfg.webhook_endpoints as e
    where e.org_id = list_webhook_endpoints.org_id
    order by e.created_at, e.id;
end
$$;
revoke execute on function cfg.list_webhook_endpoints(uuid) from public, anon;
grant execute on function cfg.list_webhook_endpoints(uuid) to authenticated, service_role;

-- An allowlist entry in the form the SSRF guard compares (cfg_private.webhook_allowlist_admits,
-- SsrfPolicy.admits): a lower-case host name without its trailing dot, a canonical IP
-- address, or a CIDR network (host bits cleared). PT422 for anything else, names ending
-- in a number included (the OS resolver reads 127.1 as an address: write the address).
create or replace function cfg_private.webhook_allowlist_entry(host text)
returns text
language plpgsql immutable
set search_path = ''
as $$
declare
    -- A bracketed IPv6 address ([::1]) as URLs write it is the address.
    entry text := regexp_replace(rtrim(lower(btrim(host)), '.'), '^\[([0-9a-f:.]+)\]$', '\1');
    literal inet := cfg_private.webhook_host_literal(split_part(entry, '/', 1));
begin
    if entry ~ '/' then
        if entry ~ '^[^/]+/[0-9]{1,3}$' and literal is not null
            and split_part(entry, '/', 2)::integer <= (case family(literal) when 4 then 32 else 128 end) then
            return network(set_masklen(literal, split_part(entry, '/', 2)::integer))::text;
        end if;
    elsif literal is not null then
        return host(literal);
    elsif length(entry) <= 253 and entry ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$'
        and entry !~ '(^|\.)(0x[0-9a-f]*|[0-9]+)$' then
        return entry;
    end if;
    raise exception 'invalid webhook host %: use a host name, an IP address or a CIDR network (10.0.0.0/24)',
        coalesce(quote_literal(left(host, 100)), 'null')
        using errcode = 'PT422', detail = jsonb_build_object('field', 'host', 'value', left(host, 100))::text;
end
$$;
revoke execute on function cfg_private.webhook_allowlist_entry(text) from public, anon;
grant execute on function cfg_private.webhook_allowlist_entry(text) to authenticated, service_role;

-- The org's allowlist, by host. Its admins read it (and the operator).
create or replace function cfg.list_webhook_allowed_hosts(org_id uuid)
returns setof cfg.webhook_allowed_hosts
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_webhook_allowed_hosts.org_id, 'admin', 'reading the webhook host allowlist');
    return query
    select * from cfg.webhook_allowed_hosts as h
    where h.org_id = list_webhook_allowed_hosts.org_id
    order by h.host;
end
$$;
revoke execute on function cfg.list_webhook_allowed_hosts(uuid) from public, anon;
grant execute on function cfg.list_webhook_allowed_hosts(uuid) to authenticated, service_role;

-- Lets the org's webhooks reach host (a name, address or network) although it is private
-- or plain http. Idempotent: an entry already there is returned as it is.
create or replace function cfg.allow_webhook_host(org_id uuid, host text)
returns cfg.webhook_allowed_hosts
language plpgsql
set search_path = ''
as $$
declare
    entry text;
    found cfg.webhook_allowed_hosts;
begin
    perform cfg_private.require_operator(allow_webhook_host.org_id, 'changing the webhook host allowlist');
    entry := cfg_private.webhook_allowlist_entry(allow_webhook_host.host);
    insert into cfg.webhook_allowed_hosts as h (org_id, host)
    values (allow_webhook_host.org_id, entry)
    on conflict on constraint webhook_allowed_hosts_org_host_key do nothing
    returning * into found;
    if found.id is null then
        select * into found from cfg.webhook_allowed_hosts as h
        where h.org_id = allow_webhook_host.org_id and h.host = entry;
    end if;
    return found;
end
$$;
revoke execute on function cfg.allow_webhook_host(uuid, text) from public, anon;
grant execute on function cfg.allow_webhook_host(uuid, text) to authenticated, service_role;

-- Removes host from the org's allowlist and returns the entry; PT404 when it is not there.
create or replace function cfg.disallow_webhook_host(org_id uuid, host text)
returns cfg.webhook_allowed_hosts
language plpgsql
set search_path = ''
as $$
declare
    entry text;
    removed cfg.webhook_allowed_hosts;
begin
    perform cfg_private.require_operator(disallow_webhook_host.org_id, 'changing the webhook host allowlist');
    -- An entry exactly as written before entries were normalised (lower case only) goes too.
    delete from cfg.webhook_allowed_hosts as h
    where h.org_id = disallow_webhook_host.org_id and h.host = lower(btrim(disallow_webhook_host.host))
    returning * into removed;
    if removed.id is not null then
        return removed;
    end if;
    entry := cfg_private.webhook_allowlist_entry(disallow_webhook_host.host);
    delete from cfg.webhook_allowed_hosts as h
    where h.org_id = disallow_webhook_host.org_id and h.host = entry
    returning * into removed;
    if removed.id is null then
        raise exception 'host % is not on this organisation''s webhook allowlist', quote_literal(entry)
            using errcode = 'PT404',
                  detail = jsonb_build_object('org_id', org_id, 'host', entry)::text;
    end if;
    return removed;
end
$$;
revoke execute on function cfg.disallow_webhook_host(uuid, text) from public, anon;
grant execute on function cfg.disallow_webhook_host(uuid, text) to authenticated, service_role;
