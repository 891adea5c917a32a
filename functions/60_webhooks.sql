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

-- =============================================================================
-- SSRF policy. The database (when an endpoint is written) and the dispatcher (at
-- every connection, sync_service/dispatcher.py SsrfPolicy) give the same verdict:
-- the dispatcher reads both lists below at start, and webhook_refusal() is mirrored
-- line for line in Python (tests/test_webhooks_ssrf.py holds one table of host forms
-- and asserts it against both).
-- =============================================================================

-- Loopback, private, link-local (169.254.169.254 metadata), CGNAT (100.100.100.200
-- metadata), unique-local (fd00:ec2::254 metadata), multicast and reserved ranges,
-- and every IPv6 form that embeds an IPv4 address (compatible ::/96, mapped
-- ::ffff:0:0/96, translated ::ffff:0:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48,
-- 6to4 2002::/16, Teredo 2001::/32): a connection to one of them can end at the
-- IPv4 address inside.
create or replace function cfg_private.webhook_blocked_networks()
returns cidr []
language sql immutable
set search_path = ''
as $$
    select array[
        '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16',
        '172.16.0.0/12', '192.0.0.0/24', '192.168.0.0/16', '198.18.0.0/15', '224.0.0.0/4',
        '240.0.0.0/4', '::/96', '::1/128', '::ffff:0:0/96', '::ffff:0:0:0/96', '64:ff9b::/96',
        '64:ff9b:1::/48', '2001::/32', '2002::/16', 'fc00::/7', 'fe80::/10', 'ff00::/8'
    ]::cidr []
$$;
revoke execute on function cfg_private.webhook_blocked_networks() from public, anon;
grant execute on function cfg_private.webhook_blocked_networks() to authenticated, service_role;

-- Host names that are local by definition: an exact name, or a suffix when it starts with a dot.
create or replace function cfg_private.webhook_blocked_names()
returns text []
language sql immutable
set search_path = ''
as $$ select array['localhost', 'metadata', '.localhost', '.internal', '.local'] $$;
revoke execute on function cfg_private.webhook_blocked_names() from public, anon;
grant execute on function cfg_private.webhook_blocked_names() to authenticated, service_role;

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

-- The address a (lower-case, trailing-dot-free) host names literally, or null. Only
-- canonical forms: dotted-quad IPv4 without leading zeros (inet reads 0177.0.0.1 as
-- 177.0.0.1 where the OS resolver reads 127.0.0.1), IPv6 with an optional dotted-quad tail.
create or replace function cfg_private.webhook_host_literal(host text)
returns inet
language sql immutable
set search_path = ''
as $$
    select case
        when host ~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
            then host::inet
        when host ~ '^[0-9a-f:]*:[0-9a-f:]*$'
            or host ~ '^[0-9a-f:]*:(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
            then cfg_private.try_inet(host)
    end
$$;
revoke execute on function cfg_private.webhook_host_literal(text) from public, anon;
grant execute on function cfg_private.webhook_host_literal(text) to authenticated, service_role;

-- Whether an allowlist (host names, IP addresses, CIDR networks) admits host (normalised)
-- or the address it is reached at.
create or replace function cfg_private.webhook_allowlist_admits(allowed text [], host text, address inet)
returns boolean
language sql immutable
set search_path = ''
as $$
    select exists (
        select 1
        from unnest(allowed) as e (entry)
        where rtrim(lower(e.entry), '.') = host
            or address <<= (
                select cfg_private.try_inet(e.entry)
                where cfg_private.webhook_host_literal(split_part(e.entry, '/', 1)) is not null
                    and (e.entry !~ '/' or e.entry ~ '^[^/]*/[0-9]{1,3}$')
            )
    )
$$;
revoke execute on function cfg_private.webhook_allowlist_admits(text [], text, inet) from public, anon;
grant execute on function cfg_private.webhook_allowlist_admits(text [], text, inet) to authenticated, service_role;

