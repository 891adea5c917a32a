-- =============================================================================
-- Secrets, the API: reveal a value on purpose (checked, audited, an event), and who
-- may. Everything else shows a secret masked. Storage: 08_secrets_store.sql.
-- =============================================================================

-- The value of a secret entry now, or as version `version` captured it. Editors and
-- admins, or admins only where the org says so (cfg.orgs.secret_reveal_role). Each
-- reveal leaves an audit row (operation REVEAL) and a secret.revealed event; neither
-- holds the value. A secret bound by reference is fetched by the sync service: the
-- answer is {"pending": true, "request_id": ...}, collected with cfg.collect_revealed_secret.
-- security definer: it reads Vault, after checking the caller. cfg.reveal_secret is
-- the API; this is its privileged half.
create or replace function cfg_private.reveal_secret(automation_id uuid, section text, key text, version integer)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations;
    actor record := cfg_private.current_actor();
    subject_id uuid;
    found_secret uuid;
    found_member text;
    version_id uuid;
    revealed jsonb;
    by_reference cfg.secret_bindings;
    request_id uuid;
begin
    target := cfg_private.automation_for(reveal_secret.automation_id, 'editor', 'revealing a secret');
    if not cfg_private.is_service() then
        perform cfg_private.require_role(
            target.org_id, (select o.secret_reveal_role from cfg.orgs as o where o.id = target.org_id),
            'revealing a secret'
        );
    end if;
    if reveal_secret.version is null then
        select e.entry_id, e.secret_id, e.member into subject_id, found_secret, found_member
        from cfg_private.secret_entries(target.id) as e
        where e.section = reveal_secret.section and e.key = reveal_secret.key;
    else
        select v.id, vs.secret_id, vs.member into subject_id, found_secret, found_member
        from cfg.config_versions as v
        join cfg_private.version_secrets as vs on vs.version_id = v.id
        where v.automation_id = target.id and v.version = reveal_secret.version
            and vs.section = reveal_secret.section and vs.key = reveal_secret.key;
        version_id := subject_id;
    end if;
    if reveal_secret.version is null then
        select sb.* into by_reference
        from cfg.secret_bindings as sb
        where sb.entry_id = subject_id and sb.mode = 'reference';
    end if;
    if found_secret is null and by_reference.id is null then
        raise exception '%.% is not a secret of this automation%', section, key,
            coalesce(' in version ' || reveal_secret.version, '')
            using errcode = 'PT404',
                  detail = jsonb_build_object(
                      'automation_id', target.id, 'section', section, 'key', key, 'version', reveal_secret.version
                  )::text;
    end if;
    if by_reference.id is not null then
        -- Only the external vault has it: the sync service fetches it for this caller,
        -- who collects it once (cfg.collect_revealed_secret).
        insert into cfg_private.external_reveals (org_id, binding_id, requested_by)
        values (target.org_id, by_reference.id, actor.actor_id)
        returning id into request_id;
        perform pg_notify('cfgctl_vault_sync', '');
    else
        select cfg_private.secret_member_value(sv.value, found_member)::jsonb into revealed
        from cfg_private.secret_values(array[found_secret]) as sv;
    end if;

    insert into cfg.audit_log (
        org_id, automation_id, actor_id, actor_email, actor_role, table_name, row_id, operation, new_values
    )
    values (
        target.org_id, target.id, actor.actor_id, actor.actor_email, actor.actor_role,
        case when version_id is null then 'entry_secrets' else 'config_versions' end, subject_id, 'REVEAL',
        jsonb_build_object('section', section, 'key', key, 'version', reveal_secret.version)
    );
    perform cfg_private.emit_event(
        target.org_id, 'secret.revealed', 'automation', target.id, target.id,
        jsonb_build_object(
            'section', section, 'key', key, 'version', reveal_secret.version, 'version_id', version_id,
            'revealed_by', actor.actor_id, 'revealed_by_email', actor.actor_email
        )
    );
    return jsonb_build_object(
        'automation_id', target.id, 'section', section, 'key', key, 'version', reveal_secret.version,
        'value', revealed
    ) || case when request_id is null then '{}'::jsonb else jsonb_build_object(
        'pending', true, 'request_id', request_id, 'ref', by_reference.ref
    ) end;
