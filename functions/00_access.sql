-- =============================================================================
-- The access module: every role check and "lookup or PT404" helper, in one place.
-- Every RPC starts with one call into it. Another org's id answers exactly like an
-- id that does not exist (PT404), before anything else is said; a role too low for
-- the action is PT403. service_role passes role checks, never existence checks.
-- =============================================================================

-- Orgs where the current user holds at least min_role. Policies call it as
-- `org_id in (select cfg_private.orgs_with_role('editor'))` so it runs once per
-- statement (an init plan), not once per row.
-- security definer: it reads cfg.org_members, whose own policies call it.
-- plpgsql: PostgreSQL 15 would plan a sql function's query on every call, that is
-- for every table of every statement under RLS (a query by index took four times
-- as long as it does with the plan cached).
create or replace function cfg_private.orgs_with_role(min_role cfg.org_role)
returns setof uuid
language plpgsql stable security definer
set search_path = ''
as $$
begin
    return query
    select m.org_id
    from cfg.org_members as m
    where m.user_id = (select auth.uid()) and m.role >= min_role;
end
$$;
revoke execute on function cfg_private.orgs_with_role(cfg.org_role) from public, anon;
grant execute on function cfg_private.orgs_with_role(cfg.org_role) to authenticated, service_role;

-- The current user's role in one org, or null. security definer for the same reason.
-- plpgsql: PostgreSQL 15 would plan a sql function's query on every call.
create or replace function cfg_private.org_role(org_id uuid)
returns cfg.org_role
language plpgsql stable security definer
set search_path = ''
as $$
begin
    return (
        select m.role
        from cfg.org_members as m
        where m.org_id = org_role.org_id and m.user_id = (select auth.uid())
    );
end
$$;
revoke execute on function cfg_private.org_role(uuid) from public, anon;
grant execute on function cfg_private.org_role(uuid) to authenticated, service_role;

-- True when acting with the service key: the role the transaction runs as (PostgREST
-- sets it from the verified JWT), also inside a security definer function, where
-- current_user is the owner. Not the role claim: a setting is cheaper to read than
-- claims are to parse, and it is what the database enforces.
create or replace function cfg_private.is_service()
returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
    return current_user = 'service_role' or current_setting('role', true) = 'service_role';
end
$$;
revoke execute on function cfg_private.is_service() from public, anon;
grant execute on function cfg_private.is_service() to authenticated, service_role;

-- Raise PT403 unless the caller holds min_role in org_id (service_role always passes).
-- Also PT404 when the caller cannot see the org at all, so ids of other orgs leak nothing.
create or replace function cfg_private.require_role(org_id uuid, min_role cfg.org_role, action text)
returns void
language plpgsql stable
set search_path = ''
as $$
declare
    actual cfg.org_role;
begin
    if cfg_private.is_service() then
        -- The service key skips the role check, not the existence check.
        if not exists (select 1 from cfg.orgs as o where o.id = require_role.org_id) then
            raise exception 'organisation not found'
                using errcode = 'PT404',
                      detail = jsonb_build_object('org_id', org_id)::text;
        end if;
        return;
    end if;
    actual := cfg_private.org_role(org_id);
    if actual is null then
        raise exception 'organisation not found'
            using errcode = 'PT404',
                  detail = jsonb_build_object('org_id', org_id)::text;
    end if;
    if actual < min_role then
        raise exception '% requires the % role; you are %', action, min_role, actual
            using errcode = 'PT403',
                  detail = jsonb_build_object(
                      'org_id', org_id, 'required_role', min_role, 'role', actual
                  )::text;
    end if;
end
$$;
revoke execute on function cfg_private.require_role(uuid, cfg.org_role, text) from public, anon;
grant execute on function cfg_private.require_role(uuid, cfg.org_role, text) to authenticated, service_role;

-- PT403 unless the caller is the operator (service role): an allowlist entry lets an
-- org's webhooks reach private networks, which only the operator may open.
create or replace function cfg_private.require_operator(org_id uuid, action text)
returns void
language plpgsql stable
set search_path = ''
as $$
begin
    -- PT404 first for an org the caller cannot see, like every RPC.
    perform cfg_private.require_role(require_operator.org_id, 'admin', action);
    if not cfg_private.is_service() then
        raise exception '% is for the operator (the service role): it lets webhooks reach private networks',
            action
            using errcode = 'PT403', detail = jsonb_build_object('org_id', org_id, 'required_role', 'service_role')::text;
    end if;
end
$$;
revoke execute on function cfg_private.require_operator(uuid, text) from public, anon;
grant execute on function cfg_private.require_operator(uuid, text) to authenticated, service_role;

-- The member row of (org_id, user_id) after checking the caller is an admin there.
create or replace function cfg_private.member_for_admin(org_id uuid, user_id uuid, action text)
returns cfg.org_members
language plpgsql
set search_path = ''
as $$
declare
    found cfg.org_members;
