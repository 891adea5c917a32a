-- =============================================================================
-- Outbox: cfg_private.events is written in the changing transaction and read by
-- the sync service, which is woken by NOTIFY (delivered only on commit).
-- =============================================================================

-- Appends one event and wakes listeners. security definer: API roles cannot write
-- cfg_private. Not executable by authenticated: a user could otherwise forge events
-- (say a promotion.applied that a CI webhook acts on); only the security-definer
-- triggers and RPCs below and in the feature files call it, after their own checks.
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
    perform pg_notify('cfgctl_events', event_id::text);
    return event_id;
end
$$;
revoke execute on function cfg_private.emit_event(uuid, text, text, uuid, uuid, jsonb, uuid)
from public, anon, authenticated;
grant execute on function cfg_private.emit_event(uuid, text, text, uuid, uuid, jsonb, uuid) to service_role;

-- security definer: it calls emit_event, which API roles may not call directly.
-- Executable by nobody (see the revoke below each trigger function): attached to a
-- temp table, it would forge events for any org.
create or replace function cfg_private.automation_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    row_data cfg.automations := case when tg_op = 'DELETE' then old else new end;
begin
    perform cfg_private.emit_event(
        row_data.org_id,
        'automation.' || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end,
        'automation', row_data.id, row_data.id,
        jsonb_build_object('automation', to_jsonb(row_data))
    );
    return null;
end
$$;
revoke execute on function cfg_private.automation_event() from public, anon, authenticated, service_role;

create or replace trigger emit_event after insert or update or delete on cfg.automations
for each row execute function cfg_private.automation_event();

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
