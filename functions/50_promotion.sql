-- =============================================================================
-- Environment promotion: move an environment to the version another runs, one
-- step along the pipeline (dev -> staging -> prod); admins may skip a step with a
-- reason. Environments with requires_approval get a request that an admin who is
-- not the requester approves (pending -> approved -> applied) or rejects.
-- Tables: migrations/20261125200000_versioning.sql. Helpers: functions/00_access.sql, 30_content.sql, 40_versioning_write.sql.
--
-- The RPCs in cfg are security invoker (Supabase lint 0029). What API roles cannot
-- write themselves (deployments, requests, events) is done by one security definer
-- helper in cfg_private per RPC, which checks the caller's role itself first: each
-- is callable on its own and trusts none of its caller's checks.
-- =============================================================================

-- Checks a promotion and finds what it moves: the caller must be an editor (an
-- admin with a reason to skip steps), the target after the source, a version
-- deployed in the source (expected_version, when given). lock: hold the automation.
-- security invoker: cfg.promote reads as the caller under RLS, confirm_promotion as its owner.
create or replace function cfg_private.promotion_plan(
    automation_id uuid, from_env text, to_env text, reason text, message text, expected_version integer,
    lock boolean,
    out target cfg.automations, out src cfg.environments, out dst cfg.environments, out skipped jsonb,
    out src_version cfg.config_versions, out dst_version cfg.config_versions
)
language plpgsql
set search_path = ''
as $$
declare
    next_env cfg.environments;
begin
    target := cfg_private.automation_for(promotion_plan.automation_id, 'editor', 'promoting config', lock);
    src := cfg_private.environment_by_slug(target.org_id, from_env);
    dst := cfg_private.environment_by_slug(target.org_id, to_env);
    if dst.position <= src.position then
        raise exception 'promotions go forward along the pipeline: % comes before % ', dst.slug, src.slug
            using errcode = 'PT422',
                  detail = jsonb_build_object(
                      'from', src.slug, 'to', dst.slug,
                      'pipeline', (
                          select jsonb_agg(e.slug order by e.position)
                          from cfg.environments as e where e.org_id = target.org_id
                      )
                  )::text;
    end if;
    select * into next_env from cfg.environments as e
    where e.org_id = target.org_id and e.position > src.position
    order by e.position
    limit 1;
    select jsonb_agg(e.slug order by e.position) into skipped
    from cfg.environments as e
    where e.org_id = target.org_id and e.position > src.position and e.position < dst.position;
    if skipped is not null then
        if not cfg_private.is_admin_of(target.org_id) then
            raise exception 'you can promote from % only to the next environment, %; an admin may skip it with a reason',
                src.slug, next_env.slug
                using errcode = 'PT403',
                      detail = jsonb_build_object(
                          'from', src.slug, 'to', dst.slug, 'next', next_env.slug, 'skipped', skipped
                      )::text;
        end if;
        if length(btrim(coalesce(reason, ''))) = 0 then
            raise exception 'skipping % needs a reason', skipped
                using errcode = 'PT422',
                      detail = jsonb_build_object('field', 'reason', 'skipped', skipped)::text;
        end if;
    end if;
    if length(coalesce(message, '')) > 2000 then
        raise exception 'message is at most 2000 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'message')::text;
    end if;

    select v.* into src_version
    from cfg.deployments as d
    join cfg.config_versions as v on v.id = d.version_id
    where d.automation_id = target.id and d.environment_id = src.id;
    if src_version.id is null then
        raise exception 'nothing to promote: no version is deployed in %', src.slug
            using errcode = 'PT409',
                  detail = jsonb_build_object('automation_id', target.id, 'environment', src.slug)::text;
    end if;
    -- A promotion confirmed after a preview promotes what the preview showed, or nothing.
    if expected_version is not null and expected_version <> src_version.version then
        raise exception '% moved on: it runs version %, not %', src.slug, src_version.version, expected_version
            using errcode = 'PT409',
                  detail = jsonb_build_object(
                      'environment', src.slug, 'expected_version', expected_version,
                      'current_version', src_version.version
                  )::text;
    end if;
    select v.* into dst_version
    from cfg.deployments as d
    join cfg.config_versions as v on v.id = d.version_id
    where d.automation_id = target.id and d.environment_id = dst.id;
end
$$;
revoke execute on function cfg_private.promotion_plan(uuid, text, text, text, text, integer, boolean)
from public, anon;
grant execute on function cfg_private.promotion_plan(uuid, text, text, text, text, integer, boolean)
to authenticated, service_role;

