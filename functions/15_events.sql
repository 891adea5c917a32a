-- =============================================================================
-- Outbox: cfg_private.events is written in the changing transaction and read by
-- the sync service, which is woken by NOTIFY (delivered only on commit).
-- =============================================================================

-- Appends one event (the notify trigger below wakes listeners). security definer: API
-- roles cannot write cfg_private. Not executable by authenticated: a user could
-- otherwise forge events (say a promotion.applied that a CI webhook acts on); only the
-- security-definer triggers and RPCs below and in the feature files call it, after
-- their own checks.
create or replace function cfg_private.emit_event(
    org_id uuid,
    event_type text,
    subject_type text,
    subject_id uuid,
    automation_id uuid,
    payload jsonb,
    environment_id uuid default null
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
    event_id bigint;
begin
    insert into cfg_private.events (
        org_id, type, subject_type, subject_id, automation_id, environment_id, payload,
        actor_id, actor_email
    )
    values (
        emit_event.org_id, event_type, emit_event.subject_type, emit_event.subject_id,
        emit_event.automation_id, emit_event.environment_id, coalesce(payload, '{}'::jsonb),
        actor.actor_id, actor.actor_email
    )
    returning id into event_id;
    return event_id;
end
$$;
revoke execute on function cfg_private.emit_event(uuid, text, text, uuid, uuid, jsonb, uuid)
from public, anon, authenticated;
grant execute on function cfg_private.emit_event(uuid, text, text, uuid, uuid, jsonb, uuid) to service_role;

-- Every event wakes the listeners (the webhook dispatcher) with its id, on commit: one
-- notification per event, whichever statement appended it.
-- security definer: runs as the owner whoever appends. Executable by nobody.
create or replace function cfg_private.notify_events()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform pg_notify('cfgctl_events', e.id::text) from new_events as e order by e.id;
    return null;
end
$$;
revoke execute on function cfg_private.notify_events() from public, anon, authenticated, service_role;

create or replace trigger notify after insert on cfg_private.events
referencing new table as new_events
for each statement execute function cfg_private.notify_events();

-- The elements of types that are not known event types (null when all are).
-- security definer: the list lives in cfg_private; webhook endpoints (admins) and the
-- outbox (check_event_types below) check names against it.
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

-- Every event's type is in the catalogue (cfg_private.event_types): checked for the
-- statement's rows at once, as a foreign key would check each row with a query of its own
-- (migrations/20261206000100_events_type_checked_per_statement.sql).
-- security definer: runs as the owner whoever appends. Executable by nobody.
create or replace function cfg_private.check_event_types()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    unknown text [] := cfg_private.unknown_event_types(array(select distinct e.type from new_events as e));
begin
    if unknown is not null then
        raise exception 'event type % is not in cfg_private.event_types', quote_literal(unknown[1])
            using errcode = '23503', detail = jsonb_build_object('type', unknown[1])::text;
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.check_event_types() from public, anon, authenticated, service_role;

create or replace trigger check_type after insert on cfg_private.events
referencing new table as new_events
for each statement execute function cfg_private.check_event_types();

-- A registered type stays: the outbox and webhook endpoints' filters name it.
-- Executable by nobody.
create or replace function cfg_private.keep_event_types()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'UPDATE' and new.type = old.type then
        return new;
    end if;
    raise exception 'event type % is registered for good: it cannot be deleted or renamed', quote_literal(old.type)
        using errcode = '23503', detail = jsonb_build_object('type', old.type)::text;
end
$$;
revoke execute on function cfg_private.keep_event_types() from public, anon, authenticated, service_role;

create or replace trigger keep_registered before delete or update of type on cfg_private.event_types
for each row execute function cfg_private.keep_event_types();

-- automation.created / updated / deleted, one per row written, as the same statement's
-- one INSERT (statement-level: a bulk change of thousands of rows appends its events
-- at once, bench/bench_bulk.py). The payload is the row ({"automation": row}).
-- security definer: API roles cannot write the outbox. Executable by nobody (see the
-- revoke below each trigger function): attached to a temp table, it would forge
-- events for any org.
create or replace function cfg_private.automation_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
begin
    -- Straight from the transition table (no array of rows in between). The row goes in as
    -- a record: the JSON of to_jsonb(row), without building it apart and copying it in
    -- (a quarter of the payload's cost).
    if tg_op = 'DELETE' then
        insert into cfg_private.events (org_id, type, subject_type, subject_id, automation_id, payload, actor_id, actor_email)
        select o.org_id, 'automation.deleted', 'automation', o.id, o.id, jsonb_build_object('automation', o),
            actor.actor_id, actor.actor_email
        from old_rows as o;
    else
        insert into cfg_private.events (org_id, type, subject_type, subject_id, automation_id, payload, actor_id, actor_email)
        select n.org_id, case tg_op when 'INSERT' then 'automation.created' else 'automation.updated' end, 'automation',
            n.id, n.id, jsonb_build_object('automation', n), actor.actor_id, actor.actor_email
        from new_rows as n;
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.automation_event() from public, anon, authenticated, service_role;

-- The row-level trigger these replaced. The update trigger names the old rows too, unread
-- (the audit trigger captures them anyway), so that one trigger names both tables for
-- plpgsql_check (tests/platform/test_static.py).
drop trigger if exists emit_event on cfg.automations;
create or replace trigger emit_event_insert after insert on cfg.automations
referencing new table as new_rows
for each statement execute function cfg_private.automation_event();
create or replace trigger emit_event_update after update on cfg.automations
referencing old table as old_rows new table as new_rows
for each statement execute function cfg_private.automation_event();
create or replace trigger emit_event_delete after delete on cfg.automations
referencing old table as old_rows
for each statement execute function cfg_private.automation_event();

-- security definer: it calls emit_event, which API roles may not call directly.
create or replace function cfg_private.member_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    row_data cfg.org_members := case when tg_op = 'DELETE' then old else new end;
begin
    if tg_op = 'UPDATE' and old.role = new.role then
        return null;
    end if;
    perform cfg_private.emit_event(
        row_data.org_id,
        'member.' || case tg_op when 'INSERT' then 'added' when 'UPDATE' then 'role_changed' else 'removed' end,
        'member', row_data.user_id, null,
        jsonb_build_object(
            'user_id', row_data.user_id,
            'role', row_data.role,
            'previous_role', case when tg_op = 'UPDATE' then old.role end
        )
    );
    return null;
end
$$;
revoke execute on function cfg_private.member_event() from public, anon, authenticated, service_role;

create or replace trigger emit_event after insert or update or delete on cfg.org_members
for each row execute function cfg_private.member_event();
