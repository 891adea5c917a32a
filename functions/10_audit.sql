-- =============================================================================
-- Audit log: one row per changed row in cfg, written by cfg_private.audit_row().
-- =============================================================================

-- Who is acting: the JWT's user, the service key, or the database role (DBA work).
-- Not current_user: inside a security-definer function that is the owner. The `role`
-- setting is what SET ROLE chose, else the login role is the actor. Claims are parsed
-- once (auth.uid()/email()/role() would parse them three times).
-- plpgsql: PostgreSQL 15 would plan a sql function's query on every call.
create or replace function cfg_private.current_actor(out actor_id uuid, out actor_email text, out actor_role text)
language plpgsql stable
set search_path = ''
as $$
declare
    claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
begin
    actor_id := coalesce(claims ->> 'sub', nullif(current_setting('request.jwt.claim.sub', true), ''))::uuid;
    actor_email := coalesce(claims ->> 'email', nullif(current_setting('request.jwt.claim.email', true), ''));
    actor_role := coalesce(
        claims ->> 'role',
        nullif(current_setting('request.jwt.claim.role', true), ''),
        nullif(current_setting('role', true), 'none'),
        session_user::text
    );
end
$$;
revoke execute on function cfg_private.current_actor() from public, anon;
grant execute on function cfg_private.current_actor() to authenticated, service_role;

-- Trigger arguments name columns whose values are always redacted (secrets), or,
-- written '-column', columns left out because the row itself keeps them. The argument
-- '@admin' registers a table only admins may read: its audit rows are readable by
-- admins only (cfg.audit_log.readable_by), like the table.
-- A config entry marked is_secret has its value redacted too (its value is null here).
-- security definer: audit_log accepts no writes from API roles.
-- The actor is read inline, as in current_actor(): this runs for every audited row and
-- the function call doubled the trigger's cost (bench/bench_audit.py).
create or replace function cfg_private.audit_row()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    old_row jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) end;
    new_row jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) end;
    any_row jsonb := coalesce(new_row, old_row);
    claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
    old_values jsonb;
    new_values jsonb;
    column_arg text;
    readable_by cfg.org_role := 'editor';
begin
    if tg_op = 'UPDATE' then
        -- Keep only what changed; updated_at changes on every write and says nothing.
        select jsonb_object_agg(n.key, old_row -> n.key), jsonb_object_agg(n.key, n.value)
        into old_values, new_values
        from jsonb_each(new_row) as n
        where n.value is distinct from old_row -> n.key and n.key <> 'updated_at';
        if new_values is null then
            return null;
        end if;
    else
        old_values := old_row;
        new_values := new_row;
    end if;

    foreach column_arg in array coalesce(tg_argv, '{}'::text []) loop
        if column_arg = '@admin' then
            readable_by := 'admin';
            continue;
        end if;
        if left(column_arg, 1) = '-' then
            old_values := old_values - substr(column_arg, 2);
            new_values := new_values - substr(column_arg, 2);
            continue;
        end if;
        if old_values ? column_arg then
            old_values := old_values || jsonb_build_object(column_arg, '[redacted]');
        end if;
        if new_values ? column_arg then
            new_values := new_values || jsonb_build_object(column_arg, '[redacted]');
        end if;
    end loop;

    insert into cfg.audit_log (
        org_id, automation_id, actor_id, actor_email, actor_role,
        table_name, row_id, operation, old_values, new_values, readable_by
    )
    values (
        coalesce(any_row ->> 'org_id', any_row ->> 'id')::uuid,
        case
            when tg_table_name = 'automations' then (any_row ->> 'id')::uuid
            -- A secret value row has no automation_id of its own: its entry's. Entries
            -- deleted by a cascade are gone by now; their own audit rows name it.
            when tg_table_name = 'entry_secrets' then (
                select e.automation_id from cfg.config_entries as e
                where e.id = (any_row ->> 'id')::uuid
            )
            else (any_row ->> 'automation_id')::uuid
        end,
        -- The same sources as auth.uid()/email()/role(), read once per row.
        coalesce(claims ->> 'sub', nullif(current_setting('request.jwt.claim.sub', true), ''))::uuid,
        coalesce(claims ->> 'email', nullif(current_setting('request.jwt.claim.email', true), '')),
        coalesce(
            claims ->> 'role',
            nullif(current_setting('request.jwt.claim.role', true), ''),
            nullif(current_setting('role', true), 'none'),
            session_user::text
        ),
        tg_table_name, (any_row ->> 'id')::uuid, tg_op, old_values, new_values, readable_by
    );
    return null;
