-- =============================================================================
-- Schedules: what the schedules worker (sync_service/workers/schedules.py) reads and
-- writes to keep a cron schedule's occurrences written ahead over its horizon, and
-- the timeline members read (upcoming occurrences with a preview, past runs).
-- =============================================================================

-- Active cron schedules whose occurrences end before horizon (service role): the
-- worker computes the next ones with croniter. Nothing is leased: writing the same
-- occurrences twice changes nothing (unique per schedule, instant and phase).
create or replace function cfg_private.schedules_to_materialise(horizon timestamptz, batch integer)
returns table (
    id uuid, cron text, timezone text, until timestamptz, max_runs integer, change_hash text,
    start_after timestamptz, runs integer
)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_service('materialising schedules');
    return query
    select
        s.id, s.cron, s.timezone, s.until, s.max_runs, s.change_hash,
        -- After the last occurrence written, or from when it was (re)scheduled.
        coalesce(
            (select max(o.due_at) from cfg.schedule_occurrences as o where o.schedule_id = s.id and o.phase = 'apply'
                and o.created_at >= s.updated_at),
            greatest(s.updated_at, now()) - interval '1 second'
        ),
        (select count(*)::integer from cfg.schedule_occurrences as o where o.schedule_id = s.id and o.phase = 'apply')
    from cfg.schedules as s
    where s.state = 'active' and s.cron is not null
        and (s.materialised_until is null or s.materialised_until < horizon)
    order by s.materialised_until nulls first
    limit batch;
end
$$;
revoke execute on function cfg_private.schedules_to_materialise(timestamptz, integer) from public, anon, authenticated;
grant execute on function cfg_private.schedules_to_materialise(timestamptz, integer) to service_role;

