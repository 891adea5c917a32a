-- =============================================================================
-- What every table gets, by one registration call per table: updated_at, org_id
-- frozen, author columns from the JWT, the audit trigger; and for tables that
-- save_config writes, the versioned-write condition and its guard.
-- =============================================================================

-- updated_at on every write; org_id can never move a row to another tenant.
-- For every table with an org_id (columns read directly: this runs on every write).
create or replace function cfg_private.touch_row()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'UPDATE' and new.org_id is distinct from old.org_id then
        raise exception 'org_id cannot be changed'
            using errcode = 'PT422',
                  detail = jsonb_build_object('table', tg_table_name)::text;
    end if;
    new.updated_at := now();
    return new;
end
$$;
revoke execute on function cfg_private.touch_row() from public, anon, authenticated, service_role;

-- updated_at for cfg.orgs, the one table whose tenant key is its own id.
create or replace function cfg_private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;
revoke execute on function cfg_private.touch_updated_at() from public, anon, authenticated, service_role;

-- created_by/updated_by come from the JWT, never from the client. The sources of
-- auth.uid(), read inline: a call per written row cost a tenth of a bulk update.
-- register_table's WHEN clauses read the same sources (its `actor`).
create or replace function cfg_private.stamp_author()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    actor uuid := coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
    )::uuid;
begin
    if tg_op = 'INSERT' then
        new.created_by := coalesce(actor, new.created_by);
    else
        new.created_by := old.created_by;
    end if;
    new.updated_by := coalesce(actor, new.updated_by);
    return new;
end
$$;
revoke execute on function cfg_private.stamp_author() from public, anon, authenticated, service_role;

-- =============================================================================
-- The versioned-write condition
-- =============================================================================

-- True unless the row is written by save_config/rollback, which version and audit
-- what they write themselves: the flag is on (and vouched for by
-- guard_versioned_write) and the writer is not an API role but their definer code.
-- Inlined into each trigger's WHEN clause (a function call per written row cost a
-- tenth of a save), so this is the one text every such clause is made from.
create or replace function cfg_private.versioned_write_condition()
returns text
language sql immutable
set search_path = ''
as $$
    select 'current_setting(''cfgctl.versioned_write'', true) is distinct from ''on'' '
        || 'or current_user in (''anon'', ''authenticated'', ''service_role'')'
$$;
revoke execute on function cfg_private.versioned_write_condition() from public, anon, authenticated, service_role;

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

-- =============================================================================
-- Registration
-- =============================================================================

-- Gives a table the triggers every cfgctl table has, in one call (supa_audit's
-- enable_tracking is the model): touch_row (updated_at; org_id frozen; for a table
-- without org_id, cfg.orgs, only updated_at), stamp_author (created_by/updated_by
-- from the JWT) when asked, and audit_insert/_update/_delete with its arguments
-- (columns redacted, '-column' left out, '+column' the changes worth auditing, '@admin'
-- for tables only admins read; see cfg_private.audit_changes).
-- versioned: 'audit' for tables save_config writes and versions itself (their audit
-- skips those rows), 'touch_and_audit' when it also stamps updated_at itself; such
-- tables get guard_versioned_write, which keeps the skip out of clients' reach.
-- Idempotent: the function files call it on every migrate.
create or replace function cfg_private.register_table(
    tbl regclass,
    audit_arguments text [] default '{}',
    stamp_author boolean default false,
    versioned text default 'no',
    audit boolean default true
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    versioned_condition text := cfg_private.versioned_write_condition();
    skip_versioned text := format('when (%s) ', versioned_condition);
    -- The user stamp_author reads from the JWT, the same text (see there).
    actor text := 'coalesce(nullif(current_setting(''request.jwt.claim.sub'', true), ''''), '
        || 'nullif(current_setting(''request.jwt.claims'', true), '''')::jsonb ->> ''sub'')::uuid';
    has_org_id boolean := exists (
        select 1 from pg_attribute as a
        where a.attrelid = tbl and a.attname = 'org_id' and not a.attisdropped
    );
    event text;
begin
    if versioned not in ('no', 'audit', 'touch_and_audit') then
        raise exception 'versioned is no, audit or touch_and_audit, not %', versioned using errcode = 'PT422';
    end if;
    -- touch_row and stamp_author run only for a row they would change or must refuse: the
    -- WHEN clauses are the functions' own tests (their plpgsql calls cost a 5,000-row bulk
    -- tag about 40 ms of CPU, and 27 ms for its items). WHEN on an INSERT cannot name OLD,
    -- hence a trigger per event; the names keep stamp_author before touch_row.
    execute format('drop trigger if exists touch_row on %s', tbl);
    foreach event in array array['insert', 'update'] loop
        execute format(
            'create or replace trigger touch_row_%s before %1$s on %s for each row when (%s(%s)) '
            'execute function cfg_private.%s()',
            event, tbl, case when versioned = 'touch_and_audit' then format('(%s) and ', versioned_condition) else '' end,
            case when event = 'update' and has_org_id
                then 'new.updated_at is distinct from now() or new.org_id is distinct from old.org_id'
                else 'new.updated_at is distinct from now()'
            end,
            case when has_org_id then 'touch_row' else 'touch_updated_at' end
        );
    end loop;
    execute format('drop trigger if exists stamp_author on %s', tbl);
    if stamp_author then
        execute format(
            'create or replace trigger stamp_author_insert before insert on %s for each row '
            'when (new.created_by is distinct from coalesce(%s, new.created_by) '
            'or new.updated_by is distinct from coalesce(%2$s, new.updated_by)) '
            'execute function cfg_private.stamp_author()', tbl, actor
        );
        execute format(
            'create or replace trigger stamp_author_update before update on %s for each row '
            'when (new.created_by is distinct from old.created_by '
            'or new.updated_by is distinct from coalesce(%s, new.updated_by)) '
            'execute function cfg_private.stamp_author()', tbl, actor
        );
    end if;
    -- The row-level trigger these replaced (cfg_private.audit_row, dropped).
    execute format('drop trigger if exists audit on %s', tbl);
    if audit then
        foreach event in array array['insert', 'update', 'delete'] loop
            execute format(
                'create or replace trigger audit_%s after %1$s on %s referencing %s for each statement %s'
                'execute function cfg_private.audit_changes(%s)',
                event, tbl,
                case event
                    when 'insert' then 'new table as new_rows'
                    when 'update' then 'old table as old_rows new table as new_rows'
                    else 'old table as old_rows'
                end,
                case when versioned <> 'no' then skip_versioned else '' end,
                (select coalesce(string_agg(quote_literal(arg), ', '), '') from unnest(audit_arguments) as arg)
            );
        end loop;
    end if;
    if versioned <> 'no' then
        execute format(
            'create or replace trigger guard_versioned_write before insert or update or delete on %s '
            'for each statement when (current_setting(''cfgctl.versioned_write'', true) = ''on'') '
            'execute function cfg_private.guard_versioned_write()', tbl
        );
    end if;
end
$$;
revoke execute on function cfg_private.register_table(regclass, text [], boolean, text, boolean)
from public, anon, authenticated, service_role;
