-- =============================================================================
-- Schedules, the model and the RPCs: what a schedule changes, when, its window, its
-- approval; add, edit, pause, resume, cancel, approve, list. Editors schedule, admins
-- approve. Writes go through the definer helpers here (members only read the tables),
-- each checking the caller's role itself. Tables: migrations/20261201030000_schedules.sql.
-- The tick that applies occurrences: 91_schedules_run.sql; the timeline: 92.
-- =============================================================================

-- PT422 with detail.errors [{path, message}]: one problem of a schedule's input.
create or replace function cfg_private.schedule_invalid(path text, message text)
returns void
language plpgsql
set search_path = ''
as $$
begin
    raise exception '%', message
        using errcode = 'PT422',
              detail = jsonb_build_object('errors', jsonb_build_array(jsonb_build_object('path', path, 'message', message)))::text;
end
$$;
revoke execute on function cfg_private.schedule_invalid(text, text) from public, anon;
grant execute on function cfg_private.schedule_invalid(text, text) to authenticated, service_role;

-- {section: {key: value or null}} for keys {section: [key, …]} of content (a snapshot or
-- content as save_config takes it: both keep a plain value under "value").
create or replace function cfg_private.key_values(content jsonb, keys jsonb)
returns jsonb
language sql immutable
set search_path = ''
as $$
    select coalesce(jsonb_object_agg(s.key, (
        select jsonb_object_agg(k.key, coalesce(content -> 'sections' -> s.key -> 'entries' -> k.key -> 'value', 'null'))
        from jsonb_array_elements_text(s.value) as k (key)
    )), '{}'::jsonb)
    from jsonb_each(keys) as s
$$;
revoke execute on function cfg_private.key_values(jsonb, jsonb) from public, anon;
grant execute on function cfg_private.key_values(jsonb, jsonb) to authenticated, service_role;

-- The keys a patch touches, {section: [key, …]}: those of set and of unset.
create or replace function cfg_private.patch_keys(change jsonb)
returns jsonb
language sql immutable
set search_path = ''
as $$
    select coalesce(jsonb_object_agg(t.section, t.keys), '{}'::jsonb)
    from (
        select k.section, jsonb_agg(distinct k.key) as keys
        from (
            select s.key as section, e.key
            from jsonb_each(coalesce(change -> 'set', '{}')) as s, jsonb_object_keys(s.value) as e (key)
            union
            select s.key, e.key
            from jsonb_each(coalesce(change -> 'unset', '{}')) as s, jsonb_array_elements_text(s.value) as e (key)
        ) as k
        group by k.section
    ) as t
$$;
revoke execute on function cfg_private.patch_keys(jsonb) from public, anon;
grant execute on function cfg_private.patch_keys(jsonb) to authenticated, service_role;

-- The values a patch leaves its keys with, as key_values gives them (unset: null).
create or replace function cfg_private.patch_result(change jsonb)
returns jsonb
language sql immutable
set search_path = ''
as $$
    select cfg_private.key_values(
        jsonb_build_object('sections', coalesce((
            select jsonb_object_agg(s.key, jsonb_build_object('entries', s.value))
            from jsonb_each(coalesce(change -> 'set', '{}')) as s
        ), '{}'::jsonb)),
        cfg_private.patch_keys(change)
    )
$$;
revoke execute on function cfg_private.patch_result(jsonb) from public, anon;
grant execute on function cfg_private.patch_result(jsonb) to authenticated, service_role;

-- The environment a schedule deploys to: a promotion's target, else the first of the
-- pipeline (where saves and rollbacks land); none for a status change.
create or replace function cfg_private.schedule_environment(s cfg.schedules)
returns cfg.environments
language sql stable
set search_path = ''
as $$
    select e.* from cfg.environments as e
    where e.org_id = s.org_id and s.action <> 'status'
        and (s.action <> 'promote' or e.slug = s.change ->> 'to')
    order by e.position
    limit 1
$$;
revoke execute on function cfg_private.schedule_environment(cfg.schedules) from public, anon;
grant execute on function cfg_private.schedule_environment(cfg.schedules) to authenticated, service_role;