-- Writes the occurrences the worker computed for a schedule (service role), unless the
-- schedule changed since (change_hash); through: how far they reach ('infinity' when
-- the series ended). error: croniter refused the expression; the schedule is invalid.
create or replace function cfg_private.record_occurrences(
    schedule_id uuid, change_hash text, due_ats timestamptz [], through timestamptz, error text
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    s cfg.schedules;
begin
    perform cfg_private.require_service('materialising schedules');
    select * into s from cfg.schedules as x
    where x.id = record_occurrences.schedule_id and x.change_hash = record_occurrences.change_hash and x.state = 'active'
    for update;
    if s.id is null then
        return 0;
    end if;
    if error is not null then
        update cfg.schedules as x set state = 'invalid', error = left(record_occurrences.error, 500) where x.id = s.id;
        return 0;
    end if;
    perform cfg_private.add_occurrences(s, due_ats);
    update cfg.schedules as x set materialised_until = through where x.id = s.id;
    return coalesce(array_length(due_ats, 1), 0);
end
$$;
revoke execute on function cfg_private.record_occurrences(uuid, text, timestamptz [], timestamptz, text)
from public, anon, authenticated;
grant execute on function cfg_private.record_occurrences(uuid, text, timestamptz [], timestamptz, text) to service_role;

-- Rotations the tick dispatched (cfg_private.dispatch_rotation), for the vaults worker
-- (service role): up to batch that are due, each leased for lease (FOR UPDATE SKIP
-- LOCKED: one worker takes one; a worker that dies lets its lease run out, and the
-- rotation is claimed again). With the binding and backend to rotate it with. A
-- dispatch whose secret was unbound meanwhile fails here.
-- security definer: it hands out credential ids the service then reads.
create or replace function cfg_private.claim_schedule_dispatches(batch integer, lease interval)
returns table (
    occurrence_id uuid, binding_id uuid, ref text, backend_kind text, backend_config jsonb,
    credentials_secret_id uuid, format text, length integer, attempts integer
)
language plpgsql
security definer
set search_path = ''
as $$
declare
    orphan uuid;
begin
    perform cfg_private.require_service('claim scheduled rotations');
    for orphan in
        select d.occurrence_id from cfg_private.schedule_dispatches as d
        where d.binding_id is null for update skip locked
    loop
        perform cfg_private.report_schedule_dispatch(orphan, null, 'not_found', 'the secret was unbound before its rotation ran');
    end loop;
    return query
    with due as (
        select d.occurrence_id from cfg_private.schedule_dispatches as d
        where d.next_attempt_at <= now() and d.binding_id is not null
        order by d.next_attempt_at
        limit batch
        for update skip locked
    ),
    leased as (
        update cfg_private.schedule_dispatches as d set next_attempt_at = now() + lease
        from due where d.occurrence_id = due.occurrence_id
        returning d.*
    )
    select l.occurrence_id, l.binding_id, sb.ref, b.kind, b.config, b.credentials_secret_id, l.format, l.length,
        l.attempts
    from leased as l
    join cfg.secret_bindings as sb on sb.id = l.binding_id
    join cfg.vault_backends as b on b.id = sb.backend_id;
end
$$;
revoke execute on function cfg_private.claim_schedule_dispatches(integer, interval) from public, anon, authenticated;
grant execute on function cfg_private.claim_schedule_dispatches(integer, interval) to service_role;

-- The vaults worker's answer for a dispatched rotation (service role). Done
-- (external_version, and how: RotateSecret, PutSecretValue or a KV v2 write): the
-- occurrence is applied, schedule.applied names the new external version (never the
-- value), and the binding is due now, so the vault sync imports the new version as
-- usual (a version of kind sync). Failed (error_kind, error): an unreachable vault or a
-- lost Vault check-and-set is tried again (5 s, doubling; 5 attempts); anything else,
-- or the fifth failure, fails the occurrence (schedule.failed with the backend's error).
-- security definer: occurrences, dispatches and bindings take no writes from API roles.
create or replace function cfg_private.report_schedule_dispatch(
    occurrence_id uuid, external_version text, error_kind text default null, error text default null,
    method text default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    dispatch cfg_private.schedule_dispatches;
    occ cfg.schedule_occurrences;
    s cfg.schedules;
    binding cfg.secret_bindings;
begin
    perform cfg_private.require_service('report scheduled rotations');
    select * into dispatch from cfg_private.schedule_dispatches as d
    where d.occurrence_id = report_schedule_dispatch.occurrence_id for update;
    if dispatch.occurrence_id is null then
        return;  -- answered already (a lease ran out and another worker did it)
    end if;
    select * into occ from cfg.schedule_occurrences as o where o.id = dispatch.occurrence_id;
    select * into s from cfg.schedules as x where x.id = occ.schedule_id;
    select * into binding from cfg.secret_bindings as sb where sb.id = dispatch.binding_id;
    if external_version is null and error_kind in ('unreachable', 'conflict') and dispatch.attempts < 4 then
        update cfg_private.schedule_dispatches as d
        set attempts = d.attempts + 1, last_error = left(report_schedule_dispatch.error, 500),
            next_attempt_at = now() + interval '5 seconds' * power(2, d.attempts)
        where d.occurrence_id = dispatch.occurrence_id;
        return;
    end if;
    delete from cfg_private.schedule_dispatches as d where d.occurrence_id = dispatch.occurrence_id;
    if external_version is null then
        perform cfg_private.finish_occurrence(
            s, occ, 'failed', now(), occ.outcome || jsonb_build_object('error_kind', error_kind),
            format('%s did not rotate: %s', coalesce(binding.ref, 'the external vault'), left(error, 500))
        );
        return;
    end if;
    perform cfg_private.finish_occurrence(
        s, occ, 'applied', now(),
        occ.outcome - 'dispatched' || jsonb_build_object('external_version', external_version, 'method', method), null
    );
    update cfg.secret_bindings as sb set next_check_at = now() where sb.id = binding.id and sb.status <> 'conflict';
    perform pg_notify('cfgctl_vault_sync', '');
end
$$;
revoke execute on function cfg_private.report_schedule_dispatch(uuid, text, text, text, text) from public, anon, authenticated;
grant execute on function cfg_private.report_schedule_dispatch(uuid, text, text, text, text) to service_role;

-- The content of the version automation_id runs in environment env (null: none).
create or replace function cfg_private.deployed_content(automation_id uuid, env text)
returns jsonb
language sql stable
set search_path = ''
as $$
    select v.content from cfg.deployments as d
    join cfg.config_versions as v on v.id = d.version_id
    join cfg.environments as e on e.id = d.environment_id
    where d.automation_id = deployed_content.automation_id and e.slug = env
$$;
revoke execute on function cfg_private.deployed_content(uuid, text) from public, anon;
grant execute on function cfg_private.deployed_content(uuid, text) to authenticated, service_role;

-- What an occurrence would change, against today's config: [{section, key, from, to}]
-- for a patch, {from, to} for a status, a diff of versions for the others (a
-- promotion's revert: back to what its target ran before). A rotation shows its key
-- only. security invoker: the caller reads under RLS.
create or replace function cfg_private.occurrence_preview(s cfg.schedules, occ cfg.schedule_occurrences)
returns jsonb
language plpgsql stable
set jit = off
set search_path = ''
as $$
declare
    head jsonb := coalesce((cfg_private.current_version(s.automation_id)).content, '{"sections": {}}');
    keys jsonb;
    wanted jsonb;
    done jsonb;
begin
    if s.action = 'patch' then
        keys := cfg_private.patch_keys(s.change);
        wanted := case when occ.phase = 'apply'
            then cfg_private.patch_result(s.change)
            else coalesce((select o.outcome -> 'before' from cfg.schedule_occurrences as o where o.id = occ.apply_id),
                          s.change -> 'before')
        end;
        return (
            select coalesce(jsonb_agg(jsonb_build_object(
                'section', sec.key, 'key', k.key,
                'from', head -> 'sections' -> sec.key -> 'entries' -> k.key -> 'value', 'to', k.value
            ) order by sec.key, k.key), '[]')
            from jsonb_each(wanted) as sec, jsonb_each(sec.value) as k
        );
    elsif s.action = 'status' then
        return jsonb_build_object(
            'from', (select a.status from cfg.automations as a where a.id = s.automation_id),
            'to', case when occ.phase = 'apply' then s.change -> 'status' else to_jsonb('the status before the start'::text) end
        );
    elsif s.action = 'rotate' then
        return jsonb_build_object('section', s.change -> 'section', 'key', s.change -> 'key', 'rotates', true);
    elsif s.action = 'promote' then
        -- The apply moves "to" from what it runs to what "from" runs; the revert moves it
        -- back to what it ran before the start (before the start: what it runs now).
        select o.outcome into done from cfg.schedule_occurrences as o where o.id = occ.apply_id and o.status = 'applied';
        if occ.phase = 'apply' then
            head := cfg_private.deployed_content(s.automation_id, s.change ->> 'to');
            wanted := cfg_private.deployed_content(s.automation_id, s.change ->> 'from');
        elsif done is null then
            head := cfg_private.deployed_content(s.automation_id, s.change ->> 'from');
            wanted := cfg_private.deployed_content(s.automation_id, s.change ->> 'to');
        else
            head := (select v.content from cfg.config_versions as v where v.id = (done ->> 'version_id')::uuid);
            wanted := (select v.content from cfg.config_versions as v where v.id = (done ->> 'previous_version_id')::uuid);
        end if;
        return cfg_private.diff_contents(coalesce(head, '{"sections": {}}'), coalesce(wanted, '{"sections": {}}'));
    elsif occ.phase = 'revert' then
        return jsonb_build_object('reverts', 'to the version before the start of the window');
    elsif s.action = 'content' then
        return cfg_private.diff_contents(head, s.change -> 'content');
    end if;
    return cfg_private.diff_contents(head, (
        select v.content from cfg.config_versions as v
        where v.automation_id = s.automation_id and v.version = (s.change ->> 'version')::integer
    ));
end
$$;
revoke execute on function cfg_private.occurrence_preview(cfg.schedules, cfg.schedule_occurrences) from public, anon;
grant execute on function cfg_private.occurrence_preview(cfg.schedules, cfg.schedule_occurrences)
to authenticated, service_role;

-- The occurrences of org_id's schedules due between "from" and "to" (members), in
-- time order: upcoming ones with a preview of what each would change against today's
-- config; past ones with their outcome, lateness and the version or deployment made.
-- Filters: one automation, one environment (the one a schedule deploys to).
-- Occurrences of cron schedules exist as far as the schedules worker wrote them. At
-- most 10,000 rows: narrow the range for more.
create or replace function cfg.schedule_timeline(
    org_id uuid,
    "from" timestamptz default now() - interval '1 day',
    "to" timestamptz default now() + interval '14 days',
    automation_id uuid default null,
    env text default null
)
returns table (
    due_at timestamptz, phase text, status text, occurrence_id uuid, schedule_id uuid, automation text, action text, environment text, message text, author_email text, preview jsonb,
    applied_at timestamptz, lateness interval, error text, version integer, outcome jsonb
)
language plpgsql stable
set jit = off
set search_path = ''
as $$
begin
    perform cfg_private.require_role(schedule_timeline.org_id, 'viewer', 'reading the schedule timeline');
    if "from" is null or "to" is null or "to" < "from" then
        perform cfg_private.schedule_invalid('to', 'from and to are given, to after from');
    end if;
    return query
    select
        o.due_at, o.phase, o.status, o.id, s.id, a.slug, s.action, e.slug, s.message, s.author_email,
        case when o.status = 'pending' then cfg_private.occurrence_preview(s, o) end,
        o.applied_at, o.lateness, o.error, o.version, o.outcome
    from cfg.schedule_occurrences as o
    join cfg.schedules as s on s.id = o.schedule_id
    join cfg.automations as a on a.id = s.automation_id
    left join lateral cfg_private.schedule_environment(s) as e on true
    where o.org_id = schedule_timeline.org_id and o.due_at >= "from" and o.due_at <= "to"
        and (schedule_timeline.automation_id is null or o.automation_id = schedule_timeline.automation_id)
        and (env is null or e.slug = env)
    order by o.due_at, o.phase, s.id
    limit 10000;
end
$$;
revoke execute on function cfg.schedule_timeline(uuid, timestamptz, timestamptz, uuid, text) from public, anon;
grant execute on function cfg.schedule_timeline(uuid, timestamptz, timestamptz, uuid, text) to authenticated, service_role;
