-- =============================================================================
-- Two-person rule for the pipeline. Loosening an environment (switching its
-- approval requirement off, moving it in the pipeline, deleting one that requires
-- approval) needs another admin's approval when the org has one:
--   cfg.request_environment_change -> pending -> cfg.approve_environment_change
--   (another admin; applies it) or cfg.reject_environment_change.
-- With no other admin the request is applied at once, and says so. Tightening
-- (approval on, a new environment at the end, a new display name) needs nobody; the
-- slug of an environment that requires approval does not change.
-- Table: migrations/20261129130000_promotion_environment_changes.sql. Promotion
-- itself: functions/50_promotion.sql.
-- =============================================================================

-- PT422 unless change is exactly one of {"requires_approval": false},
-- {"position": n >= 0}, {"delete": true}.
create or replace function cfg_private.check_environment_change(change jsonb)
returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    valid boolean := false;
begin
    -- One key: jsonb_object_keys of a scalar is an error, and a missing key is null.
    if jsonb_typeof(change) = 'object' and (select count(*) from jsonb_object_keys(change)) = 1 then
        valid := coalesce(
            change -> 'requires_approval' = 'false'::jsonb
            or change -> 'delete' = 'true'::jsonb
            or (jsonb_typeof(change -> 'position') = 'number' and (change ->> 'position') ~ '^[0-9]{1,9}$'),
            false
        );
    end if;
    if not valid then
        raise exception 'a change is one of {"requires_approval": false}, {"position": n}, {"delete": true}'
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'change', 'change', change)::text,
                  hint = 'Turning approval on, a new display name and a new environment at the end '
                      'need no approval: update cfg.environments directly.';
    end if;
end
$$;
revoke execute on function cfg_private.check_environment_change(jsonb) from public, anon;
grant execute on function cfg_private.check_environment_change(jsonb) to authenticated, service_role;

-- Applies an approved request under the org's pipeline lock, marks it applied and
-- appends environment.changed. PT409 when the environment changed since it was
-- requested (approving would apply something nobody reviewed).
-- security definer: environments accept these writes from no API role (see the
-- guard below); only the approval helpers, after their own checks, call it.
create or replace function cfg_private.apply_environment_change(request cfg.environment_change_requests)
returns cfg.environment_change_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    env cfg.environments;
    target integer := (request.change ->> 'position')::integer;
    applied cfg.environment_change_requests;
begin
    select * into env from cfg.environments as e
    where e.id = request.environment_id and e.org_id = request.org_id
    for update;
    if env.id is null
        or env.requires_approval is distinct from (request.before ->> 'requires_approval')::boolean
        or env.position is distinct from (request.before ->> 'position')::integer
    then
        raise exception 'stale request: environment % changed since the request; request again', request.environment_slug
            using errcode = 'PT409',
                  detail = jsonb_build_object(
                      'request_id', request.id, 'stale', true, 'requested_on', request.before,
                      'now', case when env.id is not null then jsonb_build_object(
                          'requires_approval', env.requires_approval, 'position', env.position
                      ) end
                  )::text;
    end if;
    if request.change ? 'requires_approval' then
        update cfg.environments as e set requires_approval = false where e.id = env.id;
    elsif request.change ? 'position' then
        -- One statement: the deferrable unique position is checked at its end, so the
        -- environment at the target position (if any) takes this one's place.
        update cfg.environments as e
        set position = case when e.id = env.id then target else env.position end
        where e.org_id = env.org_id and (e.id = env.id or e.position = target);
    else
        delete from cfg.environments as e where e.id = env.id;
    end if;
    update cfg.environment_change_requests as r set status = 'applied', applied_at = now()
    where r.id = request.id
    returning * into applied;
    perform cfg_private.emit_event(
        applied.org_id, 'environment.changed', 'environment_change_request', applied.id, null,
        jsonb_build_object(
            'request_id', applied.id, 'environment', applied.environment_slug, 'change', applied.change,
            'before', applied.before, 'reason', applied.reason,
            'requested_by', applied.requested_by_email, 'approved_by', applied.decided_by_email,
            'direct', applied.decided_by is not distinct from applied.requested_by,
            'note', applied.decision_comment
        ),
        env.id
    );
    return applied;
end
$$;
revoke execute on function cfg_private.apply_environment_change(cfg.environment_change_requests)
from public, anon, authenticated, service_role;

-- Requests a change of environment_id (admins). Pending until another admin
-- approves; applied at once when the org has no admin but the requester.
-- security definer: change requests accept no writes from API roles. It checks
-- the caller's role itself (require_role, PT404 for environments of other orgs).
create or replace function cfg_private.request_environment_change(environment_id uuid, change jsonb, reason text)
returns cfg.environment_change_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
    env cfg.environments;
    open_request cfg.environment_change_requests;
    other_admins integer;
    request cfg.environment_change_requests;