end
$$;

revoke execute on function cfg_private.audit_row() from public, anon, authenticated, service_role;

-- Every table in cfg is audited: each registers with cfg_private.register_table
-- (functions/05_tables.sql), which attaches this trigger with the table's arguments.
-- Rows that save_config/rollback write are recorded by the config_versions row they
-- produce (functions/40_versioning_write.sql), so those writes are not audited row by
-- row (cfg_private.versioned_write_condition()).

-- =============================================================================
-- Append-only: no update, delete or truncate, whatever the role. Only the
-- retention function below may delete, and only rows older than its cutoff.
-- =============================================================================

-- security definer: the marks are private, whoever attempts the change.
create or replace function cfg_private.forbid_audit_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- Only while purge_audit_log runs: the mark is written by it alone (a setting
    -- would be a switch any client could flip).
    if tg_op = 'DELETE' and exists (
        select 1 from cfg_private.transaction_marks as m
        where m.txid = txid_current() and m.mark = 'audit_retention'
    ) then
        return old;
    end if;
    raise exception 'the audit log is append-only'
        using errcode = 'PT403',
              hint = 'Old rows are removed only by cfg_private.purge_audit_log(keep interval).';
end
$$;

revoke execute on function cfg_private.forbid_audit_change() from public, anon, authenticated, service_role;

create or replace trigger append_only before update or delete on cfg.audit_log
for each row execute function cfg_private.forbid_audit_change();
create or replace trigger append_only_truncate before truncate on cfg.audit_log
for each statement execute function cfg_private.forbid_audit_change();

-- Deletes audit rows older than `keep`; returns how many. Scheduled by pg_cron.
-- security definer: no API role may delete from the audit log.
create or replace function cfg_private.purge_audit_log(keep interval)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    removed bigint;
begin
    if keep is null or keep < interval '1 day' then
        raise exception 'audit retention must keep at least one day'
            using errcode = 'PT422', detail = jsonb_build_object('keep', keep::text)::text;
    end if;
    insert into cfg_private.transaction_marks (mark) values ('audit_retention') on conflict do nothing;
    delete from cfg.audit_log as a where a.created_at < now() - keep;
    get diagnostics removed = row_count;
    delete from cfg_private.transaction_marks as m
    where m.txid = txid_current() and m.mark = 'audit_retention';
    return removed;
end
$$;
revoke execute on function cfg_private.purge_audit_log(interval) from public, anon, authenticated;
grant execute on function cfg_private.purge_audit_log(interval) to service_role;

-- =============================================================================
-- Reading the log: RLS limits rows to the caller's orgs (editors and admins).
-- =============================================================================

create or replace function cfg.audit_events(
    org_id uuid,
    automation_id uuid default null,
    actor text default null,
    since timestamptz default null,
    until timestamptz default null,
    max_rows integer default 100
)
returns setof cfg.audit_log
language plpgsql stable
set search_path = ''
as $$
begin
    if max_rows is null or max_rows not between 1 and 10000 then
        raise exception 'max_rows must be between 1 and 10000'
            using errcode = 'PT422', detail = jsonb_build_object('max_rows', max_rows)::text;
    end if;
    perform cfg_private.require_role(audit_events.org_id, 'editor', 'reading the audit log');
    return query
    select a.*
    from cfg.audit_log as a
    where a.org_id = audit_events.org_id
        and (audit_events.automation_id is null or a.automation_id = audit_events.automation_id)
        and (
            audit_events.actor is null
            or lower(a.actor_email) = lower(audit_events.actor)
            or a.actor_id::text = audit_events.actor
            or a.actor_role = audit_events.actor
        )
        and (since is null or a.created_at >= since)
        and (until is null or a.created_at < until)
    order by a.created_at desc, a.id desc
    limit max_rows;
end
$$;
revoke execute on function cfg.audit_events(uuid, uuid, text, timestamptz, timestamptz, integer) from public, anon;
grant execute on function cfg.audit_events(uuid, uuid, text, timestamptz, timestamptz, integer)
to authenticated, service_role;