-- Checks a change ({"action": …, …}) for target and returns it normalised, without
-- "action"; a patch gets "before", the values its keys hold now.
create or replace function cfg_private.schedule_change(target cfg.automations, change jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    action text := change ->> 'action';
    head jsonb := coalesce((cfg_private.current_version(target.id)).content, '{"sections": {}}');
    secret_keys text[];
begin
    if jsonb_typeof(change) is distinct from 'object'
        or action is null or action not in ('patch', 'content', 'rollback', 'promote', 'status', 'rotate') then
        perform cfg_private.schedule_invalid('change.action', 'change.action is one of patch, content, rollback, promote, status, rotate');
    end if;
    change := change - 'action';
    select array_agg(s.key || '.' || e.key) into secret_keys
    from jsonb_each(head -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
    where (e.value -> 'secret') = 'true'::jsonb;
    if action = 'patch' then
        if jsonb_typeof(coalesce(change -> 'set', '{}')) <> 'object' or jsonb_typeof(coalesce(change -> 'unset', '{}')) <> 'object'
            or exists (select 1 from jsonb_each(coalesce(change -> 'set', '{}')) as s where jsonb_typeof(s.value) <> 'object')
            or exists (select 1 from jsonb_each(coalesce(change -> 'unset', '{}')) as s where jsonb_typeof(s.value) <> 'array')
            or exists (
                select 1 from jsonb_each(coalesce(change -> 'set', '{}')) as s, jsonb_each(s.value) as e
                where jsonb_typeof(e.value) <> 'object' or not e.value ? 'value'
            ) then
            perform cfg_private.schedule_invalid('change.set', 'a patch is {"set": {"<section>": {"<key>": {"value": …}}}, "unset": {"<section>": ["<key>", …]}}');
        end if;
        if cfg_private.patch_keys(change) = '{}'::jsonb then
            perform cfg_private.schedule_invalid('change.set', 'a patch sets or unsets at least one key');
        end if;
        -- A schedule keeps its change in plain rows: no secret values, and no secret keys
        -- (their values could not be compared); rotate secrets with the rotate action.
        if exists (
            select 1 from jsonb_each(coalesce(change -> 'set', '{}')) as s, jsonb_each(s.value) as e
            where (e.value -> 'secret') = 'true'::jsonb
        ) or exists (
            select 1 from jsonb_each(cfg_private.patch_keys(change)) as s, jsonb_array_elements_text(s.value) as k (key)
            where s.key || '.' || k.key = any(coalesce(secret_keys, '{}'))
        ) then
            perform cfg_private.schedule_invalid('change.set', 'a scheduled patch cannot touch secrets; schedule a rotation instead');
        end if;
        change := jsonb_build_object(
            'set', coalesce(change -> 'set', '{}'), 'unset', coalesce(change -> 'unset', '{}'),
            'before', cfg_private.key_values(head, cfg_private.patch_keys(change))
        );
    elsif action = 'content' then
        perform cfg_private.require_valid_content(change -> 'content');
        if exists (
            select 1 from jsonb_each(change -> 'content' -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
            where (e.value -> 'secret') = 'true'::jsonb and e.value ? 'value'
        ) then
            perform cfg_private.schedule_invalid('change.content', 'scheduled content cannot carry secret values; leave them out ({"secret": true}) to keep the current ones');
        end if;
        change := jsonb_build_object('content', change -> 'content');
    elsif action = 'rollback' then
        if jsonb_typeof(change -> 'version') <> 'number' or not exists (
            select 1 from cfg.config_versions as v where v.automation_id = target.id and v.version = (change ->> 'version')::integer
        ) then
            perform cfg_private.schedule_invalid('change.version', 'a rollback names an existing version of this automation');
        end if;
        change := jsonb_build_object('version', (change ->> 'version')::integer);
    elsif action = 'promote' then
        perform cfg_private.environment_by_slug(target.org_id, change ->> 'from');
        perform cfg_private.environment_by_slug(target.org_id, change ->> 'to');
        change := jsonb_build_object('from', change ->> 'from', 'to', change ->> 'to');
    elsif action = 'status' then
        if coalesce(change ->> 'status', '') not in ('active', 'paused', 'archived') then
            perform cfg_private.schedule_invalid('change.status', 'status is one of active, paused, archived');
        end if;
        change := jsonb_build_object('status', change ->> 'status');
    else
        if not (change ->> 'section') || '.' || (change ->> 'key') = any(coalesce(secret_keys, '{}')) then
            perform cfg_private.schedule_invalid('change.key', 'a rotation names a secret entry of this automation (section and key)');
        end if;
        if coalesce(change ->> 'format', 'hex') not in ('hex', 'base64url', 'alphanumeric', 'uuid')
            or coalesce((change ->> 'length')::integer, 32) not between 16 and 128 then
            perform cfg_private.schedule_invalid('change.format', 'format is hex, base64url, alphanumeric or uuid; length 16-128');
        end if;
        change := jsonb_build_object(
            'section', change ->> 'section', 'key', change ->> 'key',
            'format', coalesce(change ->> 'format', 'hex'), 'length', coalesce((change ->> 'length')::integer, 32)
        );
    end if;
    return jsonb_build_object('action', action) || change;
end
$$;
revoke execute on function cfg_private.schedule_change(cfg.automations, jsonb) from public, anon;
grant execute on function cfg_private.schedule_change(cfg.automations, jsonb) to authenticated, service_role;

-- True when PostgreSQL knows the time zone name.
create or replace function cfg_private.known_zone(name text)
returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
    perform now() at time zone name;
    return true;
exception when invalid_parameter_value then
    return false;
end
$$;
revoke execute on function cfg_private.known_zone(text) from public, anon;
grant execute on function cfg_private.known_zone(text) to authenticated, service_role;

-- A schedule row built from fields (the arguments of add_schedule, as JSON), checked.
-- Wall times (at, until, revert_at) are read in the schedule's time zone.
create or replace function cfg_private.schedule_spec(target cfg.automations, fields jsonb)
returns cfg.schedules
language plpgsql
set search_path = ''
as $$
declare
    s cfg.schedules;
    change jsonb := cfg_private.schedule_change(target, fields -> 'change');
    at timestamp;
    field text;
begin
    s.org_id := target.org_id;
    s.automation_id := target.id;
    s.action := change ->> 'action';
    s.change := change - 'action';
    s.timezone := coalesce(fields ->> 'timezone', 'UTC');
    -- An IANA name PostgreSQL knows (pg_timezone_names reads every zone file: 0.2 s a call).
    if s.timezone !~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$' or not cfg_private.known_zone(s.timezone) then
        perform cfg_private.schedule_invalid('timezone', format('unknown time zone %L: use an IANA name such as Europe/Berlin', left(s.timezone, 100)));
    end if;
    foreach field in array array['at', 'until', 'revert_at'] loop
        if fields ->> field is not null and fields ->> field !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$' then
            perform cfg_private.schedule_invalid(field, format('%s is a wall time YYYY-MM-DDTHH:MM[:SS] in the schedule''s time zone', field));
        end if;
    end loop;
    if (fields ->> 'at' is null) = (fields ->> 'cron' is null) then
        perform cfg_private.schedule_invalid('at', 'give exactly one of at (a one-off) and cron (recurring)');
    end if;
    if fields ->> 'at' is not null then
        at := (fields ->> 'at')::timestamp;
        s.run_at := at at time zone s.timezone;
        -- The local time the clocks skip on a spring-forward night names no instant.
        if (s.run_at at time zone s.timezone) <> at then
            perform cfg_private.schedule_invalid('at', format('%s does not exist in %s (the clocks jump forward then)', at, s.timezone));
        end if;
        if s.run_at <= now() then
            perform cfg_private.schedule_invalid('at', format('%s (%s) is in the past', at, s.timezone));
        end if;
        if fields ? 'until' or fields ? 'max_runs' then
            perform cfg_private.schedule_invalid('until', 'until and max_runs are for recurring schedules');
        end if;
    else
        s.cron := btrim(fields ->> 'cron');
        -- The shape here; croniter (the schedules worker) has the last word and marks
        -- the schedule invalid, with its reason, if it refuses the expression.
        if array_length(regexp_split_to_array(s.cron, '\s+'), 1) <> 5
            or s.cron !~* '^[0-9*,/-]+\s+[0-9*,/-]+\s+[0-9*,/?LW-]+\s+([0-9*,/-]+|[a-z*,/-]+)\s+([0-9*,/?L#-]+|[a-z*,/-]+)$'
            -- Values (not steps) within each field's range.
            or exists (
                select 1
                from unnest(regexp_split_to_array(s.cron, '\s+')) with ordinality as f (text, i),
                    regexp_matches(f.text, '(?:^|[,-])(\d+)', 'g') as m
                where m[1]::integer not between (array[0, 0, 1, 1, 0])[f.i] and (array[59, 23, 31, 12, 7])[f.i]
            ) then
            perform cfg_private.schedule_invalid('cron', format('invalid cron expression %L: five fields, minute hour day-of-month month day-of-week', left(s.cron, 100)));
        end if;
        s.until := ((fields ->> 'until')::timestamp) at time zone s.timezone;
        if s.until <= now() then
            perform cfg_private.schedule_invalid('until', 'until is in the past: the schedule would end before it starts');
        end if;
        s.max_runs := (fields ->> 'max_runs')::integer;
        if s.max_runs not between 1 and 100000 then
            perform cfg_private.schedule_invalid('max_runs', 'max_runs is between 1 and 100000');
        end if;
    end if;
    if fields ->> 'revert_at' is not null and fields ->> 'revert_after' is not null then
        perform cfg_private.schedule_invalid('revert_after', 'give revert_at or revert_after, not both');
    end if;
    if fields ->> 'revert_at' is not null then
        if s.run_at is null then
            perform cfg_private.schedule_invalid('revert_at', 'revert_at is for one-off schedules; a recurring one takes revert_after');
        end if;
        s.revert_after := ((fields ->> 'revert_at')::timestamp at time zone s.timezone) - s.run_at;
        if s.revert_after <= interval '0' then
            perform cfg_private.schedule_invalid('revert_at', 'revert_at is before at: the window would end before it starts');
        end if;
    elsif fields ->> 'revert_after' is not null then
        s.revert_after := (fields ->> 'revert_after')::interval;
        if s.revert_after not between interval '1 minute' and interval '366 days' then
            perform cfg_private.schedule_invalid('revert_after', 'a window lasts from a minute to a year');
        end if;
    end if;
    -- A revert of a rotation would bring back the credential the rotation retired.
    if s.revert_after is not null and s.action = 'rotate' then
        perform cfg_private.schedule_invalid('revert_after', 'a rotation has no window: reverting it would bring back the retired credential');
    end if;
    s.missed := coalesce(fields ->> 'missed', 'run_late');
    if s.missed not in ('run_late', 'skip') then
        perform cfg_private.schedule_invalid('missed', 'missed is run_late or skip');
    end if;
    s.max_lateness := coalesce((fields ->> 'max_lateness')::interval, interval '1 hour');
    if s.max_lateness not between interval '0' and interval '7 days' then
        perform cfg_private.schedule_invalid('max_lateness', 'max_lateness is between 0 and 7 days');
    end if;
    s.force := coalesce((fields ->> 'force')::boolean, false);
    s.message := coalesce(fields ->> 'message', '');
    if length(s.message) > 2000 then
        perform cfg_private.schedule_invalid('message', 'message is at most 2000 characters');
    end if;
    s.change_hash := encode(sha256(convert_to(jsonb_build_array(
        s.automation_id, s.action, s.change, s.run_at, s.cron, s.timezone, s.until, s.max_runs, s.revert_after, s.force
    )::text, 'UTF8')), 'hex');
    return s;
exception
    when invalid_datetime_format or datetime_field_overflow or invalid_text_representation or invalid_parameter_value then
        perform cfg_private.schedule_invalid('when', 'unreadable time, interval or number: ' || sqlerrm);
end
$$;
revoke execute on function cfg_private.schedule_spec(cfg.automations, jsonb) from public, anon;
grant execute on function cfg_private.schedule_spec(cfg.automations, jsonb) to authenticated, service_role;

-- The fields a schedule was made from (add_schedule's arguments), for an edit to merge into.
create or replace function cfg_private.schedule_fields(s cfg.schedules)
returns jsonb
language sql stable
set search_path = ''
as $$
    select jsonb_strip_nulls(jsonb_build_object(
        'change', jsonb_build_object('action', s.action) || (s.change - 'before'),
        'at', to_char(s.run_at at time zone s.timezone, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'cron', s.cron, 'timezone', s.timezone,
        'until', to_char(s.until at time zone s.timezone, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'max_runs', s.max_runs, 'revert_after', s.revert_after::text, 'missed', s.missed,
        'max_lateness', s.max_lateness::text, 'force', s.force, 'message', s.message
    ))
$$;
revoke execute on function cfg_private.schedule_fields(cfg.schedules) from public, anon;
grant execute on function cfg_private.schedule_fields(cfg.schedules) to authenticated, service_role;

-- Writes apply occurrences at due_ats (and their reverts, for a window); idempotent.
create or replace function cfg_private.add_occurrences(s cfg.schedules, due_ats timestamptz [])
returns void
language plpgsql
set search_path = ''
as $$
begin
    with applies as (
        insert into cfg.schedule_occurrences (org_id, schedule_id, automation_id, due_at, phase)
        select s.org_id, s.id, s.automation_id, d, 'apply' from unnest(due_ats) as d
        on conflict on constraint schedule_occurrences_once do nothing
        returning id, due_at
    )
    insert into cfg.schedule_occurrences (org_id, schedule_id, automation_id, due_at, phase, apply_id)
    select s.org_id, s.id, s.automation_id, a.due_at + s.revert_after, 'revert', a.id
    from applies as a
    where s.revert_after is not null
    on conflict on constraint schedule_occurrences_once do nothing;
end
$$;
revoke execute on function cfg_private.add_occurrences(cfg.schedules, timestamptz []) from public, anon, authenticated, service_role;

-- The schedule for a member of its org with min_role (locked); PT404 otherwise.
-- security definer: it must see the row to tell a foreign one from a missing one.
create or replace function cfg_private.schedule_for(schedule_id uuid, min_role cfg.org_role, action text)
returns cfg.schedules
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.schedules;
begin
    select * into found from cfg.schedules as s where s.id = schedule_for.schedule_id for update;
    perform cfg_private.require_role_on(found.org_id, min_role, action, 'schedule', 'schedule_id', schedule_id);
    return found;
end
$$;
revoke execute on function cfg_private.schedule_for(uuid, cfg.org_role, text) from public, anon;
grant execute on function cfg_private.schedule_for(uuid, cfg.org_role, text) to authenticated, service_role;

-- Adds (schedule_id null) or edits a schedule (editors). An edit makes the caller its
-- author, resets its approval and replaces its pending occurrences. A one-off's
-- occurrences are written at once; a cron schedule's by the schedules worker.
-- security definer: API roles only read schedules; the role is checked first.
create or replace function cfg_private.put_schedule(schedule_id uuid, automation_id uuid, fields jsonb)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    old cfg.schedules;
    target cfg.automations;
    s cfg.schedules;
    actor record := cfg_private.current_actor();
begin
    if schedule_id is not null then
        old := cfg_private.schedule_for(schedule_id, 'editor', 'editing a schedule');
        if old.state in ('cancelled', 'completed') then
            raise exception 'this schedule is %: add a new one', old.state
                using errcode = 'PT409', detail = jsonb_build_object('schedule_id', old.id, 'state', old.state)::text;
        end if;
        if jsonb_typeof(fields) is distinct from 'object' then
            perform cfg_private.schedule_invalid('fields', 'fields is an object of add_schedule''s arguments');
        end if;
        -- Switching between at and cron drops the other.
        fields := cfg_private.schedule_fields(old)
            - case when fields ? 'cron' then array['at'] when fields ? 'at' then array['cron', 'until', 'max_runs'] else '{}' end
            || fields;
        automation_id := old.automation_id;
    end if;
    target := cfg_private.automation_for(put_schedule.automation_id, 'editor', 'scheduling a change', true);
    if old.id is null and (
        select count(*) from cfg.schedules as x
        where x.automation_id = target.id and x.state in ('active', 'paused', 'invalid')
    ) >= 1000 then
        raise exception 'an automation has at most 1000 open schedules: cancel some first'
            using errcode = 'PT422', detail = jsonb_build_object('automation_id', target.id, 'limit', 1000)::text;
    end if;
    s := cfg_private.schedule_spec(target, jsonb_strip_nulls(fields));
    if actor.actor_id is null then
        raise exception 'a schedule runs as its author: schedule as a signed-in user'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'author')::text;
    end if;
    if old.id is null then
        insert into cfg.schedules (
            org_id, automation_id, action, change, message, run_at, cron, timezone, until, max_runs, revert_after,
            missed, max_lateness, force, change_hash, author_id, author_email, materialised_until
        )
        values (
            s.org_id, s.automation_id, s.action, s.change, s.message, s.run_at, s.cron, s.timezone, s.until, s.max_runs,
            s.revert_after, s.missed, s.max_lateness, s.force, s.change_hash, actor.actor_id, actor.actor_email,
            case when s.run_at is not null then 'infinity'::timestamptz end
        )
        returning * into s;
    else
        update cfg.schedules as x set
            action = s.action, change = s.change, message = s.message, run_at = s.run_at, cron = s.cron,
            timezone = s.timezone, until = s.until, max_runs = s.max_runs, revert_after = s.revert_after,
            missed = s.missed, max_lateness = s.max_lateness, force = s.force, change_hash = s.change_hash,
            approved_hash = null, approved_by = null, approved_by_email = null, approved_at = null,
            author_id = actor.actor_id, author_email = actor.actor_email, error = null,
            state = case when x.state = 'invalid' then 'active' else x.state end,
            materialised_until = case when s.run_at is not null then 'infinity'::timestamptz end
        where x.id = old.id
        returning * into s;
        delete from cfg.schedule_occurrences as o where o.schedule_id = s.id and o.status = 'pending';
    end if;
    if s.run_at is not null then
        perform cfg_private.add_occurrences(s, array[s.run_at]);
    else
        perform pg_notify('cfgctl_schedules', s.id::text);
    end if;
    return s.id;
end
$$;
revoke execute on function cfg_private.put_schedule(uuid, uuid, jsonb) from public, anon;
grant execute on function cfg_private.put_schedule(uuid, uuid, jsonb) to authenticated, service_role;
