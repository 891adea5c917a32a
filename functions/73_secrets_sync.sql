-- =============================================================================
-- External vaults, the sync service's side: what it claims (bindings due, backend
-- tests, reveals of reference-bound secrets), the secrets it needs to act (backend
-- credentials, values to push) and how it reports back (the service key's alone);
-- the conflicts it finds, which admins resolve. The worker: sync_service/workers/vaults.py.
-- =============================================================================

create or replace function cfg_private.require_service(action text)
returns void
language plpgsql stable
set search_path = ''
as $$
begin
    if not cfg_private.is_service() then
        raise exception 'only the sync service may %', action using errcode = '42501';
    end if;
end
$$;
revoke execute on function cfg_private.require_service(text) from public, anon;
grant execute on function cfg_private.require_service(text) to authenticated, service_role;

-- The Vault secret (id and member) a push binding should have written out now: the
-- entry's value for a binding without environment, else the value the version deployed
-- there captured. An entry's Vault id changes with every new value (each save writes a
-- new Vault secret), so the id alone tells whether what was pushed is still current.
create or replace function cfg_private.binding_wanted_secret(binding cfg.secret_bindings)
returns table (secret_id uuid, member text)
language sql stable
set search_path = ''
as $$
    select es.secret_id, es.member
    from cfg.entry_secrets as es
    where binding.environment_id is null and es.id = binding.entry_id
    union all
    select vs.secret_id, vs.member
    from cfg.deployments as d
    join cfg_private.version_secrets as vs on vs.version_id = d.version_id
    join cfg.config_entries as ce on ce.id = binding.entry_id
    join cfg.config_sections as cs on cs.id = ce.section_id
    where binding.environment_id is not null
        and d.automation_id = binding.automation_id and d.environment_id = binding.environment_id
        and vs.section = cs.name and vs.key = ce.key
$$;
revoke execute on function cfg_private.binding_wanted_secret(cfg.secret_bindings) from public, anon, authenticated, service_role;

-- Leases up to batch bindings that are due (next_check_at passed, no open conflict)
-- for lease; each with what the worker needs to act on it.
-- security definer: it reads Vault ids the service may then read.
create or replace function cfg_private.claim_secret_bindings(batch integer, lease interval)
returns table (
    binding_id uuid, org_id uuid, automation_id uuid, mode text, ref text, environment text,
    backend_kind text, backend_config jsonb, credentials_secret_id uuid, external_version text,
    wanted_secret_id uuid, wanted_member text, push_pending boolean, import_next boolean
)
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_service('claim secret bindings');
    return query
    with due as (
        select sb.id
        from cfg.secret_bindings as sb
        where sb.next_check_at <= now() and sb.status <> 'conflict'
        order by sb.next_check_at
        limit batch
        for update skip locked
    ),
    leased as (
        update cfg.secret_bindings as sb
        set next_check_at = now() + lease
        from due
        where sb.id = due.id
        returning sb.*
    )
    select
        l.id, l.org_id, l.automation_id, l.mode, l.ref, env.slug, b.kind, b.config, b.credentials_secret_id,
        l.external_version, w.secret_id, w.member,
        l.mode = 'push' and w.secret_id is not null and w.secret_id is distinct from l.pushed_secret_id,
        l.import_next
    from leased as l
    join cfg.vault_backends as b on b.id = l.backend_id
    left join cfg.environments as env on env.id = l.environment_id
    left join lateral cfg_private.binding_wanted_secret(l::cfg.secret_bindings) as w on true;
end
$$;
revoke execute on function cfg_private.claim_secret_bindings(integer, interval) from public, anon, authenticated;
grant execute on function cfg_private.claim_secret_bindings(integer, interval) to service_role;

