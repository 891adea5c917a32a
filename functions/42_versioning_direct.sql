-- =============================================================================
-- Direct writes: inserts, updates and deletes on config_sections, config_entries
-- and entry_secrets made outside save_config (editors through PostgREST, the
-- service role, DBAs) are versioned too. A deferred trigger records one version
-- per automation and transaction at commit (none when nothing changed, e.g. after
-- save_config already recorded it). They are not optimistically locked.
-- =============================================================================

-- security definer: writes versions, which API roles cannot.
-- It takes no lock on the automation: a save holding that lock may be waiting for
-- this transaction's rows (see record_version for the one lock both paths take).
create or replace function cfg_private.version_direct_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    row_data jsonb := case when tg_op = 'DELETE' then to_jsonb(old) else to_jsonb(new) end;
    target uuid;
    org uuid;
begin
    if tg_table_name = 'entry_secrets' then
        select e.automation_id into target from cfg.config_entries as e where e.id = (row_data ->> 'id')::uuid;
    else
        target := (row_data ->> 'automation_id')::uuid;
    end if;
    if target is null then
        return null;
    end if;
    -- Once per automation and transaction: the first row's call versions them all.
    insert into cfg_private.transaction_marks (mark, subject_id)
    values ('direct_versioned', target)
    on conflict do nothing;
    if not found then
        return null;
    end if;
    select a.org_id into org from cfg.automations as a where a.id = target;
    if org is null then
        -- The automation was deleted in this transaction.
        return null;
    end if;
    perform cfg_private.record_version(target, org, 'direct edit', 'direct');
    return null;
end
$$;
revoke execute on function cfg_private.version_direct_write() from public, anon, authenticated, service_role;

-- The versioned-write flag (cfgctl.versioned_write) lets the row triggers' WHEN
-- clauses skip rows that save_config/rollback version themselves; a setting is what a
-- WHEN clause can read cheaply. Any client can set it, so before each statement on a
-- table those clauses guard, the flag is switched off unless this transaction holds
-- the mark only apply_content writes (cfg_private.transaction_marks). Cascaded deletes
-- are statements too, so they are audited whatever the client set.
create or replace function cfg_private.guard_versioned_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not exists (
        select 1 from cfg_private.transaction_marks as m
        where m.txid = txid_current() and m.mark = 'versioned_write'
    ) then
        perform set_config('cfgctl.versioned_write', 'off', true);
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.guard_versioned_write() from public, anon, authenticated, service_role;

-- Every table with a trigger that reads the flag (tests/test_write_path_hardening.py
-- checks none is missed).
do $guard$
declare
    guarded regclass;
begin
    foreach guarded in array array[
        'cfg.config_sections', 'cfg.config_entries', 'cfg.entry_secrets', 'cfg.deployments',
        'cfg.deployment_history'
    ]::regclass [] loop
        execute format(
            'create or replace trigger guard_versioned_write before insert or update or delete on %s '
            'for each statement when (current_setting(''cfgctl.versioned_write'', true) = ''on'') '
            'execute function cfg_private.guard_versioned_write()',
            guarded
        );
    end loop;
end
$guard$;

-- Marks of finished transactions are never read again (pg_cron, hourly).
create or replace function cfg_private.purge_transaction_marks()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    purged integer;
begin
    delete from cfg_private.transaction_marks as m
    where m.txid < txid_snapshot_xmin(txid_current_snapshot());
    get diagnostics purged = row_count;
    return purged;
end
$$;
revoke execute on function cfg_private.purge_transaction_marks() from public, anon, authenticated;
grant execute on function cfg_private.purge_transaction_marks() to service_role;

drop trigger if exists version_direct_write on cfg.config_sections;
create constraint trigger version_direct_write after insert or update or delete on cfg.config_sections
deferrable initially deferred
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.version_direct_write();
drop trigger if exists version_direct_write on cfg.config_entries;
create constraint trigger version_direct_write after insert or update or delete on cfg.config_entries
deferrable initially deferred
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.version_direct_write();
drop trigger if exists version_direct_write on cfg.entry_secrets;
create constraint trigger version_direct_write after insert or update or delete on cfg.entry_secrets
deferrable initially deferred
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.version_direct_write();

-- =============================================================================
-- Row stamping, immutability and audit of the versioning tables
-- =============================================================================

create or replace function cfg_private.forbid_version_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception 'config versions are immutable; roll back to create a new one'
        using errcode = 'PT403',
              detail = jsonb_build_object('version_id', old.id, 'version', old.version)::text;
end
$$;
revoke execute on function cfg_private.forbid_version_change() from public, anon, authenticated, service_role;

create or replace trigger immutable before update on cfg.config_versions
for each row execute function cfg_private.forbid_version_change();

create or replace trigger touch_row before insert or update on cfg.config_versions
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg.deployments
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg.deployment_history
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg.promotion_requests
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg_private.version_secrets
for each row execute function cfg_private.touch_row();

-- The version row's audit entry is the audit record of a save, whose section and
-- entry writes are not audited row by row: who, when, which version and the keys it
-- changed. Its snapshot stays in the (immutable) version row, not copied into the log.
create or replace trigger audit after insert or update or delete on cfg.config_versions
for each row execute function cfg_private.audit_row('-content');
create or replace trigger audit after insert or update or delete on cfg.deployments
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.audit_row();
create or replace trigger audit after insert or update or delete on cfg.deployment_history
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.audit_row();
create or replace trigger audit after insert or update or delete on cfg.promotion_requests
for each row execute function cfg_private.audit_row();