-- Why host may not be called (at address, when known), or null when it may:
-- 'non_ascii', 'invalid_host', 'blocked_address', 'numeric_host' or 'local_name'.
-- Trailing dots are ignored ("localhost." is localhost). An allowlisted host or
-- address passes the last three. Mirrored by SsrfPolicy.refusal in the dispatcher.
create or replace function cfg_private.webhook_refusal(host text, address inet, allowed text [])
returns text
language plpgsql immutable
set search_path = ''
as $$
declare
    name text := rtrim(lower(host), '.');
    literal inet;
    names text [] := cfg_private.webhook_blocked_names();
begin
    -- Non-ASCII names are IDNA-mapped before resolution (full-width digits become ASCII ones).
    if octet_length(host) <> length(host) then
        return 'non_ascii';
    end if;
    if name is null or name !~ '^([a-z0-9_-]+(\.[a-z0-9_-]+)*|[0-9a-f:.]*:[0-9a-f:.]*)$' then
        return 'invalid_host';
    end if;
    literal := cfg_private.webhook_host_literal(name);
    if literal is null and name ~ ':' then
        return 'invalid_host';
    end if;
    address := coalesce(address, literal);
    if cfg_private.webhook_allowlist_admits(allowed, name, address) then
        return null;
    end if;
    if address <<= any(cfg_private.webhook_blocked_networks()) then
        return 'blocked_address';
    end if;
    -- A name ending in a number is an address to the OS resolver (2130706433, 0x7f.1, 127.1).
    if literal is null and name ~ '(^|\.)(0x[0-9a-f]*|[0-9]+)$' then
        return 'numeric_host';
    end if;
    if name = any(names) or exists (
        select 1 from unnest(names) as n (suffix) where n.suffix like '.%' and right(name, length(n.suffix)) = n.suffix
    ) then
        return 'local_name';
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.webhook_refusal(text, inet, text []) from public, anon;
grant execute on function cfg_private.webhook_refusal(text, inet, text []) to authenticated, service_role;

-- The org's allowlist (cfg.webhook_allowed_hosts). security definer: the endpoint
-- trigger runs it for whoever writes an endpoint, and must see every entry of the
-- org; members (or the service role) only, so no one probes another org's list.
create or replace function cfg_private.webhook_allowlist(org_id uuid)
returns text []
language sql stable security definer
set search_path = ''
as $$
    select coalesce(array_agg(h.host order by h.host), '{}')
    from cfg.webhook_allowed_hosts as h
    where h.org_id = webhook_allowlist.org_id
        -- The role the transaction runs as, never the (client-settable) role claim.
        and (
            (select cfg_private.is_service())
            or h.org_id in (select cfg_private.orgs_with_role('viewer'))
        )
$$;
revoke execute on function cfg_private.webhook_allowlist(uuid) from public, anon;
grant execute on function cfg_private.webhook_allowlist(uuid) to authenticated, service_role;

-- Whether the org's allowlist admits host (a name or a literal address).
create or replace function cfg_private.webhook_host_allowed(org_id uuid, host text)
returns boolean
language sql stable
set search_path = ''
as $$
    select cfg_private.webhook_allowlist_admits(
        cfg_private.webhook_allowlist(webhook_host_allowed.org_id),
        rtrim(lower(webhook_host_allowed.host), '.'),
        cfg_private.webhook_host_literal(rtrim(lower(webhook_host_allowed.host), '.'))
    )
$$;
revoke execute on function cfg_private.webhook_host_allowed(uuid, text) from public, anon;
grant execute on function cfg_private.webhook_host_allowed(uuid, text) to authenticated, service_role;