-- The plaintext the sync service needs: backend credentials, and the values of secret
-- entries that have a push binding (now or as a deployed version captured them), each
-- by Vault id and member (null for a Vault secret that is one value). Only those
-- members: the other values a save wrote into the same Vault secret stay in it.
-- security definer: it reads Vault.
create or replace function cfg_private.vault_sync_secrets(secret_ids uuid [])
returns table (secret_id uuid, member text, value text)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_service('read vault sync secrets');
    return query
    with wanted as (
        select b.credentials_secret_id as secret_id, null::text as member
        from cfg.vault_backends as b
        where b.credentials_secret_id = any(secret_ids)
        union
        select es.secret_id, es.member
        from cfg.entry_secrets as es
        where es.secret_id = any(secret_ids)
            and exists (select 1 from cfg.secret_bindings as sb where sb.entry_id = es.id and sb.mode = 'push')
        union
        select vs.secret_id, vs.member
        from cfg_private.version_secrets as vs
        join cfg.config_versions as v on v.id = vs.version_id
        where vs.secret_id = any(secret_ids)
            and exists (
                select 1 from cfg.secret_bindings as sb
                where sb.automation_id = v.automation_id and sb.mode = 'push' and sb.environment_id is not null
            )
    )
    select w.secret_id, w.member, cfg_private.secret_member_value(sv.value, w.member)
    from wanted as w
    join cfg_private.secret_values(array(select x.secret_id from wanted as x)) as sv on sv.secret_id = w.secret_id;
end
$$;
revoke execute on function cfg_private.vault_sync_secrets(uuid []) from public, anon, authenticated;
grant execute on function cfg_private.vault_sync_secrets(uuid []) to service_role;