begin
    perform cfg_private.require_role(member_for_admin.org_id, 'admin', action);
    select * into found from cfg.org_members as m
    where m.org_id = member_for_admin.org_id and m.user_id = member_for_admin.user_id;
    if found.id is null then
        raise exception 'user is not a member of this organisation'
            using errcode = 'PT404',
                  detail = jsonb_build_object('org_id', org_id, 'user_id', user_id)::text;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.member_for_admin(uuid, uuid, text) from public, anon;
grant execute on function cfg_private.member_for_admin(uuid, uuid, text) to authenticated, service_role;

-- The automation, after checking the caller's role; locked against concurrent saves
-- when lock is true. PT404 for ids the caller cannot see (other orgs' included).
-- security definer: it locks the row whatever the caller's row-level rights.
create or replace function cfg_private.automation_for(
    automation_id uuid, min_role cfg.org_role, action text, lock boolean default false
)
returns cfg.automations
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.automations;
    caller_role cfg.org_role;
begin
    -- Taking the save lock is an editor's act: a viewer must not be able to hold up saves.
    if lock and min_role < 'editor' then
        min_role := 'editor';
    end if;
    select * into found from cfg.automations as a where a.id = automation_for.automation_id;
    -- The service key passes; anyone else needs a role in the automation's org.
    if found.id is not null and not cfg_private.is_service() then
        caller_role := cfg_private.org_role(found.org_id);
        if caller_role is null then
            found := null;
        elsif caller_role < min_role then
            perform cfg_private.require_role(found.org_id, min_role, action);  -- raises PT403
        end if;
    end if;
    if found.id is null then
        raise exception 'automation not found'
            using errcode = 'PT404',
                  detail = jsonb_build_object('automation_id', automation_id)::text;
    end if;
    if lock then
        -- Serialises saves, rollbacks and promotions of one automation. NO KEY UPDATE
        -- does not block inserts of rows that reference the automation.
        select * into found from cfg.automations as a where a.id = found.id for no key update;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.automation_for(uuid, cfg.org_role, text, boolean) from public, anon;
grant execute on function cfg_private.automation_for(uuid, cfg.org_role, text, boolean) to authenticated, service_role;

-- An environment of org_id by slug; PT404 names the ones that exist. Another org's
-- environment answers exactly like one that does not exist (no list either).
-- security invoker: members read their org's environments under RLS.
create or replace function cfg_private.environment_by_slug(org_id uuid, slug text)
returns cfg.environments
language plpgsql stable
set search_path = ''
as $$
declare
    visible boolean := cfg_private.is_service() or cfg_private.org_role(environment_by_slug.org_id) is not null;
    found cfg.environments;
begin
    if visible then
        select * into found from cfg.environments as e
        where e.org_id = environment_by_slug.org_id and e.slug = environment_by_slug.slug;
    end if;
    if found.id is null then
        raise exception 'environment % does not exist', coalesce(quote_literal(slug), 'null')
            using errcode = 'PT404',
                  detail = jsonb_build_object(
                      'environment', slug,
                      'available', case when visible then (
                          select jsonb_agg(e.slug order by e.position)
                          from cfg.environments as e where e.org_id = environment_by_slug.org_id
                      ) end
                  )::text;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.environment_by_slug(uuid, text) from public, anon;
grant execute on function cfg_private.environment_by_slug(uuid, text) to authenticated, service_role;

-- The check of every lookup of a row that belongs to an org (a backend, a binding, a
-- template, a rule…), given the row's org_id (null: no such row): PT404 "<thing> not
-- found" with detail {id_key: id} unless the caller may see that org, so another org's
-- row answers exactly like a missing one; then the caller's role, as require_role.
create or replace function cfg_private.require_role_on(
    org_id uuid, min_role cfg.org_role, action text, thing text, id_key text, id uuid
)
returns void
language plpgsql stable
set search_path = ''
as $$
begin
    if org_id is null or (not cfg_private.is_service() and cfg_private.org_role(org_id) is null) then
        raise exception '% not found', thing
            using errcode = 'PT404', detail = jsonb_build_object(id_key, id)::text;
    end if;
    perform cfg_private.require_role(org_id, min_role, action);
end
$$;
revoke execute on function cfg_private.require_role_on(uuid, cfg.org_role, text, text, text, uuid) from public, anon;
grant execute on function cfg_private.require_role_on(uuid, cfg.org_role, text, text, text, uuid)
to authenticated, service_role;

-- True when the caller may act as an admin of org_id (service_role included).
create or replace function cfg_private.is_admin_of(org_id uuid)
returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
    return cfg_private.is_service()
        or coalesce(cfg_private.org_role(org_id) = 'admin', false);
end
$$;
revoke execute on function cfg_private.is_admin_of(uuid) from public, anon;
grant execute on function cfg_private.is_admin_of(uuid) to authenticated, service_role;

-- The request, checked for the caller's role (PT404 when they cannot see it) and
-- locked together with its automation. security definer: called only by the
-- definer helpers below, which API roles reach through the cfg RPCs.
create or replace function cfg_private.request_for(request_id uuid, min_role cfg.org_role, action text)
returns cfg.promotion_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.promotion_requests;
begin
    select * into found from cfg.promotion_requests as r where r.id = request_for.request_id;
    if found.id is null or (
        not cfg_private.is_service()
        and cfg_private.org_role(found.org_id) is null
    ) then
        raise exception 'promotion request not found'
            using errcode = 'PT404', detail = jsonb_build_object('request_id', request_id)::text;
    end if;
    perform cfg_private.automation_for(found.automation_id, min_role, action, true);
    select * into found from cfg.promotion_requests as r where r.id = found.id for update;
    return found;
end
$$;
revoke execute on function cfg_private.request_for(uuid, cfg.org_role, text) from public, anon, authenticated, service_role;

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
    -- Another org's endpoint is not found, exactly like a missing one.
    if not cfg_private.is_service() and cfg_private.org_role(found) is null then
        found := null;
    end if;
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

-- The endpoint of a delivery, after checking the caller is an admin of its org (PT404
-- for a delivery the caller cannot see, PT403 below admin).
-- security definer: the queue lives in cfg_private.
create or replace function cfg_private.webhook_delivery_endpoint(delivery_id bigint, action text)
returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
    found uuid;
begin
    select d.endpoint_id into found
    from cfg_private.webhook_deliveries as d
    join cfg.webhook_endpoints as e on e.id = d.endpoint_id
    where d.id = webhook_delivery_endpoint.delivery_id
        -- Another org's delivery is not found, exactly like a missing one.
        and (cfg_private.is_service() or cfg_private.org_role(e.org_id) is not null);
    if found is null then
        raise exception 'webhook delivery not found'
            using errcode = 'PT404', detail = jsonb_build_object('delivery_id', delivery_id)::text;
    end if;
    perform cfg_private.webhook_endpoint_org(found, action);
    return found;
end
$$;
revoke execute on function cfg_private.webhook_delivery_endpoint(bigint, text) from public, anon;
grant execute on function cfg_private.webhook_delivery_endpoint(bigint, text) to authenticated, service_role;

-- An org the caller can see, by id or slug. A missing org and another org's answer
-- alike (PT404). security invoker: members read their orgs under RLS.
create or replace function cfg_private.org_by_ref(ref text)
returns cfg.orgs
language plpgsql stable
set search_path = ''
as $$
declare
    found cfg.orgs;
begin
    if ref ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
        select * into found from cfg.orgs as o where o.id = ref::uuid;
    else
        select * into found from cfg.orgs as o where o.slug = ref;
    end if;
    if found.id is null then
        raise exception 'organisation % not found (or you are not a member)', coalesce(quote_literal(left(ref, 100)), 'null')
            using errcode = 'PT404', detail = jsonb_build_object('org', left(ref, 100))::text;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.org_by_ref(text) from public, anon;
grant execute on function cfg_private.org_by_ref(text) to authenticated, service_role;

-- An automation the caller can see: by id, as ORG/SLUG, or by slug within org_ref (an
-- id given with org_ref must be in that org). PT404 alike for missing and foreign ones.
-- security invoker: members read their automations under RLS.
create or replace function cfg_private.automation_by_ref(ref text, org_ref text default null)
returns cfg.automations
language plpgsql stable
set search_path = ''
as $$
declare
    found cfg.automations;
    in_org uuid;
    wanted text := ref;  -- the slug, or the id
begin
    if ref is null or ref = '' then
        raise exception 'name the automation as ORG/SLUG, or by its id'
            using errcode = 'PT422', detail = jsonb_build_object('automation', ref)::text;
    end if;
    if org_ref is null and ref !~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
        if position('/' in ref) = 0 then
            raise exception 'name the automation as ORG/SLUG, or by its id'
                using errcode = 'PT422', detail = jsonb_build_object('automation', left(ref, 100))::text;
        end if;
        org_ref := split_part(ref, '/', 1);
        wanted := substr(ref, position('/' in ref) + 1);
    end if;
    if org_ref is not null then
        in_org := (cfg_private.org_by_ref(org_ref)).id;
    end if;
    if wanted ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then
        select * into found from cfg.automations as a
        where a.id = wanted::uuid and (in_org is null or a.org_id = in_org);
    else
        select * into found from cfg.automations as a where a.org_id = in_org and a.slug = wanted;
    end if;
    if found.id is null then
        raise exception 'automation % not found', coalesce(quote_literal(left(ref, 100)), 'null')
            using errcode = 'PT404', detail = jsonb_build_object('automation', left(ref, 100))::text;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.automation_by_ref(text, text) from public, anon;
grant execute on function cfg_private.automation_by_ref(text, text) to authenticated, service_role;
