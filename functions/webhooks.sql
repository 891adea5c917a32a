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
            -- Members only (or the service, or a DBA without JWT): no probing of other orgs' lists.
            and (
                (select auth.role()) is null or (select auth.role()) = 'service_role'
                or h.org_id in (select cfg_private.orgs_with_role('viewer'))
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
-- URLs (Slack, Teams…) often carry a bearer token, so audit rows redact them. Only
-- admins read endpoints, allowlisted hosts and secrets, so only admins read their audit.
create or replace trigger audit after insert or update or delete on cfg.webhook_endpoints
for each row execute function cfg_private.audit_row('url', '@admin');

create or replace trigger touch_row before insert or update on cfg.webhook_allowed_hosts
for each row execute function cfg_private.touch_row();
create or replace trigger audit after insert or update or delete on cfg.webhook_allowed_hosts
for each row execute function cfg_private.audit_row('@admin');

create or replace trigger touch_row before insert or update on cfg_private.webhook_secrets
for each row execute function cfg_private.touch_row();
create or replace trigger audit after insert or update or delete on cfg_private.webhook_secrets
for each row execute function cfg_private.audit_row('secret', '@admin');

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