begin
    select * into env from cfg.environments as e where e.id = request_environment_change.environment_id;
    if env.id is null or not (cfg_private.is_service() or cfg_private.org_role(env.org_id) is not null) then
        raise exception 'environment not found'
            using errcode = 'PT404', detail = jsonb_build_object('environment_id', environment_id)::text;
    end if;
    perform cfg_private.require_role(env.org_id, 'admin', 'changing the pipeline');
    perform cfg_private.check_environment_change(change);
    if length(coalesce(reason, '')) > 2000 then
        raise exception 'reason is at most 2000 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'reason')::text;
    end if;
    -- Pipeline changes of one org are serialised: a swap moves two environments.
    perform 1 from cfg.environments as e where e.org_id = env.org_id order by e.id for update;
    select * into env from cfg.environments as e where e.id = env.id;
    if change ? 'requires_approval' and not env.requires_approval then
        raise exception '% already does not require approval', env.slug
            using errcode = 'PT409',
                  detail = jsonb_build_object('environment', env.slug, 'requires_approval', false)::text;
    elsif change ? 'position' and (change ->> 'position')::integer = env.position then
        raise exception '% is already at position %', env.slug, env.position
            using errcode = 'PT409', detail = jsonb_build_object('environment', env.slug, 'position', env.position)::text;
    elsif change ? 'delete' and not env.requires_approval then
        raise exception '% does not require approval: an admin deletes it directly', env.slug
            using errcode = 'PT422', detail = jsonb_build_object('environment', env.slug, 'field', 'change')::text;
    end if;
    select * into open_request from cfg.environment_change_requests as r
    where r.environment_id = env.id and r.status = 'pending';
    if open_request.id is not null then
        raise exception 'a change of % is already pending', env.slug
            using errcode = 'PT409',
                  detail = jsonb_build_object(
                      'request_id', open_request.id, 'change', open_request.change,
                      'requested_by', open_request.requested_by_email
                  )::text,
                  hint = 'Approve or reject it first.';
    end if;

    select count(*) into other_admins from cfg.org_members as m
    where m.org_id = env.org_id and m.role = 'admin' and m.user_id is distinct from actor.actor_id;
    insert into cfg.environment_change_requests (
        org_id, environment_id, environment_slug, change, before, reason, status,
        requested_by, requested_by_email, decided_by, decided_by_email, decided_at, decision_comment
    )
    values (
        env.org_id, env.id, env.slug, change,
        jsonb_build_object('requires_approval', env.requires_approval, 'position', env.position),
        btrim(coalesce(reason, '')), case when other_admins = 0 then 'approved' else 'pending' end,
        actor.actor_id, coalesce(actor.actor_email, actor.actor_role),
        case when other_admins = 0 then actor.actor_id end,
        case when other_admins = 0 then coalesce(actor.actor_email, actor.actor_role) end,
        case when other_admins = 0 then now() end,
        case when other_admins = 0 then 'applied directly: the organisation has no other admin' end
    )
    returning * into request;
    if other_admins = 0 then
        return cfg_private.apply_environment_change(request);
    end if;
    perform cfg_private.emit_event(
        request.org_id, 'environment.change_requested', 'environment_change_request', request.id, null,
        jsonb_build_object(
            'request_id', request.id, 'environment', request.environment_slug, 'change', request.change,
            'before', request.before, 'reason', request.reason, 'requested_by', request.requested_by_email
        ),
        env.id
    );
    return request;
end
$$;
revoke execute on function cfg_private.request_environment_change(uuid, jsonb, text) from public, anon;
grant execute on function cfg_private.request_environment_change(uuid, jsonb, text) to authenticated, service_role;

-- The request, locked, for an admin of its org; PT404 for anyone who cannot see it,
-- PT409 unless it is pending. security definer: called only by the helpers below.
create or replace function cfg_private.pending_environment_change(request_id uuid, action text)
returns cfg.environment_change_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.environment_change_requests;
begin
    select * into found from cfg.environment_change_requests as r where r.id = pending_environment_change.request_id
    for update;
    if found.id is null or not (cfg_private.is_service() or cfg_private.org_role(found.org_id) is not null) then
        raise exception 'environment change request not found'
            using errcode = 'PT404', detail = jsonb_build_object('request_id', request_id)::text;
    end if;
    perform cfg_private.require_role(found.org_id, 'admin', action);
    if found.status <> 'pending' then
        raise exception 'the environment change request is %, not pending', found.status
            using errcode = 'PT409',
                  detail = jsonb_build_object(
                      'request_id', found.id, 'status', found.status, 'decided_by', found.decided_by_email,
                      'decided_at', found.decided_at
                  )::text;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.pending_environment_change(uuid, text)
