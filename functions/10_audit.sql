-- =============================================================================
-- Audit log: one row per changed row in cfg, written by cfg_private.audit_changes().
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

-- The queries that audit a many-row UPDATE of tbl (audit_changes runs them: only there
-- are the statement's transition tables in scope), built from the catalog. Without
-- changed: the query that finds the columns (updated_at aside) any row changed. With
-- them: the insert of the audit rows, each with those of them its row changed, found by
-- typed comparisons, to_jsonb of only those. The general path turns both versions of
-- every row into JSON and compares them key by key: two thirds of the audit of a
-- 5,000-row bulk change (docs/bulk.md). The same rows and values
-- (tests/audit/test_audit_statements.py). The insert's parameters: $1-$3 the actor
-- (id, email, role), $4 omitted, $5 watched, $6 masks, $7 readable_by (see audit_changes).
create or replace function cfg_private.audit_update_query(tbl regclass, changed text [])
returns text
language plpgsql stable
set search_path = ''
as $$
declare
    columns text [];
    tests text [];
    has_org_id boolean := exists (
        select 1 from pg_catalog.pg_attribute as a where a.attrelid = tbl and a.attname = 'org_id' and not a.attisdropped
    );
    has_automation_id boolean := exists (
        select 1 from pg_catalog.pg_attribute as a
        where a.attrelid = tbl and a.attname = 'automation_id' and not a.attisdropped
    );
    btree oid := (select am.oid from pg_catalog.pg_am as am where am.amname = 'btree');
begin
    -- Typed comparison where the type has a default btree opclass (its equality), else as
    -- JSON, as the general path compares.
    select array_agg(a.attname::text order by a.attnum), array_agg(case when exists (
            select 1 from pg_catalog.pg_opclass as c
            where c.opcmethod = btree and c.opcdefault and c.opcintype = any(array[t.oid,
                case t.typcategory when 'E' then 'anyenum'::regtype when 'A' then 'anyarray'::regtype end])
                and (t.typcategory <> 'A' or exists (
                    select 1 from pg_catalog.pg_opclass as e
                    where e.opcmethod = btree and e.opcdefault and e.opcintype = t.typelem
                ))
        ) then format('o.%1$I is distinct from n.%1$I', a.attname)
        else format('to_jsonb(o.%1$I) is distinct from to_jsonb(n.%1$I)', a.attname) end order by a.attnum)
    into columns, tests
    from pg_catalog.pg_attribute as a
    join pg_catalog.pg_type as t on t.oid = a.atttypid
    where a.attrelid = tbl and a.attnum > 0 and not a.attisdropped and a.attname <> 'updated_at'
        and (changed is null or a.attname = any(changed));
    if changed is null then
        return format(
            'select array_remove(array[%s], null) from old_rows as o join new_rows as n on n.id = o.id',
            (select string_agg(format('case when bool_or(%s) then %L end', t.test, t.col), ', ')
             from unnest(columns, tests) as t (col, test))
        );
    end if;
    -- Per row: the changed columns' values, minus those this row did not change.
    return format($q$
        insert into cfg.audit_log (
            org_id, automation_id, actor_id, actor_email, actor_role,
            table_name, row_id, operation, old_values, new_values, readable_by
        )
        select r.audit_org_id, r.audit_automation_id, $1, $2, $3, %L, r.audit_row_id, 'UPDATE',
            case when $6 is null then r.old_values else r.old_values || coalesce(
                (select jsonb_object_agg(m.key, m.value) from jsonb_each($6) as m where r.old_values ? m.key), '{}'
            ) end,
            case when $6 is null then r.new_values else r.new_values || coalesce(
                (select jsonb_object_agg(m.key, m.value) from jsonb_each($6) as m where r.new_values ? m.key), '{}'
            ) end,
            $7
        from (
            select n.audit_position, n.id as audit_row_id, %s as audit_org_id, %s as audit_automation_id,
                jsonb_build_object(%s) - r.same - $4 as old_values, jsonb_build_object(%s) - r.same - $4 as new_values,
                cardinality(r.same) < %s as any_change, jsonb_build_object(%s) - r.same as changes
            from (select w.*, row_number() over () as audit_position from new_rows as w) as n
            join old_rows as o on o.id = n.id
            cross join lateral (select array_remove(array[%s], null) as same) as r
        ) as r
        where r.any_change and (cardinality($5::text []) = 0 or r.changes ?| $5)
        order by r.audit_position
    $q$,
        (select c.relname from pg_catalog.pg_class as c where c.oid = tbl),
        case when has_org_id then 'coalesce(n.org_id, n.id)' else 'n.id' end,
        case
            when tbl = 'cfg.automations'::regclass then 'n.id'
            when has_automation_id then 'n.automation_id'
            else 'null::uuid'
        end,
        (select string_agg(format('%L, to_jsonb(o.%I)', col, col), ', ') from unnest(columns) as col),
        (select string_agg(format('%L, to_jsonb(n.%I)', col, col), ', ') from unnest(columns) as col),
        cardinality(columns),
        (select string_agg(format('%L, null', col), ', ') from unnest(columns) as col),
        (select string_agg(format('case when not (%s) then %L end', t.test, t.col), ', ')
         from unnest(columns, tests) as t (col, test))
    );
end
$$;
revoke execute on function cfg_private.audit_update_query(regclass, text []) from public, anon, authenticated, service_role;

-- Trigger arguments (register_table's audit_arguments): a column name is a column whose
-- values are always redacted (secrets); '-column' a column left out because the row
-- itself keeps it; '+column' a column whose change is what makes an update worth
-- auditing (with any '+', an update that changes none of them is not audited: the
-- other columns are bookkeeping); '@admin' registers a table only admins may read: its
-- audit rows are readable by admins only (cfg.audit_log.readable_by), like the table.
-- A config entry marked is_secret has its value redacted too (its value is null here).
-- Statement-level (AFTER INSERT / UPDATE / DELETE, one trigger each: transition tables
-- allow one event per trigger): one INSERT writes the rows of the whole statement, old
-- and new rows paired by id (bench/bench_bulk.py, bench_audit.py). The actor is read
-- once per statement, and redactions are applied only where a table has any.
-- security definer: audit_log accepts no writes from API roles.
create or replace function cfg_private.audit_changes()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    -- The same sources as current_actor(), read inline: one-row statements are the common
    -- case, and the function call doubled the row-level trigger's cost (bench_audit.py).
    claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
    actor_id uuid := coalesce(claims ->> 'sub', nullif(current_setting('request.jwt.claim.sub', true), ''))::uuid;
    actor_email text := coalesce(claims ->> 'email', nullif(current_setting('request.jwt.claim.email', true), ''));
    actor_role text := coalesce(
        claims ->> 'role',
        nullif(current_setting('request.jwt.claim.role', true), ''),
        nullif(current_setting('role', true), 'none'),
        session_user::text
    );
    args text [] := coalesce(tg_argv, '{}'::text []);
    omitted text [] := '{}';
    watched text [] := '{}';
    -- {column: "[redacted]"} for the redacted columns, null when there are none.
    masks jsonb;
    readable_by cfg.org_role := 'editor';
    old_list jsonb [];
    new_list jsonb [];
    changed_columns text [];
begin
    if cardinality(args) > 0 then
        select
            coalesce(array_agg(substr(a, 2)) filter (where left(a, 1) = '-'), '{}'),
            coalesce(array_agg(substr(a, 2)) filter (where left(a, 1) = '+'), '{}'),
            jsonb_object_agg(a, '[redacted]') filter (where left(a, 1) not in ('-', '+', '@')),
            case when bool_or(a = '@admin') then 'admin' else 'editor' end
        into omitted, watched, masks, readable_by
        from unnest(args) as a;
    end if;
    -- Many rows updated at once (a bulk change): a query built for the table. Not for one
    -- or a few rows, where building and planning it would cost more than it saves, nor for
    -- entry_secrets (its automation is its entry's, see below).
    -- (Nested: an IF's condition is one query, and a DELETE's trigger has no new_rows.)
    if tg_op = 'UPDATE' and tg_table_name <> 'entry_secrets' then
        if (select count(*) > 100 from new_rows) then
            execute cfg_private.audit_update_query(tg_relid, null) into changed_columns;
            if cardinality(changed_columns) > 0 then
                execute cfg_private.audit_update_query(tg_relid, changed_columns)
                using actor_id, actor_email, actor_role, omitted, watched, masks, readable_by;
            end if;
            return null;
        end if;
    end if;
    -- The statement's rows as (old, new) pairs, in the order it wrote them.
    if tg_op = 'INSERT' then
        select array_agg(to_jsonb(n)) into new_list from new_rows as n;
    elsif tg_op = 'DELETE' then
        select array_agg(to_jsonb(o)) into old_list from old_rows as o;
    else
        select array_agg(s.old_row), array_agg(s.new_row) into old_list, new_list
        from (
            select to_jsonb(o) as old_row, to_jsonb(n.w) as new_row
            from (select w, row_number() over () as pos from new_rows as w) as n
            join old_rows as o on o.id = (n.w).id
            order by n.pos
        ) as s;
    end if;

    insert into cfg.audit_log (
        org_id, automation_id, actor_id, actor_email, actor_role,
        table_name, row_id, operation, old_values, new_values, readable_by
    )
    select
        coalesce(r.any_row ->> 'org_id', r.any_row ->> 'id')::uuid,
        case
            when tg_table_name = 'automations' then (r.any_row ->> 'id')::uuid
            -- A secret value row has no automation_id of its own: its entry's. Entries
            -- deleted by a cascade are gone by now; their own audit rows name it.
            when tg_table_name = 'entry_secrets' then (
                select e.automation_id from cfg.config_entries as e
                where e.id = (r.any_row ->> 'id')::uuid
            )
            else (r.any_row ->> 'automation_id')::uuid
        end,
        actor_id, actor_email, actor_role,
        tg_table_name, (r.any_row ->> 'id')::uuid, tg_op,
        case when masks is null then v.old_values else v.old_values || coalesce(
            (select jsonb_object_agg(m.key, m.value) from jsonb_each(masks) as m where v.old_values ? m.key), '{}'
        ) end,
        case when masks is null then v.new_values else v.new_values || coalesce(
            (select jsonb_object_agg(m.key, m.value) from jsonb_each(masks) as m where v.new_values ? m.key), '{}'
        ) end,
        readable_by
    from unnest(old_list, new_list) as p (old_row, new_row)
    cross join lateral (select coalesce(p.new_row, p.old_row) as any_row) as r
    -- An update keeps only what changed; updated_at changes on every write and says nothing.
    cross join lateral (
        select jsonb_object_agg(n.key, p.old_row -> n.key) as old_values, jsonb_object_agg(n.key, n.value) as new_values
        from jsonb_each(p.new_row) as n
        where tg_op = 'UPDATE' and n.value is distinct from p.old_row -> n.key and n.key <> 'updated_at'
    ) as changed
    cross join lateral (
        select
            case when tg_op = 'UPDATE' then changed.old_values else p.old_row end - omitted as old_values,
            case when tg_op = 'UPDATE' then changed.new_values else p.new_row end - omitted as new_values
    ) as v
    where tg_op <> 'UPDATE'
        or changed.new_values is not null and (cardinality(watched) = 0 or changed.new_values ?| watched);
    return null;
end
$$;

revoke execute on function cfg_private.audit_changes() from public, anon, authenticated, service_role;

-- Every table in cfg is audited: each registers with cfg_private.register_table
-- (functions/05_tables.sql), which attaches these triggers with the table's arguments.
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
