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

-- Deferred to commit, for rows outside the versioned-write path (the one condition,
-- cfg_private.versioned_write_condition()).
do $direct$
declare
    versioned regclass;
begin
    foreach versioned in array array['cfg.config_sections', 'cfg.config_entries', 'cfg.entry_secrets']::regclass []
    loop
        execute format('drop trigger if exists version_direct_write on %s', versioned);
        execute format(
            'create constraint trigger version_direct_write after insert or update or delete on %s '
            'deferrable initially deferred for each row when (%s) '
            'execute function cfg_private.version_direct_write()',
            versioned, cfg_private.versioned_write_condition()
        );
    end loop;
end
$direct$;

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

-- The version row's audit entry is the audit record of a save, whose section and
-- entry writes are not audited row by row: who, when, which version and the keys it
-- changed. Its snapshot stays in the (immutable) version row, not copied into the log.
select cfg_private.register_table('cfg.config_versions', audit_arguments => '{-content}');
-- A save's dev deployment is recorded by its version row too.
select cfg_private.register_table('cfg.deployments', versioned => 'audit');
select cfg_private.register_table('cfg.deployment_history', versioned => 'audit');
select cfg_private.register_table('cfg.promotion_requests');
select cfg_private.register_table('cfg_private.version_secrets', audit => false);