-- The write of a confirmed promotion: the target moves to the source's version or,
-- when it requires approval, a pending request is created (superseding an older
-- open one). Returns {action: promoted | requested, request_id, status, supersedes}.
-- security definer: deployments, requests and events accept no writes from API
-- roles. It checks the promotion (and so the caller's role) itself: promotion_plan.
create or replace function cfg_private.confirm_promotion(
    automation_id uuid, from_env text, to_env text, reason text, message text, expected_version integer
)
returns jsonb
language plpgsql
security definer
set jit = off
set search_path = ''
as $$
declare
    plan record;
    target cfg.automations;
    src cfg.environments;
    dst cfg.environments;
    src_version cfg.config_versions;
    dst_version cfg.config_versions;
    open_request cfg.promotion_requests;
    request cfg.promotion_requests;
    deployment_id uuid;
begin
    select * into plan from cfg_private.promotion_plan(
        confirm_promotion.automation_id, from_env, to_env, reason, message, expected_version, true
    );
    target := plan.target;
    src := plan.src;
    dst := plan.dst;
    src_version := plan.src_version;
    dst_version := plan.dst_version;
    if dst_version.id = src_version.id then
        raise exception '% already runs version %', dst.slug, src_version.version
            using errcode = 'PT409',
                  detail = jsonb_build_object(
                      'automation_id', target.id, 'environment', dst.slug, 'version', src_version.version
                  )::text;
    end if;

    if dst.requires_approval then
        select * into open_request from cfg.promotion_requests as r
        where r.automation_id = target.id and r.to_environment_id = dst.id and r.status in ('pending', 'approved')
        for update;
        if open_request.id is not null and open_request.version_id = src_version.id then
            raise exception 'a promotion of version % to % is already %',
                src_version.version, dst.slug, open_request.status
                using errcode = 'PT409',
                      detail = jsonb_build_object(
                          'request_id', open_request.id, 'status', open_request.status,
                          'version', open_request.version, 'requested_by', open_request.requested_by_email
                      )::text;
        end if;
        if open_request.id is not null then
            -- A newer request replaces the open one: approving it would now be stale.
            update cfg.promotion_requests as r set status = 'superseded' where r.id = open_request.id;
        end if;
        insert into cfg.promotion_requests (
            org_id, automation_id, from_environment_id, to_environment_id, version, version_id,
            target_version, message, skip_reason, requested_by, requested_by_email
        )
        values (
            target.org_id, target.id, src.id, dst.id, src_version.version, src_version.id,
            dst_version.version, coalesce(message, ''), case when plan.skipped is not null then btrim(reason) end,
            (select auth.uid()), coalesce((select auth.email()), (select auth.role()), current_user::text)
        )
        returning * into request;
        if open_request.id is not null then
            update cfg.promotion_requests as r set superseded_by = request.id where r.id = open_request.id;
        end if;
        perform cfg_private.emit_event(
            target.org_id, 'promotion.requested', 'promotion_request', request.id, target.id,
            jsonb_build_object(
                'request_id', request.id, 'version', request.version, 'version_id', request.version_id,
                'from_environment', src.slug, 'to_environment', dst.slug, 'target_version', dst_version.version,
                'skipped', coalesce(plan.skipped, '[]'::jsonb), 'reason', request.skip_reason,
                'message', request.message, 'supersedes', open_request.id,
                'changes', cfg_private.changed_keys(
                    coalesce(dst_version.content, '{"sections": {}}'::jsonb), src_version.content
                )
            ),
            dst.id
        );
        return jsonb_build_object(
            'action', 'requested', 'request_id', request.id, 'status', request.status,
            'supersedes', open_request.id
        );
    end if;

    perform cfg_private.deploy(src_version, dst.id, 'promotion', src.id, null, btrim(reason));
    select d.id into deployment_id from cfg.deployments as d
    where d.automation_id = target.id and d.environment_id = dst.id;
    perform cfg_private.emit_event(
        target.org_id, 'promotion.applied', 'deployment', deployment_id, target.id,
        jsonb_build_object(
            'request_id', null, 'version', src_version.version, 'version_id', src_version.id,
            'previous_version', dst_version.version, 'from_environment', src.slug, 'to_environment', dst.slug,
            'skipped', coalesce(plan.skipped, '[]'::jsonb), 'reason', btrim(reason), 'message', coalesce(message, '')
        ),
        dst.id
    );
    return jsonb_build_object('action', 'promoted');
end
$$;
revoke execute on function cfg_private.confirm_promotion(uuid, text, text, text, text, integer) from public, anon;
grant execute on function cfg_private.confirm_promotion(uuid, text, text, text, text, integer)
to authenticated, service_role;

-- Dry run (default): returns the diff the target would take, changes nothing.
-- Confirmed (dry_run => false): the target environment moves to the source's
-- version, or, when it requires approval, a pending promotion request is created
-- (superseding an older open one). Editors promote to the next environment only;
-- an admin may skip steps by giving a reason. expected_version, when given, must be
-- the version the source runs (so a confirmed preview promotes what it showed).
-- security invoker: reads under the caller's RLS; the write is confirm_promotion's.
create or replace function cfg.promote(
    automation_id uuid,
    from_env text,
    to_env text,
    dry_run boolean default true,
    reason text default null,
    message text default null,
    expected_version integer default null
)
returns jsonb
language plpgsql
security invoker
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    plan record;
    src cfg.environments;
    dst cfg.environments;
    src_version cfg.config_versions;
    dst_version cfg.config_versions;
    result jsonb;
begin
    -- Confirmed: the automation is locked from here, so the diff below is what moves.
    select * into plan from cfg_private.promotion_plan(
        promote.automation_id, from_env, to_env, reason, message, expected_version, not coalesce(dry_run, true)
    );
    src := plan.src;
    dst := plan.dst;
    src_version := plan.src_version;
    dst_version := plan.dst_version;
    result := jsonb_build_object(
        'automation_id', (plan.target).id,
        'from', jsonb_build_object('environment', src.slug, 'environment_id', src.id, 'version', src_version.version),
        'to', jsonb_build_object('environment', dst.slug, 'environment_id', dst.id, 'version', dst_version.version),
        'requires_approval', dst.requires_approval,
        'skipped', coalesce(plan.skipped, '[]'::jsonb),
        'diff', cfg_private.diff_contents(coalesce(dst_version.content, '{"sections": {}}'::jsonb), src_version.content),
        -- The target environment's validation rules against what would move there.
        'validation', cfg_private.validation_report((plan.target).id, dst.id, src_version.content),
        -- Who references the keys that move, in the target environment.
        'impact', cfg_private.impact_report((plan.target).id, cfg_private.key_paths(cfg_private.changed_keys(
            coalesce(dst_version.content, '{"sections": {}}'::jsonb), src_version.content)), dst.id)
    );
    if not coalesce(dry_run, true) and result -> 'validation' ->> 'status' = 'errors' then
        raise exception 'invalid content: % validation rule error(s) in %, first: % %',
            jsonb_array_length(result -> 'validation' -> 'errors'), dst.slug,
            result -> 'validation' -> 'errors' -> 0 ->> 'path', result -> 'validation' -> 'errors' -> 0 ->> 'message'
            using errcode = 'PT422', detail = (result -> 'validation' || jsonb_build_object('environment_id', dst.id))::text;
    end if;
    if coalesce(dry_run, true) then
        return result || jsonb_build_object('dry_run', true, 'action', 'preview');
    end if;
    return result || jsonb_build_object('dry_run', false) || cfg_private.confirm_promotion(
        promote.automation_id, from_env, to_env, reason, message, src_version.version
    );
end
$$;
revoke execute on function cfg.promote(uuid, text, text, boolean, text, text, integer) from public, anon;
grant execute on function cfg.promote(uuid, text, text, boolean, text, text, integer) to authenticated, service_role;

-- PT409 unless the request is in the expected status.
create or replace function cfg_private.require_request_status(request cfg.promotion_requests, expected text [])
returns void
language plpgsql
set search_path = ''
as $$
begin
    if not request.status::text = any(expected) then
        raise exception 'the promotion request is %, not %', request.status, array_to_string(expected, ' or ')
            using errcode = 'PT409',
                  detail = jsonb_build_object(
                      'request_id', request.id, 'status', request.status,
                      'superseded_by', request.superseded_by, 'decided_by', request.decided_by_email,
                      'decided_at', request.decided_at
                  )::text;
    end if;
end
$$;
revoke execute on function cfg_private.require_request_status(cfg.promotion_requests, text [])
from public, anon, authenticated, service_role;

-- Deploys an approved request's own version (never a newer one) and marks it applied.
-- security definer: deployments accept no writes from API roles.
create or replace function cfg_private.apply_request(request cfg.promotion_requests)
returns cfg.promotion_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    bound cfg.config_versions;
    previous integer;
    applied cfg.promotion_requests;
begin
    select * into bound from cfg.config_versions as v where v.id = request.version_id;
    previous := cfg_private.deploy(
        bound, request.to_environment_id, 'promotion', request.from_environment_id, request.id, request.skip_reason
    );
    update cfg.promotion_requests as r set status = 'applied', applied_at = now()
    where r.id = request.id
    returning * into applied;
    perform cfg_private.emit_event(
        applied.org_id, 'promotion.applied', 'promotion_request', applied.id, applied.automation_id,
        jsonb_build_object(
            'request_id', applied.id, 'version', applied.version, 'version_id', applied.version_id,
            'previous_version', previous,
            'from_environment', (select e.slug from cfg.environments as e where e.id = applied.from_environment_id),
            'to_environment', (select e.slug from cfg.environments as e where e.id = applied.to_environment_id),
            'reason', applied.skip_reason, 'message', applied.message
        ),
        applied.to_environment_id
    );
    return applied;
end
$$;
revoke execute on function cfg_private.apply_request(cfg.promotion_requests)
from public, anon, authenticated, service_role;

-- Approves a pending request (admins other than the requester) and, unless
-- apply is false, deploys its version at once.
-- security definer: requests and deployments accept no writes from API roles;
-- request_for checks the caller's role.
create or replace function cfg_private.approve_promotion(request_id uuid, comment text, apply boolean)
returns cfg.promotion_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    request cfg.promotion_requests := cfg_private.request_for(approve_promotion.request_id, 'admin', 'approving promotions');
    current_target integer;
begin
    perform cfg_private.require_request_status(request, array['pending']);
    if request.requested_by = (select auth.uid()) then
        raise exception 'you cannot approve your own promotion request; another admin must'
            using errcode = 'PT403',
                  detail = jsonb_build_object('request_id', request.id, 'requested_by', request.requested_by)::text;
    end if;
    select d.version into current_target from cfg.deployments as d
    where d.automation_id = request.automation_id and d.environment_id = request.to_environment_id;
    if current_target is distinct from request.target_version then
        raise exception 'stale request: the target moved from version % to % since it was requested; request again',
            coalesce(request.target_version::text, 'none'), coalesce(current_target::text, 'none')
            using errcode = 'PT409',
                  detail = jsonb_build_object(
                      'request_id', request.id, 'status', request.status, 'stale', true,
                      'target_version_requested', request.target_version, 'target_version_now', current_target
                  )::text;
    end if;
    update cfg.promotion_requests as r
    set status = 'approved', decided_by = (select auth.uid()),
        decided_by_email = coalesce((select auth.email()), (select auth.role()), current_user::text),
        decided_at = now(), decision_comment = nullif(btrim(comment), '')
    where r.id = request.id
    returning * into request;
    perform cfg_private.emit_event(
        request.org_id, 'promotion.approved', 'promotion_request', request.id, request.automation_id,
        jsonb_build_object(
            'request_id', request.id, 'version', request.version, 'version_id', request.version_id,
            'requested_by', request.requested_by_email, 'approved_by', request.decided_by_email,
            'comment', request.decision_comment
        ),
        request.to_environment_id
    );
    if coalesce(apply, true) then
        request := cfg_private.apply_request(request);
    end if;
    return request;
end
$$;
revoke execute on function cfg_private.approve_promotion(uuid, text, boolean) from public, anon;
grant execute on function cfg_private.approve_promotion(uuid, text, boolean) to authenticated, service_role;

-- The API entry point. security invoker: the helper above checks the caller's role.
create or replace function cfg.approve_promotion(request_id uuid, comment text default null, apply boolean default true)
returns cfg.promotion_requests
language plpgsql
security invoker
set search_path = ''
as $$
begin
    return cfg_private.approve_promotion(approve_promotion.request_id, approve_promotion.comment, approve_promotion.apply);
end
$$;
revoke execute on function cfg.approve_promotion(uuid, text, boolean) from public, anon;
grant execute on function cfg.approve_promotion(uuid, text, boolean) to authenticated, service_role;

-- Deploys an approved request that was approved with apply => false (editors and up).
-- security definer: as approve_promotion.
create or replace function cfg_private.apply_promotion(request_id uuid)
returns cfg.promotion_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    request cfg.promotion_requests := cfg_private.request_for(apply_promotion.request_id, 'editor', 'applying promotions');
begin
    perform cfg_private.require_request_status(request, array['approved']);
    return cfg_private.apply_request(request);
end
$$;
revoke execute on function cfg_private.apply_promotion(uuid) from public, anon;
grant execute on function cfg_private.apply_promotion(uuid) to authenticated, service_role;

-- The API entry point. security invoker: the helper above checks the caller's role.
create or replace function cfg.apply_promotion(request_id uuid)
returns cfg.promotion_requests
language plpgsql
security invoker
set search_path = ''
as $$
begin
    return cfg_private.apply_promotion(apply_promotion.request_id);
end
$$;
revoke execute on function cfg.apply_promotion(uuid) from public, anon;
grant execute on function cfg.apply_promotion(uuid) to authenticated, service_role;

-- Rejects a pending or approved (not yet applied) request, with a reason. Admins only.
-- security definer: as approve_promotion.
create or replace function cfg_private.reject_promotion(request_id uuid, reason text)
returns cfg.promotion_requests
language plpgsql
security definer
set search_path = ''
as $$
declare
    request cfg.promotion_requests := cfg_private.request_for(reject_promotion.request_id, 'admin', 'rejecting promotions');
begin
    if length(btrim(coalesce(reason, ''))) = 0 then
        raise exception 'a rejection needs a reason'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'reason')::text;
    end if;
    perform cfg_private.require_request_status(request, array['pending', 'approved']);
    update cfg.promotion_requests as r
    set status = 'rejected', decided_by = (select auth.uid()),
        decided_by_email = coalesce((select auth.email()), (select auth.role()), current_user::text),
        decided_at = now(), decision_comment = btrim(reason)
    where r.id = request.id
    returning * into request;
    perform cfg_private.emit_event(
        request.org_id, 'promotion.rejected', 'promotion_request', request.id, request.automation_id,
        jsonb_build_object(
            'request_id', request.id, 'version', request.version, 'version_id', request.version_id,
            'requested_by', request.requested_by_email, 'rejected_by', request.decided_by_email,
            'reason', request.decision_comment
        ),
        request.to_environment_id
    );
    return request;