from public, anon, authenticated, service_role;

-- Approves and applies a pending request: an admin other than the requester.
-- security definer: see request_environment_change.
create or replace function cfg_private.approve_environment_change(request_id uuid, comment text)
returns cfg.environment_change_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
    request cfg.environment_change_requests := cfg_private.pending_environment_change(
        approve_environment_change.request_id, 'approving pipeline changes'
    );
begin
    -- The service key has no user id: it cannot approve what it requested either.
    if request.requested_by is not distinct from actor.actor_id then
        raise exception 'you cannot approve your own environment change request; another admin must'
            using errcode = 'PT403',
                  detail = jsonb_build_object('request_id', request.id, 'requested_by', request.requested_by_email)::text;
    end if;
    if length(coalesce(comment, '')) > 2000 then
        raise exception 'comment is at most 2000 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'comment')::text;
    end if;
    update cfg.environment_change_requests as r
    set status = 'approved', decided_by = actor.actor_id,
        decided_by_email = coalesce(actor.actor_email, actor.actor_role),
        decided_at = now(), decision_comment = nullif(btrim(comment), '')
    where r.id = request.id
    returning * into request;
    perform cfg_private.emit_event(
        request.org_id, 'environment.change_approved', 'environment_change_request', request.id, null,
        jsonb_build_object(
            'request_id', request.id, 'environment', request.environment_slug, 'change', request.change,
            'requested_by', request.requested_by_email, 'approved_by', request.decided_by_email,
            'comment', request.decision_comment
        ),
        request.environment_id
    );
    return cfg_private.apply_environment_change(request);
end
$$;
revoke execute on function cfg_private.approve_environment_change(uuid, text) from public, anon;
grant execute on function cfg_private.approve_environment_change(uuid, text) to authenticated, service_role;

-- Rejects a pending request with a reason (admins, the requester included).
-- security definer: see request_environment_change.
create or replace function cfg_private.reject_environment_change(request_id uuid, reason text)
returns cfg.environment_change_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
    request cfg.environment_change_requests := cfg_private.pending_environment_change(
        reject_environment_change.request_id, 'rejecting pipeline changes'
    );
begin
    if length(btrim(coalesce(reason, ''))) = 0 or length(reason) > 2000 then
        raise exception 'a rejection needs a reason (at most 2000 characters)'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'reason')::text;
    end if;
    update cfg.environment_change_requests as r
    set status = 'rejected', decided_by = actor.actor_id,
        decided_by_email = coalesce(actor.actor_email, actor.actor_role),
        decided_at = now(), decision_comment = btrim(reject_environment_change.reason)
    where r.id = request.id
    returning * into request;
    perform cfg_private.emit_event(
        request.org_id, 'environment.change_rejected', 'environment_change_request', request.id, null,
        jsonb_build_object(
            'request_id', request.id, 'environment', request.environment_slug, 'change', request.change,
            'requested_by', request.requested_by_email, 'rejected_by', request.decided_by_email,
            'reason', request.decision_comment
        ),
        request.environment_id
    );
    return request;
end
$$;
revoke execute on function cfg_private.reject_environment_change(uuid, text) from public, anon;
grant execute on function cfg_private.reject_environment_change(uuid, text) to authenticated, service_role;

-- =============================================================================
-- The RPCs. security invoker (lint 0029): the helpers above check the caller's role.
-- =============================================================================

create or replace function cfg.request_environment_change(environment_id uuid, change jsonb, reason text default null)
returns cfg.environment_change_requests
language plpgsql
security invoker
set search_path = ''
as $$
begin
    return cfg_private.request_environment_change(environment_id, change, reason);
end
$$;
revoke execute on function cfg.request_environment_change(uuid, jsonb, text) from public, anon;
grant execute on function cfg.request_environment_change(uuid, jsonb, text) to authenticated, service_role;

create or replace function cfg.approve_environment_change(request_id uuid, comment text default null)
returns cfg.environment_change_requests
language plpgsql
security invoker
set search_path = ''
as $$
begin
    return cfg_private.approve_environment_change(request_id, comment);
end
$$;
revoke execute on function cfg.approve_environment_change(uuid, text) from public, anon;
grant execute on function cfg.approve_environment_change(uuid, text) to authenticated, service_role;

create or replace function cfg.reject_environment_change(request_id uuid, reason text)
returns cfg.environment_change_requests
language plpgsql
security invoker
set search_path = ''
as $$
begin
    return cfg_private.reject_environment_change(request_id, reason);