-- Makes the external value the entry's: a reference keeps only its token; a push
-- binding's entry gets a new Vault secret (which is then what the external side
-- holds). Recorded as a version of kind 'sync' (changed keys, no values).
create or replace function cfg_private.import_external_value(binding cfg.secret_bindings, value text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    json_value jsonb := to_jsonb(value);
    new_token text := cfg_private.secret_token(binding.automation_id, json_value);
    held cfg.entry_secrets;
    saved jsonb;
begin
    select * into held from cfg.entry_secrets as es where es.id = binding.entry_id;
    if held.token = new_token and (binding.mode = 'push' or held.secret_id is null) then
        return held.secret_id;  -- the value cfgctl has already
    end if;
    update cfg.entry_secrets as es
    set secret_id = case when binding.mode = 'push' then vault.create_secret(
            json_value::text, null, 'cfgctl: a config secret of automation ' || binding.automation_id
        ) end,
        member = null,
        token = new_token,
        value_set_at = case when held.token = new_token then es.value_set_at else now() end
    where es.id = binding.entry_id
    returning * into held;
    -- A version only when the value changed (a first reference sync may just let go
    -- of the copy cfgctl had).
    saved := cfg_private.record_version(binding.automation_id, binding.org_id, 'external change in ' || binding.ref, 'sync');
    if (saved -> 'created')::boolean then
        perform cfg_private.emit_event(
            binding.org_id, 'secret.synced', 'secret_binding', binding.id, binding.automation_id,
            jsonb_build_object('binding_id', binding.id, 'ref', binding.ref, 'version', saved -> 'version')
        );
    end if;
    return held.secret_id;
end
$$;
revoke execute on function cfg_private.import_external_value(cfg.secret_bindings, text)
from public, anon, authenticated, service_role;

-- The sync service's answer for one claimed binding:
--   'unchanged'  the external version is the one known; nothing to write.
--   'changed'    the external value moved (or was asked for): value imports it.
--   'pushed'     pushed_secret is now written out, as external_version.
--   'conflict'   both sides moved: a conflict record for an admin; the binding waits.
--   'failed'     error_kind/error say why; retried with backoff (5 s doubling, at most 1 h).
-- check_every is when to look again after a success.
-- security definer: bindings, conflicts and versions take no writes from API roles.
create or replace function cfg_private.report_secret_sync(
    binding_id uuid, outcome text, external_version text default null, value text default null,
    pushed_secret uuid default null, error_kind text default null, error text default null,
    check_every interval default '5 minutes'
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    binding cfg.secret_bindings;
    imported uuid;
begin
    perform cfg_private.require_service('report secret syncs');
    select * into binding from cfg.secret_bindings as sb where sb.id = report_secret_sync.binding_id for update;
    if binding.id is null then
        return;  -- unbound meanwhile
    end if;
    if outcome = 'failed' then
        update cfg.secret_bindings as sb
        set status = 'error', error_kind = report_secret_sync.error_kind, last_error = left(error, 500),
            attempts = sb.attempts + 1,
            next_check_at = now() + least(interval '5 seconds' * power(2, least(sb.attempts, 10)), interval '1 hour')
        where sb.id = binding.id;
        if binding.attempts = 0 then
            perform cfg_private.emit_event(
                binding.org_id, 'secret.sync_failed', 'secret_binding', binding.id, binding.automation_id,
                jsonb_build_object('binding_id', binding.id, 'ref', binding.ref, 'error_kind', error_kind, 'error', left(error, 500))
            );
        end if;
        return;
    end if;
    if outcome = 'conflict' then
        insert into cfg.secret_conflicts (org_id, binding_id, automation_id, external_version)
        select binding.org_id, binding.id, binding.automation_id, report_secret_sync.external_version
        where not exists (select 1 from cfg.secret_conflicts as c where c.binding_id = binding.id and c.status = 'open');
        update cfg.secret_bindings as sb
        set status = 'conflict', error_kind = 'conflict',
            last_error = 'changed in cfgctl and in the external vault: an admin resolves it'
        where sb.id = binding.id;
        perform cfg_private.emit_event(
            binding.org_id, 'secret.sync_conflict', 'secret_binding', binding.id, binding.automation_id,
            jsonb_build_object('binding_id', binding.id, 'ref', binding.ref, 'external_version', external_version)
        );
        return;
    end if;
    if outcome = 'changed' then
        begin
            imported := cfg_private.import_external_value(binding, value);
        exception when sqlstate 'PT422' then
            -- The version it makes fails the automation's rules in dev: the binding
            -- shows why, and is retried (a rule fixed, a value changed) with backoff.
            perform cfg_private.report_secret_sync(
                binding.id, 'failed', error_kind => 'invalid', error => 'the new value was not recorded: ' || sqlerrm
            );
            return;
        end;
    elsif outcome = 'pushed' then
        perform cfg_private.emit_event(
            binding.org_id, 'secret.pushed', 'secret_binding', binding.id, binding.automation_id,
            jsonb_build_object('binding_id', binding.id, 'ref', binding.ref, 'external_version', external_version)
        );
    elsif outcome is distinct from 'unchanged' then
        raise exception 'outcome is unchanged, changed, pushed, conflict or failed' using errcode = 'PT422';
    end if;
    update cfg.secret_bindings as sb
    set status = 'ok', error_kind = null, last_error = null, attempts = 0, import_next = false,
        last_success_at = now(), next_check_at = now() + check_every,
        external_version = coalesce(report_secret_sync.external_version, sb.external_version),
        pushed_secret_id = case
            when outcome = 'pushed' then pushed_secret when outcome = 'changed' then imported else sb.pushed_secret_id
        end,
        fingerprint = left((select es.token from cfg.entry_secrets as es where es.id = sb.entry_id), 12)
    where sb.id = binding.id;
end
$$;
revoke execute on function cfg_private.report_secret_sync(uuid, text, text, text, uuid, text, text, interval)
from public, anon, authenticated;
grant execute on function cfg_private.report_secret_sync(uuid, text, text, text, uuid, text, text, interval) to service_role;

-- Backends whose test was asked for and not answered yet.
-- security definer: it hands out credential ids the service then reads.
create or replace function cfg_private.claim_vault_backend_tests(batch integer)
returns table (
    backend_id uuid, backend_kind text, backend_config jsonb, credentials_secret_id uuid, requested_at timestamptz
)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_service('claim vault backend tests');
    return query
    select b.id, b.kind, b.config, b.credentials_secret_id, b.test_requested_at
    from cfg.vault_backends as b
    where b.test_requested_at > coalesce(b.tested_at, '-infinity')
    order by b.test_requested_at
    limit batch;
end
$$;
revoke execute on function cfg_private.claim_vault_backend_tests(integer) from public, anon, authenticated;
grant execute on function cfg_private.claim_vault_backend_tests(integer) to service_role;

-- result: {"ok": true, "facts": {...}} or {"ok": false, "error_kind": ..., "error": ...}.
-- security definer: backends take no writes from API roles.
create or replace function cfg_private.report_vault_backend_test(backend_id uuid, requested_at timestamptz, result jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_service('report vault backend tests');
    update cfg.vault_backends as b
    set tested_at = greatest(report_vault_backend_test.requested_at, now()), test_result = result
    where b.id = backend_id;
end
$$;
revoke execute on function cfg_private.report_vault_backend_test(uuid, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function cfg_private.report_vault_backend_test(uuid, timestamptz, jsonb) to service_role;

-- Reveals of reference-bound secrets not answered yet (a request unanswered for a
-- minute is failed: the requester is gone).
-- security definer: the requests are in cfg_private.
create or replace function cfg_private.claim_external_reveals(batch integer)
returns table (
    request_id uuid, ref text, backend_kind text, backend_config jsonb, credentials_secret_id uuid
)
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_service('claim external reveals');
    update cfg_private.external_reveals as r
    set status = 'failed', error = 'the sync service did not answer in time', answered_at = now()
    where r.status = 'pending' and r.created_at < now() - interval '1 minute';
    -- Answers nobody collected within a minute go, values first.
    delete from cfg_private.external_reveals as r where r.answered_at < now() - interval '1 minute';
    return query
    select r.id, sb.ref, b.kind, b.config, b.credentials_secret_id
    from cfg_private.external_reveals as r
    join cfg.secret_bindings as sb on sb.id = r.binding_id
    join cfg.vault_backends as b on b.id = sb.backend_id
    where r.status = 'pending'
    order by r.created_at
    limit batch
    for update of r skip locked;
end
$$;
revoke execute on function cfg_private.claim_external_reveals(integer) from public, anon, authenticated;
grant execute on function cfg_private.claim_external_reveals(integer) to service_role;

-- The answer to a reveal: the value (kept in Vault until collected) or the error.
-- security definer: Vault and the requests take no writes from API roles.
create or replace function cfg_private.answer_external_reveal(request_id uuid, value text, error text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_service('answer reveals');
    update cfg_private.external_reveals as r
    set status = case when value is null then 'failed' else 'ready' end,
        secret_id = case when value is not null then vault.create_secret(to_jsonb(value)::text, null, 'cfgctl: a revealed external secret') end,
        error = left(answer_external_reveal.error, 500), answered_at = now()
    where r.id = request_id and r.status = 'pending';
end
$$;
revoke execute on function cfg_private.answer_external_reveal(uuid, text, text) from public, anon, authenticated;
grant execute on function cfg_private.answer_external_reveal(uuid, text, text) to service_role;

-- The open (or all) sync conflicts of org_id (admins). security invoker: reads under RLS.
create or replace function cfg.list_secret_conflicts(org_id uuid, include_resolved boolean default false)
returns setof cfg.secret_conflicts
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_secret_conflicts.org_id, 'admin', 'resolving secret conflicts');
    return query
    select * from cfg.secret_conflicts as c
    where c.org_id = list_secret_conflicts.org_id and (include_resolved or c.status = 'open')
    order by c.created_at;
end
$$;
revoke execute on function cfg.list_secret_conflicts(uuid, boolean) from public, anon;
grant execute on function cfg.list_secret_conflicts(uuid, boolean) to authenticated, service_role;

-- Resolves a conflict (admins): 'keep_local' pushes cfgctl's value over the external
-- one; 'take_external' imports the external value as a new version (kind sync).
-- security definer: conflicts and bindings take no writes from API roles.
create or replace function cfg_private.resolve_secret_conflict(conflict_id uuid, resolution text)
returns cfg.secret_conflicts
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.secret_conflicts;
begin
    select * into found from cfg.secret_conflicts as c where c.id = conflict_id;
    perform cfg_private.require_role_on(
        found.org_id, 'admin', 'resolving a secret conflict', 'secret conflict', 'conflict_id', conflict_id
    );
    if resolution is null or resolution not in ('keep_local', 'take_external') then
        raise exception 'resolution is keep_local or take_external'
            using errcode = 'PT422', detail = jsonb_build_object('resolution', resolution)::text;
    end if;
    if found.status <> 'open' then
        raise exception 'this conflict was resolved already (%)', found.resolution
            using errcode = 'PT409', detail = jsonb_build_object('conflict_id', found.id, 'resolution', found.resolution)::text;
    end if;
    update cfg.secret_conflicts as c
    set status = 'resolved', resolution = resolve_secret_conflict.resolution,
        resolved_by = (select auth.uid()), resolved_at = now()
    where c.id = found.id
    returning * into found;
    -- keep_local: the external version is acknowledged, so the push goes ahead;
    -- take_external: the next check imports whatever is there.
    update cfg.secret_bindings as sb
    set status = 'pending', next_check_at = now(), attempts = 0,
        external_version = case when resolution = 'keep_local' then found.external_version else sb.external_version end,
        pushed_secret_id = case when resolution = 'keep_local' then null else sb.pushed_secret_id end,
        import_next = (resolution = 'take_external')
    where sb.id = found.binding_id;
    perform cfg_private.emit_event(
        found.org_id, 'secret.conflict_resolved', 'secret_binding', found.binding_id, found.automation_id,
        jsonb_build_object('conflict_id', found.id, 'resolution', resolution, 'external_version', found.external_version)
    );
    perform pg_notify('cfgctl_vault_sync', '');
    return found;
end
$$;
revoke execute on function cfg_private.resolve_secret_conflict(uuid, text) from public, anon;
grant execute on function cfg_private.resolve_secret_conflict(uuid, text) to authenticated, service_role;

-- security invoker: the definer half checks the caller.
create or replace function cfg.resolve_secret_conflict(conflict_id uuid, resolution text)
returns cfg.secret_conflicts
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.resolve_secret_conflict(conflict_id, resolution);
end
$$;
revoke execute on function cfg.resolve_secret_conflict(uuid, text) from public, anon;
grant execute on function cfg.resolve_secret_conflict(uuid, text) to authenticated, service_role;

-- A deployment (a save lands in dev, a promotion elsewhere) makes the push bindings
-- it concerns due now, and wakes the sync service.
create or replace function cfg_private.wake_secret_push()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update cfg.secret_bindings as sb
    set next_check_at = now()
    where sb.automation_id = new.automation_id and sb.mode = 'push' and sb.status <> 'conflict'
        and (sb.environment_id is null or sb.environment_id = new.environment_id);
    if found then
        perform pg_notify('cfgctl_vault_sync', '');
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.wake_secret_push() from public, anon, authenticated, service_role;

create or replace trigger wake_secret_push after insert or update of version_id on cfg.deployments
for each row execute function cfg_private.wake_secret_push();

-- Vault secrets that belong to one row go with it: a backend's credentials, an
-- uncollected reveal.
create or replace function cfg_private.forget_row_secret()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    delete from vault.secrets as v where v.id = (to_jsonb(old) ->> tg_argv[0])::uuid;
    return null;
end
$$;
revoke execute on function cfg_private.forget_row_secret() from public, anon, authenticated, service_role;

create or replace trigger forget_credentials after delete on cfg.vault_backends
for each row execute function cfg_private.forget_row_secret('credentials_secret_id');
create or replace trigger forget_revealed_value after delete on cfg_private.external_reveals
for each row when (old.secret_id is not null) execute function cfg_private.forget_row_secret('secret_id');

-- A secret bound by reference takes no value from cfgctl: it changes in the external vault.
-- Statement-level (one query per write, not one per row: a save writes all its changed
-- secrets in one statement). A column list cannot go with transition tables, so rows
-- whose secret_id did not change are filtered here.
create or replace function cfg_private.refuse_value_of_reference()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    refused record;
begin
    select n.id as entry_id, sb.ref into refused
    from new_rows as n
    join old_rows as o on o.id = n.id
    join cfg.secret_bindings as sb on sb.entry_id = n.id and sb.mode = 'reference'
    where n.secret_id is not null and n.secret_id is distinct from o.secret_id
    limit 1;
    if refused.entry_id is not null then
        raise exception 'this secret is kept in an external vault (%): change it there, or unbind it', refused.ref
            using errcode = 'PT409', detail = jsonb_build_object('entry_id', refused.entry_id, 'ref', refused.ref)::text;
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.refuse_value_of_reference() from public, anon, authenticated, service_role;

-- Replaces the row-level trigger of the same name (before update of secret_id).
drop trigger if exists refuse_value_of_reference on cfg.entry_secrets;
create trigger refuse_value_of_reference after update on cfg.entry_secrets
referencing old table as old_rows new table as new_rows
for each statement execute function cfg_private.refuse_value_of_reference();