-- Raises PT422 unless url is a well-formed https URL to a public host (or an
-- allowlisted one). Host names are resolved, and every address checked, by the
-- dispatcher at each connection.
create or replace function cfg_private.check_webhook_url(org_id uuid, url text)
returns void
language plpgsql stable
set search_path = ''
as $$
declare
    parts text [];
    host text;
    allowed text [];
    refusal text;
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
    allowed := cfg_private.webhook_allowlist(check_webhook_url.org_id);
    refusal := cfg_private.webhook_refusal(host, null, allowed);
    if refusal in ('non_ascii', 'invalid_host') then
        raise exception 'invalid webhook URL host %: use an ASCII host name (the xn-- form of an international name) or an IP address',
            quote_literal(left(host, 200))
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'url', 'host', left(host, 200), 'reason', refusal)::text;
    elsif refusal is not null then
        raise exception 'refused webhook URL: % is a loopback, private, link-local or cloud-metadata address', host
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'url', 'host', host, 'reason', 'ssrf', 'rule', refusal)::text,
                  hint = 'Use a public host, or ask the operator to allowlist this host for your organisation.';
    end if;
    if parts[1] <> 'https' and not cfg_private.webhook_allowlist_admits(
        allowed, rtrim(host, '.'), cfg_private.webhook_host_literal(rtrim(host, '.'))
    ) then
        raise exception 'webhook URLs must use https (plain http only for allowlisted hosts)'
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'url', 'scheme', parts[1])::text;
    end if;
end
$$;
revoke execute on function cfg_private.check_webhook_url(uuid, text) from public, anon;
grant execute on function cfg_private.check_webhook_url(uuid, text) to authenticated, service_role;

-- The event types endpoints can subscribe to (any signed-in user: the catalogue is
-- not tenant data). security definer: the list lives in cfg_private, which API roles
-- cannot read; EXECUTE is granted to signed-in roles only, which is the whole check.
create or replace function cfg_private.webhook_event_type_list()
returns table (type text, description text)
language sql stable security definer
set search_path = ''
as $$
    select t.type, t.description from cfg_private.event_types as t order by t.type
$$;
revoke execute on function cfg_private.webhook_event_type_list() from public, anon;
grant execute on function cfg_private.webhook_event_type_list() to authenticated, service_role;

create or replace function cfg.webhook_event_types()
returns table (type text, description text)
language sql stable
set search_path = ''
as $$
    select t.type, t.description from cfg_private.webhook_event_type_list() as t
$$;
revoke execute on function cfg.webhook_event_types() from public, anon;
grant execute on function cfg.webhook_event_types() to authenticated, service_role;

-- A new signing secret: whsec_ + base64 of 32 random bytes.
create or replace function cfg_private.new_webhook_secret()
returns text
language sql volatile
set search_path = ''
as $$ select 'whsec_' || encode(extensions.gen_random_bytes(32), 'base64') $$;
-- Called only by the security definer functions below (as their owner).
revoke execute on function cfg_private.new_webhook_secret() from public, anon, authenticated, service_role;