end
$$;
revoke execute on function cfg.reject_environment_change(uuid, text) from public, anon;
grant execute on function cfg.reject_environment_change(uuid, text) to authenticated, service_role;

-- =============================================================================
-- The guard: API roles (direct PostgREST writes included) cannot loosen the
-- pipeline. It tests the role that runs the write, not a setting: the approval
-- helpers write as their owner, which no API role can become.
-- =============================================================================

create or replace function cfg_private.guard_environment_change()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    row_data cfg.environments := case when tg_op = 'DELETE' then old else new end;
    change jsonb;
begin
    if tg_op = 'DELETE' and old.requires_approval then
        change := '{"delete": true}';
    elsif tg_op = 'UPDATE' and old.requires_approval and not new.requires_approval then
        change := '{"requires_approval": false}';
    elsif tg_op = 'UPDATE' and new.position <> old.position then
        change := jsonb_build_object('position', new.position);
    elsif tg_op = 'UPDATE' and old.requires_approval and new.slug <> old.slug then
        -- Consumers find prod by its slug: renaming it and adding an unguarded 'prod' at the
        -- end would route around the approval. Switch approval off first (by request).
        change := '{"requires_approval": false}';
    elsif tg_op = 'INSERT' and exists (
        select 1 from cfg.environments as e where e.org_id = new.org_id and e.position > new.position
    ) then
        raise exception 'new environments go at the end of the pipeline; then request a move'
            using errcode = 'PT403',
                  detail = jsonb_build_object(
                      'environment', new.slug, 'position', new.position,
                      'request_with', 'cfg.request_environment_change'
                  )::text,
                  hint = 'Insert it after the last position, then cfgctl env request-change ORG SLUG --position N.';
    end if;
    if change is not null then
        raise exception 'changing % this way needs another admin''s approval: request the change', row_data.slug
            using errcode = 'PT403',
                  detail = jsonb_build_object(
                      'environment', row_data.slug, 'environment_id', row_data.id, 'change', change,
                      'request_with', 'cfg.request_environment_change'
                  )::text,
                  hint = 'cfgctl env request-change (cfg.request_environment_change); with no other admin it applies at once.';
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.guard_environment_change() from public, anon, authenticated, service_role;

-- After the row's own constraints: bad input gets their error, not this one.
create or replace trigger two_person_rule after insert or update or delete on cfg.environments
for each row when (current_user in ('anon', 'authenticated', 'service_role'))
execute function cfg_private.guard_environment_change();

select cfg_private.register_table('cfg.environment_change_requests');

-- =============================================================================
-- Reading the pipeline, as a dashboard shows it
-- =============================================================================

-- The environments of an org, in pipeline order. security invoker: members read them under RLS.
create or replace function cfg.list_environments(org_id uuid)
returns setof cfg.environments
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_environments.org_id, 'viewer', 'listing environments');
    return query
    select * from cfg.environments as e where e.org_id = list_environments.org_id order by e.position;
end
$$;
revoke execute on function cfg.list_environments(uuid) from public, anon;
grant execute on function cfg.list_environments(uuid) to authenticated, service_role;

-- One environment of an org by slug; PT404 names the org's environments (none for an
-- org the caller cannot see, which answers like a missing one).
create or replace function cfg.find_environment(org_id uuid, slug text)
returns cfg.environments
language sql stable
set search_path = ''
as $$
    select * from cfg_private.environment_by_slug(find_environment.org_id, find_environment.slug)
$$;
revoke execute on function cfg.find_environment(uuid, text) from public, anon;
grant execute on function cfg.find_environment(uuid, text) to authenticated, service_role;

-- Pipeline change requests of an org, newest first, in one status (with_status; null:
-- every status). security invoker: members read them under RLS.
create or replace function cfg.list_environment_changes(org_id uuid, with_status text default 'pending')
returns setof cfg.environment_change_requests
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_environment_changes.org_id, 'viewer', 'reading pipeline changes');
    if with_status not in ('pending', 'approved', 'applied', 'rejected') then
        raise exception 'unknown change status %: use pending, approved, applied or rejected (null: all)',
            quote_literal(left(with_status, 100))
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'with_status', 'value', left(with_status, 100))::text;
    end if;
    return query
    select * from cfg.environment_change_requests as r
    where r.org_id = list_environment_changes.org_id
        and (with_status is null or r.status = with_status)
    order by r.created_at desc, r.id;
end
$$;
revoke execute on function cfg.list_environment_changes(uuid, text) from public, anon;
grant execute on function cfg.list_environment_changes(uuid, text) to authenticated, service_role;