end
$$;
revoke execute on function cfg_private.reject_promotion(uuid, text) from public, anon;
grant execute on function cfg_private.reject_promotion(uuid, text) to authenticated, service_role;

-- The API entry point. security invoker: the helper above checks the caller's role.
create or replace function cfg.reject_promotion(request_id uuid, reason text)
returns cfg.promotion_requests
language plpgsql
security invoker
set search_path = ''
as $$
begin
    return cfg_private.reject_promotion(reject_promotion.request_id, reject_promotion.reason);
end
$$;
revoke execute on function cfg.reject_promotion(uuid, text) from public, anon;
grant execute on function cfg.reject_promotion(uuid, text) to authenticated, service_role;

-- Status badges: per automation, the version each environment runs, whether it
-- runs the same content as the environment before it, and whether any differ (drift).
-- security invoker: RLS limits the rows to the caller's orgs.
create or replace function cfg.deployment_status(org_id uuid, automation_id uuid default null)
returns table (
    id uuid,
    slug text,
    name text,
    latest_version integer,
    environments jsonb,
    drift boolean,
    pending_requests integer
)
language plpgsql stable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
begin
    perform cfg_private.require_role(deployment_status.org_id, 'viewer', 'reading deployment status');
    return query
    with cells as (
        select
            a.id as automation_id, e.slug, e.position, e.requires_approval, d.version, d.deployed_at,
            v.content_hash,
            lag(v.content_hash) over (partition by a.id order by e.position) as previous_hash,
            lag(e.slug) over (partition by a.id order by e.position) as previous_slug
        from cfg.automations as a
        join cfg.environments as e on e.org_id = a.org_id
        left join cfg.deployments as d on d.automation_id = a.id and d.environment_id = e.id
        left join cfg.config_versions as v on v.id = d.version_id
        where a.org_id = deployment_status.org_id
            and (deployment_status.automation_id is null or a.id = deployment_status.automation_id)
    )
    select
        a.id, a.slug, a.name,
        (
            select max(v.version) from cfg.config_versions as v
            where v.org_id = a.org_id and v.automation_id = a.id
        ),
        jsonb_agg(jsonb_build_object(
            'environment', c.slug, 'position', c.position, 'version', c.version,
            'deployed_at', c.deployed_at, 'requires_approval', c.requires_approval,
            'same_as_previous', case
                when c.previous_slug is null then null
                else c.content_hash is not distinct from c.previous_hash
            end
        ) order by c.position),
        count(distinct coalesce(c.content_hash, '')) > 1,
        (
            select count(*)::integer from cfg.promotion_requests as r
            where r.org_id = a.org_id and r.automation_id = a.id and r.status = 'pending'
        )
    from cells as c
    join cfg.automations as a on a.id = c.automation_id
    group by a.id, a.slug, a.name, a.org_id
    order by a.slug;
end
$$;
revoke execute on function cfg.deployment_status(uuid, uuid) from public, anon;
grant execute on function cfg.deployment_status(uuid, uuid) to authenticated, service_role;
