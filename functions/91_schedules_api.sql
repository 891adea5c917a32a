-- =============================================================================
-- Schedules, the RPCs (SECURITY INVOKER; the writes are the definer helpers' of
-- 90_schedules.sql and here): add, edit, pause, resume, cancel, approve, list; and
-- the events every change of a schedule emits.
-- =============================================================================

-- Pauses (active -> paused), resumes (paused -> active) or cancels a schedule
-- (editors). Resuming skips what came due while paused; cancelling drops what is
-- pending. PT409 from any other state.
-- security definer: API roles only read schedules; the role is checked first.
create or replace function cfg_private.set_schedule_state(schedule_id uuid, wanted text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    s cfg.schedules := cfg_private.schedule_for(schedule_id, 'editor', wanted || ' a schedule');
    allowed text[] := case wanted
        when 'pause' then array['active']
        when 'resume' then array['paused']
        else array['active', 'paused', 'invalid']
    end;
begin
    if not s.state = any(allowed) then
        raise exception 'cannot % a schedule that is %', wanted, s.state
            using errcode = 'PT409', detail = jsonb_build_object('schedule_id', s.id, 'state', s.state)::text;
    end if;
    update cfg.schedules as x
    set state = case wanted when 'pause' then 'paused' when 'resume' then 'active' else 'cancelled' end
    where x.id = s.id;
    if wanted = 'resume' then
        update cfg.schedule_occurrences as o
        set status = 'skipped', error = 'the schedule was paused when this came due', applied_at = now(),
            lateness = now() - o.due_at
        where o.schedule_id = s.id and o.status = 'pending' and o.due_at <= now();
    elsif wanted = 'cancel' then
        delete from cfg.schedule_occurrences as o where o.schedule_id = s.id and o.status = 'pending';
    end if;
    return s.id;
end
$$;
revoke execute on function cfg_private.set_schedule_state(uuid, text) from public, anon;
grant execute on function cfg_private.set_schedule_state(uuid, text) to authenticated, service_role;

-- Approves a schedule's exact change (admins other than its author): it is armed
-- while its change hash stays the one approved; an edit resets the approval.
-- security definer: API roles only read schedules; the role is checked first.
create or replace function cfg_private.approve_schedule(schedule_id uuid)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    s cfg.schedules := cfg_private.schedule_for(schedule_id, 'admin', 'approving a schedule');
    env cfg.environments := cfg_private.schedule_environment(s);
    actor record := cfg_private.current_actor();
begin
    if not coalesce(env.requires_approval, false) then
        raise exception 'this schedule needs no approval: % does not require one', coalesce(env.slug, 'a status change')
            using errcode = 'PT409', detail = jsonb_build_object('schedule_id', s.id, 'environment', env.slug)::text;
    end if;
    if s.state not in ('active', 'paused') then
        raise exception 'cannot approve a schedule that is %', s.state
            using errcode = 'PT409', detail = jsonb_build_object('schedule_id', s.id, 'state', s.state)::text;
    end if;
    if actor.actor_id is not distinct from s.author_id then
        raise exception 'another admin must approve: you are this schedule''s author'
            using errcode = 'PT403', detail = jsonb_build_object('schedule_id', s.id, 'author_id', s.author_id)::text;
    end if;
    update cfg.schedules as x
    set approved_hash = x.change_hash, approved_by = actor.actor_id, approved_by_email = actor.actor_email,
        approved_at = now()
    where x.id = s.id;
    return s.id;
end
$$;
revoke execute on function cfg_private.approve_schedule(uuid) from public, anon;
grant execute on function cfg_private.approve_schedule(uuid) to authenticated, service_role;

-- An org's schedules (members; automation: its slug), newest first: those still open, or all with
-- include_finished; one of them with schedule_id. armed: active and, where its environment requires approval,
-- approved for its current change.
create or replace function cfg.list_schedules(
    org_id uuid, automation_id uuid default null, include_finished boolean default false, schedule_id uuid default null
)
returns table (
    id uuid, automation text, action text, change jsonb, message text,
    run_at timestamptz, cron text, timezone text, until timestamptz, max_runs integer, revert_after interval,
    missed text, max_lateness interval, force boolean, state text, error text, environment text,
    needs_approval boolean, approved_by_email text, armed boolean, next_due_at timestamptz,
    author_id uuid, author_email text, created_at timestamptz, updated_at timestamptz
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_schedules.org_id, 'viewer', 'listing schedules');
    return query
    select
        s.id, a.slug, s.action, s.change, s.message, s.run_at, s.cron, s.timezone, s.until,
        s.max_runs, s.revert_after, s.missed, s.max_lateness, s.force, s.state, s.error, e.slug,
        coalesce(e.requires_approval, false), case when s.approved_hash = s.change_hash then s.approved_by_email end,
        s.state = 'active' and (not coalesce(e.requires_approval, false) or s.approved_hash = s.change_hash),
        (select min(o.due_at) from cfg.schedule_occurrences as o where o.schedule_id = s.id and o.status = 'pending'),
        s.author_id, s.author_email, s.created_at, s.updated_at
    from cfg.schedules as s
    join cfg.automations as a on a.id = s.automation_id
    left join lateral cfg_private.schedule_environment(s) as e on true
    where s.org_id = list_schedules.org_id
        and (list_schedules.automation_id is null or s.automation_id = list_schedules.automation_id)
        and (include_finished or s.state in ('active', 'paused', 'invalid'))
        and (list_schedules.schedule_id is null or s.id = list_schedules.schedule_id)
    order by s.created_at desc, s.id;
end
$$;
revoke execute on function cfg.list_schedules(uuid, uuid, boolean, uuid) from public, anon;
grant execute on function cfg.list_schedules(uuid, uuid, boolean, uuid) to authenticated, service_role;

-- One schedule as list_schedules shows it. Volatile: it reads what the RPC calling it
-- just wrote (a stable function would see the statement's snapshot, from before).
create or replace function cfg_private.schedule_json(schedule_id uuid)
returns jsonb
language sql volatile
set search_path = ''
as $$
    select jsonb_build_object('automation_id', s.automation_id) || to_jsonb(l)
    from cfg.schedules as s, cfg.list_schedules(s.org_id, null, true, s.id) as l
    where s.id = schedule_id and l.id = s.id
$$;
revoke execute on function cfg_private.schedule_json(uuid) from public, anon;
grant execute on function cfg_private.schedule_json(uuid) to authenticated, service_role;

-- Schedules a change of automation_id (editors). change: {"action": "patch", "set":
-- {...}, "unset": {...}} | {"action": "content", "content": {...}} | {"action":
-- "rollback", "version": N} | {"action": "promote", "from": "staging", "to": "prod"} |
-- {"action": "status", "status": "paused"} | {"action": "rotate", "section": …,
-- "key": …, "format": "hex", "length": 32}. When: at (a wall time in timezone) or cron
-- (+ until, max_runs). A window: revert_at (one-off) or revert_after (an interval).
create or replace function cfg.add_schedule(
    automation_id uuid,
    change jsonb,
    at timestamp default null,
    cron text default null,
    timezone text default 'UTC',
    until timestamp default null,
    max_runs integer default null,
    revert_at timestamp default null,
    revert_after interval default null,
    missed text default 'run_late',
    max_lateness interval default '1 hour',
    force boolean default false,
    message text default ''
)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.schedule_json(cfg_private.put_schedule(null, add_schedule.automation_id, jsonb_build_object(
        'change', change, 'at', at, 'cron', cron, 'timezone', timezone, 'until', until, 'max_runs', max_runs,
        'revert_at', revert_at, 'revert_after', revert_after::text, 'missed', missed, 'max_lateness', max_lateness::text,
        'force', force, 'message', message
    )));
end
$$;
revoke execute on function cfg.add_schedule(
    uuid, jsonb, timestamp, text, text, timestamp, integer, timestamp, interval, text, interval, boolean, text
) from public, anon;
grant execute on function cfg.add_schedule(
    uuid, jsonb, timestamp, text, text, timestamp, integer, timestamp, interval, text, interval, boolean, text
) to authenticated, service_role;

-- Edits a schedule (editors): fields has add_schedule's argument names; those given
-- replace the schedule's (null clears). Resets the approval; the caller becomes the author.
create or replace function cfg.edit_schedule(schedule_id uuid, fields jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.schedule_json(cfg_private.put_schedule(schedule_id, null, fields));
end
$$;
revoke execute on function cfg.edit_schedule(uuid, jsonb) from public, anon;
grant execute on function cfg.edit_schedule(uuid, jsonb) to authenticated, service_role;

create or replace function cfg.pause_schedule(schedule_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.schedule_json(cfg_private.set_schedule_state(schedule_id, 'pause'));
end
$$;
revoke execute on function cfg.pause_schedule(uuid) from public, anon;
grant execute on function cfg.pause_schedule(uuid) to authenticated, service_role;

create or replace function cfg.resume_schedule(schedule_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.schedule_json(cfg_private.set_schedule_state(schedule_id, 'resume'));
end
$$;
revoke execute on function cfg.resume_schedule(uuid) from public, anon;
grant execute on function cfg.resume_schedule(uuid) to authenticated, service_role;

create or replace function cfg.cancel_schedule(schedule_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.schedule_json(cfg_private.set_schedule_state(schedule_id, 'cancel'));
end
$$;
revoke execute on function cfg.cancel_schedule(uuid) from public, anon;
grant execute on function cfg.cancel_schedule(uuid) to authenticated, service_role;

create or replace function cfg.approve_schedule(schedule_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.schedule_json(cfg_private.approve_schedule(schedule_id));
end
$$;
revoke execute on function cfg.approve_schedule(uuid) from public, anon;
grant execute on function cfg.approve_schedule(uuid) to authenticated, service_role;

-- schedule.created / updated / approved / paused / resumed / cancelled / completed /
-- invalid, from each change of a schedule row (the worker's bookkeeping emits none).
-- security definer: the outbox takes no writes from API roles.
create or replace function cfg_private.schedule_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    kind text;
begin
    if tg_op = 'INSERT' then
        kind := 'created';
    elsif new.state is distinct from old.state then
        kind := case
            when new.state = 'paused' then 'paused' when old.state = 'paused' and new.state = 'active' then 'resumed'
            when new.state = 'active' then 'updated' else new.state
        end;
    elsif new.change_hash is distinct from old.change_hash or new.message is distinct from old.message
        or new.missed is distinct from old.missed or new.max_lateness is distinct from old.max_lateness then
        kind := 'updated';
    elsif new.approved_hash is not null and new.approved_hash is distinct from old.approved_hash then
        kind := 'approved';
    else
        return null;
    end if;
    perform cfg_private.emit_event(
        new.org_id, 'schedule.' || kind, 'schedule', new.id, new.automation_id,
        jsonb_build_object(
            'schedule_id', new.id, 'action', new.action, 'state', new.state, 'run_at', new.run_at, 'cron', new.cron,
            'timezone', new.timezone, 'revert_after', new.revert_after::text, 'author_email', new.author_email,
            'error', new.error, 'message', new.message
        )
    );
    return null;
end
$$;
revoke execute on function cfg_private.schedule_event() from public, anon, authenticated, service_role;

create or replace trigger schedule_event after insert or update on cfg.schedules
for each row execute function cfg_private.schedule_event();

select cfg_private.register_table('cfg.schedules');
select cfg_private.register_table('cfg.schedule_occurrences');