-- =============================================================================
-- Keeps a signing secret of endpoint_id in Vault; returns its Vault id.
-- security definer: Vault is for cfgctl's definer code only.
create or replace function cfg_private.store_webhook_secret(endpoint_id uuid, secret text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- Standard Webhooks format: whsec_ + base64 of 24 to 64 random bytes.
    if secret !~ '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$' then
        raise exception 'a webhook signing secret is whsec_ and base64 of 24 to 64 bytes'
            using errcode = 'PT422';
    end if;
    return vault.create_secret(secret, null, 'cfgctl: a signing secret of webhook endpoint ' || endpoint_id);
end
$$;
revoke execute on function cfg_private.store_webhook_secret(uuid, text) from public, anon, authenticated, service_role;

-- The signing secrets with these Vault ids, for the dispatcher (which caches them by
-- id: they never change). security definer: Vault is read by cfgctl's definer code
-- only; the service role alone may ask, and only for webhook signing secrets.
create or replace function cfg_private.webhook_signing_secrets(secret_ids uuid [])
returns table (secret_id uuid, secret text)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    if not cfg_private.is_service() then
        raise exception 'only the sync service reads webhook signing secrets' using errcode = '42501';
    end if;
    return query
    select sv.secret_id, sv.value
    from cfg_private.secret_values(array(
        select w.secret_id from cfg_private.webhook_secrets as w where w.secret_id = any(secret_ids)
    )) as sv;
end
$$;
revoke execute on function cfg_private.webhook_signing_secrets(uuid []) from public, anon, authenticated;
grant execute on function cfg_private.webhook_signing_secrets(uuid []) to service_role;

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
-- Trigger functions: fired by the trigger whoever writes; nobody may attach them elsewhere.
revoke execute on function cfg_private.check_webhook_endpoint() from public, anon, authenticated, service_role;

-- security definer: secrets, health and the queue live in cfg_private, which the
-- admin editing the endpoint cannot write. Executable by nobody: attached to a temp
-- table it would cancel any endpoint's deliveries.
create or replace function cfg_private.webhook_endpoint_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        insert into cfg_private.webhook_secrets (org_id, endpoint_id, secret_id)
        values (new.org_id, new.id, cfg_private.store_webhook_secret(new.id, cfg_private.new_webhook_secret()));
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
revoke execute on function cfg_private.webhook_endpoint_changed() from public, anon, authenticated, service_role;

-- The current signing secret of an endpoint, handed out once: the first call marks it
-- revealed, later calls return null (the secret is shown when the endpoint is created
-- and after each rotation, never again). security definer: secrets live in cfg_private;
-- the caller must be an admin of the endpoint's org (PT404 / PT403).
create or replace function cfg_private.reveal_webhook_secret(endpoint_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    revealed_id uuid;
begin
    perform cfg_private.webhook_endpoint_org(reveal_webhook_secret.endpoint_id, 'managing webhooks');
    update cfg_private.webhook_secrets as s set revealed_at = now()
    where s.endpoint_id = reveal_webhook_secret.endpoint_id and s.expires_at is null and s.revealed_at is null
    returning s.secret_id into revealed_id;
    return (select sv.value from cfg_private.secret_values(array[revealed_id]) as sv);
end
$$;
revoke execute on function cfg_private.reveal_webhook_secret(uuid) from public, anon;
grant execute on function cfg_private.reveal_webhook_secret(uuid) to authenticated, service_role;

-- URLs (Slack, Teams…) often carry a bearer token, so audit rows redact them. Only
-- admins read endpoints, allowlisted hosts and secrets, so only admins read their audit.
select cfg_private.register_table('cfg.webhook_endpoints', audit_arguments => '{url,@admin}', stamp_author => true);
select cfg_private.register_table('cfg.webhook_allowed_hosts', audit_arguments => '{@admin}');
select cfg_private.register_table('cfg_private.webhook_secrets', audit_arguments => '{secret_id,@admin}');
create or replace trigger check_endpoint before insert or update on cfg.webhook_endpoints
for each row execute function cfg_private.check_webhook_endpoint();
create or replace trigger endpoint_changed after insert or update on cfg.webhook_endpoints
for each row execute function cfg_private.webhook_endpoint_changed();

-- =============================================================================
-- Fan-out: each outbox event becomes one delivery per matching enabled
-- endpoint, in the event's own transaction (so a committed event always has
-- its deliveries, and NOTIFY on commit finds them). Statement-level: the events a
-- statement appended (thousands in a bulk change) fan out in one INSERT.
-- security definer: events are appended on behalf of API users, who cannot
-- read endpoints of their org or write the queue. Executable by nobody: attached
-- to a temp table it would forge another org's events into deliveries.
-- =============================================================================

create or replace function cfg_private.fan_out_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into cfg_private.webhook_deliveries (org_id, endpoint_id, event_id, event_type)
    select n.org_id, e.id, n.id, n.type
    from new_events as n
    join cfg.webhook_endpoints as e on e.org_id = n.org_id
    where e.enabled
        -- Test events go only to the endpoint they were sent to (cfg.send_test_webhook).
        and n.type <> 'webhook.test'
        and (cardinality(e.event_types) = 0 or n.type = any(e.event_types))
        and (e.environment_id is null or e.environment_id = n.environment_id)
        and (e.automation_id is null or e.automation_id = n.automation_id)
        -- An endpoint never hears about its own failures (no feedback loop).
        and not (n.type like 'webhook.%' and e.id::text = n.payload ->> 'endpoint_id')
    order by n.id, e.id;
    return null;
end
$$;
revoke execute on function cfg_private.fan_out_event() from public, anon, authenticated, service_role;

create or replace trigger fan_out after insert on cfg_private.events
referencing new table as new_events
for each statement execute function cfg_private.fan_out_event();