end
$$;
revoke execute on function cfg_private.reveal_secret(uuid, text, text, integer) from public, anon;
grant execute on function cfg_private.reveal_secret(uuid, text, text, integer) to authenticated, service_role;

create or replace function cfg.reveal_secret(automation_id uuid, section text, key text, version integer default null)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.reveal_secret(automation_id, section, key, version);
end
$$;
revoke execute on function cfg.reveal_secret(uuid, text, text, integer) from public, anon;
grant execute on function cfg.reveal_secret(uuid, text, text, integer) to authenticated, service_role;

-- The answer to a reveal of a reference-bound secret, for the member who asked, once:
-- {"status": "pending"} until the sync service answered, then {"status": "ready",
-- "value": ...} or {"status": "failed", "error": ...}; the request is gone after that.
-- security definer: reads Vault and the requests (cfg_private).
create or replace function cfg_private.collect_revealed_secret(request_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    request cfg_private.external_reveals;
    answer jsonb;
begin
    select * into request from cfg_private.external_reveals as r
    where r.id = request_id and (r.requested_by = (select auth.uid()) or cfg_private.is_service())
    for update;
    if request.id is null then
        raise exception 'reveal request not found'
            using errcode = 'PT404', detail = jsonb_build_object('request_id', request_id)::text;
    end if;
    if request.status = 'pending' then
        return jsonb_build_object('status', 'pending', 'request_id', request.id);
    end if;
    answer := jsonb_build_object('status', request.status, 'request_id', request.id, 'error', request.error, 'value', (
        select sv.value::jsonb from cfg_private.secret_values(array[request.secret_id]) as sv
    ));
    delete from cfg_private.external_reveals as r where r.id = request.id;
    return answer;
end
$$;
revoke execute on function cfg_private.collect_revealed_secret(uuid) from public, anon;
grant execute on function cfg_private.collect_revealed_secret(uuid) to authenticated, service_role;

-- security invoker: the definer half checks the caller.
create or replace function cfg.collect_revealed_secret(request_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.collect_revealed_secret(request_id);
end
$$;
revoke execute on function cfg.collect_revealed_secret(uuid) from public, anon;
grant execute on function cfg.collect_revealed_secret(uuid) to authenticated, service_role;

-- Who may reveal secret values in org_id: 'editor' (editors and admins, the default)
-- or 'admin'. Admins only.
-- security invoker: the update runs under the caller's row-level rights.
create or replace function cfg.set_secret_reveal_role(org_id uuid, min_role cfg.org_role)
returns cfg.orgs
language plpgsql
set search_path = ''
as $$
declare
    updated cfg.orgs;
begin
    perform cfg_private.require_role(set_secret_reveal_role.org_id, 'admin', 'setting who may reveal secrets');
    if min_role is null or min_role not in ('editor', 'admin') then
        raise exception 'who may reveal secrets is ''editor'' or ''admin'', not %', coalesce(min_role::text, 'null')
            using errcode = 'PT422', detail = jsonb_build_object('min_role', min_role)::text;
    end if;
    update cfg.orgs as o set secret_reveal_role = min_role
    where o.id = set_secret_reveal_role.org_id
    returning * into updated;
    return updated;
end
$$;
revoke execute on function cfg.set_secret_reveal_role(uuid, cfg.org_role) from public, anon;
grant execute on function cfg.set_secret_reveal_role(uuid, cfg.org_role) to authenticated, service_role;

-- The secrets of an automation, masked: where each is, when its value was set, and
-- its rotation policy and due date. Editors and admins (who may see that a secret
-- exists and when it changed; its value stays in Vault).
-- security invoker: entry_secrets is read under the caller's row-level rights.
create or replace function cfg.list_secrets(automation_id uuid)
returns table (
    section text, key text, value_set_at timestamptz, rotate_every interval, expires_at timestamptz,
    rotation_due_at timestamptz, rotation_due boolean
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.automation_for(list_secrets.automation_id, 'editor', 'listing secrets');
    return query
    select
        e.section, e.key, e.value_set_at, e.rotate_every, e.expires_at, e.rotation_due_at, e.rotation_due_at <= now()
    from cfg_private.secret_entries(list_secrets.automation_id) as e
    order by e.section, e.key;
end
$$;
revoke execute on function cfg.list_secrets(uuid) from public, anon;
grant execute on function cfg.list_secrets(uuid) to authenticated, service_role;

-- Sets a secret's rotation policy: rotate every `rotate_every` (a day or more) after
-- its value was set, and/or by `expires_at`; nulls clear them. Editors and admins.
-- security definer: entry_secrets takes no writes from API roles; the role is checked here.
create or replace function cfg_private.set_secret_rotation(
    automation_id uuid, section text, key text, rotate_every interval, expires_at timestamptz
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(
        set_secret_rotation.automation_id, 'editor', 'setting a secret''s rotation'
    );
begin
    if rotate_every < interval '1 day' then
        raise exception 'a rotation period is a day or more, not %', rotate_every
            using errcode = 'PT422', detail = jsonb_build_object('rotate_every', rotate_every::text)::text;
    end if;
    update cfg.entry_secrets as es
    set rotate_every = set_secret_rotation.rotate_every, expires_at = set_secret_rotation.expires_at
    from cfg_private.secret_entries(target.id) as e
    where es.id = e.entry_id and e.section = set_secret_rotation.section and e.key = set_secret_rotation.key;
    if not found then
        raise exception '%.% is not a secret of this automation', section, key
            using errcode = 'PT404',
                  detail = jsonb_build_object('automation_id', target.id, 'section', section, 'key', key)::text;
    end if;
end
$$;
revoke execute on function cfg_private.set_secret_rotation(uuid, text, text, interval, timestamptz) from public, anon;
grant execute on function cfg_private.set_secret_rotation(uuid, text, text, interval, timestamptz)
to authenticated, service_role;

create or replace function cfg.set_secret_rotation(
    automation_id uuid, section text, key text, rotate_every interval default null, expires_at timestamptz default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    perform cfg_private.set_secret_rotation(automation_id, section, key, rotate_every, expires_at);
    return (
        select to_jsonb(s) from cfg.list_secrets(set_secret_rotation.automation_id) as s
        where s.section = set_secret_rotation.section and s.key = set_secret_rotation.key
    );
end
$$;
revoke execute on function cfg.set_secret_rotation(uuid, text, text, interval, timestamptz) from public, anon;
grant execute on function cfg.set_secret_rotation(uuid, text, text, interval, timestamptz)
to authenticated, service_role;

-- Emits secret.rotation_due for every secret past its rotation date (pg_cron, daily).
-- Returns how many. security definer: it reads every org's secrets' policies.
create or replace function cfg_private.flag_due_secret_rotations()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    flagged integer;
begin
    select count(cfg_private.emit_event(
        e.org_id, 'secret.rotation_due', 'automation', a.id, a.id,
        jsonb_build_object(
            'section', e.section, 'key', e.key, 'value_set_at', e.value_set_at,
            'rotate_every', e.rotate_every::text, 'expires_at', e.expires_at, 'due_at', e.rotation_due_at
        )
    ))
    into flagged
    -- Only the automations of orgs where some secret has a policy (entry_secrets_rotation_idx).
    from cfg.automations as a
    cross join lateral cfg_private.secret_entries(a.id) as e
    where a.org_id in (
        select es.org_id from cfg.entry_secrets as es where es.rotate_every is not null or es.expires_at is not null
    )
        and e.rotation_due_at <= now();
    return flagged;
end
$$;
revoke execute on function cfg_private.flag_due_secret_rotations() from public, anon, authenticated;
grant execute on function cfg_private.flag_due_secret_rotations() to service_role;
