-- =============================================================================
-- Bulk operations, the records (issue 12): what an operation may ask for, and the
-- definer helpers that alone write cfg.bulk_operations and cfg.bulk_operation_items.
-- The engine and the RPCs are in 87_bulk_api.sql. Tables:
-- migrations/20261201010000_bulk_operations.sql.
--
-- Who acts: an operation runs with its author's rights, batch after batch (by the
-- author's client, or by the continuation worker acting as the author). The helpers
-- below check the caller themselves: members see an operation, only its author
-- records its batches, its author or an admin cancels it.
-- =============================================================================

-- The options of an action, checked: PT422 with detail.errors = [{path, message}]
-- naming every problem. Returns them with tags deduplicated.
create or replace function cfg_private.bulk_options(action text, options jsonb)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
    o jsonb := coalesce(options, '{}');
    errors jsonb := '[]';
    allowed text [] := array['dry_run', 'atomic', 'message', 'batch_size'];
    path_format constant text := '^[A-Za-z0-9_-]{1,100}\.[A-Za-z0-9_.-]{1,200}$';
    k text;
begin
    if action is null or action not in ('status', 'tag', 'untag', 'patch', 'promote', 'delete') then
        raise exception 'unknown bulk action %: use status, tag, untag, patch, promote or delete%',
            coalesce(quote_literal(left(action, 50)), 'null'),
            case when action = 'export' then ' (an export is cfg.export_automations with the same selection)' else '' end
            using errcode = 'PT422', detail = jsonb_build_object(
                'field', 'action', 'errors', jsonb_build_array(jsonb_build_object('path', 'action', 'message', 'unknown action'))
            )::text;
    end if;
    if jsonb_typeof(o) <> 'object' then
        raise exception 'bulk options must be an object'
            using errcode = 'PT422', detail = jsonb_build_object(
                'field', 'options', 'errors', jsonb_build_array(jsonb_build_object('path', 'options', 'message', 'not an object'))
            )::text;
    end if;
    allowed := allowed || case action
        when 'status' then array['status']
        when 'tag' then array['tags']
        when 'untag' then array['tags']
        when 'patch' then array['set', 'unset']
        when 'promote' then array['from_env', 'to_env', 'reason']
        else array[]::text []
    end;
    for k in select jsonb_object_keys(o) loop
        if not k = any(allowed) then
            errors := errors || jsonb_build_object('path', 'options.' || left(k, 100), 'message', 'not an option of ' || action);
        end if;
    end loop;
    if (o ? 'dry_run' and jsonb_typeof(o -> 'dry_run') <> 'boolean') then
        errors := errors || '{"path": "options.dry_run", "message": "true or false"}';
    end if;
    if (o ? 'atomic' and jsonb_typeof(o -> 'atomic') <> 'boolean') then
        errors := errors || '{"path": "options.atomic", "message": "true or false"}';
    end if;
    if o ? 'message' and (jsonb_typeof(o -> 'message') <> 'string' or length(o ->> 'message') > 2000) then
        errors := errors || '{"path": "options.message", "message": "text of at most 2000 characters"}';
    end if;
    if o ? 'batch_size' and not (
        jsonb_typeof(o -> 'batch_size') = 'number'
        and (o ->> 'batch_size')::numeric between 1 and 5000
        and (o ->> 'batch_size')::numeric = trunc((o ->> 'batch_size')::numeric)
    ) then
        errors := errors || '{"path": "options.batch_size", "message": "a whole number from 1 to 5000"}';
    end if;
    if action = 'status' and coalesce(o ->> 'status', '') not in ('active', 'paused', 'archived') then
        errors := errors || '{"path": "options.status", "message": "active, paused or archived"}';
    end if;
    if action in ('tag', 'untag') and not (
        jsonb_typeof(o -> 'tags') = 'array'
        and jsonb_array_length(o -> 'tags') between 1 and 50
        and not exists (
            select 1 from jsonb_array_elements(o -> 'tags') as t
            where jsonb_typeof(t) <> 'string' or t #>> '{}' !~ '^[^[:cntrl:][:space:]]{1,100}$'
        )
    ) then
        errors := errors || '{"path": "options.tags", "message": "1 to 50 tags, each 1-100 characters without spaces"}';
    end if;
    if action = 'patch' then
        if o ? 'set' and (
            jsonb_typeof(o -> 'set') <> 'object'
            or exists (select 1 from jsonb_object_keys(o -> 'set') as p where p !~ path_format)
            or (select count(*) from jsonb_object_keys(o -> 'set')) > 200
        ) then
            errors := errors || '{"path": "options.set", "message": "{\"section.key\": value, ...}, at most 200 keys"}';
        end if;
        if o ? 'unset' and (
            jsonb_typeof(o -> 'unset') <> 'array'
            or jsonb_array_length(o -> 'unset') > 200
            or exists (
                select 1 from jsonb_array_elements(o -> 'unset') as p
                where jsonb_typeof(p) <> 'string' or p #>> '{}' !~ path_format
            )
        ) then
            errors := errors || '{"path": "options.unset", "message": "[\"section.key\", ...], at most 200 keys"}';
        end if;
        if coalesce(jsonb_typeof(o -> 'set') = 'object' and o -> 'set' <> '{}', false) is false
            and coalesce(jsonb_typeof(o -> 'unset') = 'array' and o -> 'unset' <> '[]', false) is false then
            errors := errors || '{"path": "options", "message": "a patch sets or unsets at least one key"}';
        elsif jsonb_typeof(o -> 'set') = 'object' and jsonb_typeof(o -> 'unset') = 'array' and exists (
            select 1 from jsonb_array_elements_text(o -> 'unset') as p where o -> 'set' ? p
        ) then
            errors := errors || '{"path": "options.unset", "message": "a key is either set or unset"}';
        end if;
    end if;
    if action = 'promote' then
        if jsonb_typeof(o -> 'from_env') is distinct from 'string' or length(o ->> 'from_env') > 100 then
            errors := errors || '{"path": "options.from_env", "message": "the environment to promote from"}';
        end if;
        if jsonb_typeof(o -> 'to_env') is distinct from 'string' or length(o ->> 'to_env') > 100 then
            errors := errors || '{"path": "options.to_env", "message": "the environment to promote to"}';
        end if;
        if o ? 'reason' and (jsonb_typeof(o -> 'reason') <> 'string' or length(o ->> 'reason') > 2000) then
            errors := errors || '{"path": "options.reason", "message": "text of at most 2000 characters"}';
        end if;
    end if;
    if jsonb_array_length(errors) > 0 then
        raise exception 'invalid bulk options: % %', errors -> 0 ->> 'path', errors -> 0 ->> 'message'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'options', 'errors', errors)::text;
    end if;
    if action in ('tag', 'untag') then
        o := o || jsonb_build_object('tags', (
            select jsonb_agg(t order by n) from (
                select distinct on (t) t, n from jsonb_array_elements_text(o -> 'tags') with ordinality as e (t, n)
                order by t, n
            ) as d
        ));
    end if;
    return o;
end
$$;
revoke execute on function cfg_private.bulk_options(text, jsonb) from public, anon;
grant execute on function cfg_private.bulk_options(text, jsonb) to authenticated, service_role;

-- PT422 when a patch would set a key that is a secret in one of the automations: bulk
-- options are recorded as given, so a secret value must never be among them (set
-- secrets one automation at a time, `cfgctl config set`). security invoker: editors
-- read entries under RLS.
create or replace function cfg_private.bulk_refuse_secrets(action text, options jsonb, ids uuid [])
returns void
language plpgsql stable
set search_path = ''
as $$
declare
    found jsonb;
begin
    if action <> 'patch' or jsonb_typeof(options -> 'set') is distinct from 'object' then
        return;
    end if;
    select jsonb_agg(jsonb_build_object(
        'path', 'options.set.' || s.name || '.' || e.key, 'automation_id', e.automation_id,
        'message', 'a secret: set it with cfgctl config set'
    ))
    into found
    from cfg.config_entries as e
    join cfg.config_sections as s on s.id = e.section_id
    where e.automation_id = any(ids) and e.is_secret and options -> 'set' ? (s.name || '.' || e.key);
    if found is not null then
        raise exception 'a bulk patch never sets secret values: % is a secret', found -> 0 ->> 'path'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'options.set', 'errors', found)::text;
    end if;
end
$$;
revoke execute on function cfg_private.bulk_refuse_secrets(text, jsonb, uuid []) from public, anon;
grant execute on function cfg_private.bulk_refuse_secrets(text, jsonb, uuid []) to authenticated, service_role;

-- The result of an item that is not a visible automation of the org: what a single
-- call answers for an unknown id, for another org's alike.
create or replace function cfg_private.bulk_not_found(automation_id uuid)
returns jsonb
language sql immutable
set search_path = ''
as $$
    select jsonb_build_object(
        'automation_id', automation_id, 'result', 'not_found', 'code', 'PT404',
        'message', 'automation not found', 'detail', jsonb_build_object('automation_id', automation_id)
    )
$$;
revoke execute on function cfg_private.bulk_not_found(uuid) from public, anon;
grant execute on function cfg_private.bulk_not_found(uuid) to authenticated, service_role;

-- An operation as the RPCs return it: the record without its cursor (done says as much).
create or replace function cfg_private.bulk_summary(op cfg.bulk_operations)
returns jsonb
language sql immutable
set search_path = ''
as $$
    select to_jsonb(op) - 'cursor'
$$;
revoke execute on function cfg_private.bulk_summary(cfg.bulk_operations) from public, anon;
grant execute on function cfg_private.bulk_summary(cfg.bulk_operations) to authenticated, service_role;

-- The operation, for a caller who may see it (PT404 otherwise, another org's alike);
-- locked when lock is true. security definer: it must find the row to tell the two apart.
create or replace function cfg_private.bulk_operation_for(operation_id uuid, lock boolean)
returns cfg.bulk_operations
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.bulk_operations;
begin
    select * into found from cfg.bulk_operations as o where o.id = bulk_operation_for.operation_id;
    perform cfg_private.require_role_on(found.org_id, 'viewer', 'reading bulk operations', 'bulk operation',
                                        'operation_id', operation_id);
    if lock then
        select * into found from cfg.bulk_operations as o where o.id = found.id for update;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.bulk_operation_for(uuid, boolean) from public, anon, authenticated, service_role;

-- Ends an operation: its status, finished_at, and the one bulk.completed event.
create or replace function cfg_private.bulk_finish(operation_id uuid, status text)
returns cfg.bulk_operations
language plpgsql
security definer
set search_path = ''
as $$
declare
    op cfg.bulk_operations;
begin
    update cfg.bulk_operations as o
    set status = bulk_finish.status, finished_at = now(), heartbeat_at = now()
    where o.id = bulk_finish.operation_id
    returning * into op;
    perform cfg_private.emit_event(
        op.org_id, 'bulk.completed', 'bulk_operation', op.id, null,
        jsonb_build_object(
            'operation_id', op.id, 'action', op.action, 'status', op.status, 'atomic', op.atomic,
            'total', op.total, 'done', op.done, 'succeeded', op.succeeded, 'unchanged', op.unchanged,
            'failed', op.failed, 'not_found', op.not_found, 'rolled_back', op.rolled_back,
            'created_by', op.created_by_email
        )
    );
    return op;
end
$$;
revoke execute on function cfg_private.bulk_finish(uuid, text) from public, anon, authenticated, service_role;

-- Records a new operation: the selection resolved once (select_automations, as the
-- caller) into its targets (cfg_private.bulk_targets), the items not found recorded at
-- once. Editors and up.
-- security definer: nobody writes the records directly.
create or replace function cfg_private.bulk_start(org_id uuid, selection jsonb, action text, options jsonb)
returns cfg.bulk_operations
language plpgsql
security definer
set search_path = ''
as $$
declare
    op cfg.bulk_operations;
    ids uuid [];
    positions integer [];
    missing jsonb;
begin
    perform cfg_private.require_role(bulk_start.org_id, 'editor', 'bulk operations');
    options := cfg_private.bulk_options(action, options);
    select
        coalesce(array_agg(s.automation_id order by s.ord) filter (where s.found), '{}'),
        coalesce(array_agg(s.ord order by s.ord) filter (where s.found), '{}'),
        coalesce(jsonb_agg(cfg_private.bulk_not_found(s.automation_id) || jsonb_build_object('position', s.ord)
                           order by s.ord) filter (where not s.found), '[]')
    into ids, positions, missing
    from cfg.select_automations(bulk_start.org_id, selection) as s;
    perform cfg_private.bulk_refuse_secrets(action, options, ids);

    insert into cfg.bulk_operations (
        org_id, action, selection, options, atomic, batch_size, total, done, not_found, created_by, created_by_email
    )
    values (
        bulk_start.org_id, bulk_start.action, selection, options, coalesce((options ->> 'atomic')::boolean, false),
        coalesce((options ->> 'batch_size')::integer, 500),
        cardinality(ids) + jsonb_array_length(missing), jsonb_array_length(missing), jsonb_array_length(missing),
        (select auth.uid()), coalesce((select auth.email()), (select auth.role()), current_user::text)
    )
    returning * into op;
    insert into cfg_private.bulk_targets (operation_id, target_ids, target_positions) values (op.id, ids, positions);
    perform cfg_private.bulk_items_unaudited(op.id, true);
    insert into cfg.bulk_operation_items (org_id, operation_id, position, automation_id, result, code, message, detail)
    select op.org_id, op.id, (m ->> 'position')::integer, (m ->> 'automation_id')::uuid, m ->> 'result',
        m ->> 'code', m ->> 'message', m -> 'detail'
    from jsonb_array_elements(missing) as m;
    perform cfg_private.bulk_items_unaudited(op.id, false);
    if cardinality(ids) = 0 then
        op := cfg_private.bulk_finish(op.id, case when op.atomic and op.not_found > 0 then 'failed' else 'completed' end);
    end if;
    return op;
end
$$;
revoke execute on function cfg_private.bulk_start(uuid, jsonb, text, jsonb) from public, anon;
grant execute on function cfg_private.bulk_start(uuid, jsonb, text, jsonb) to authenticated, service_role;

-- The next batch of a running operation, for its author only (it runs with the author's
-- rights). The operation stays locked until the caller commits, so two continuations
-- (the author's client and the worker) never run one batch twice; one that finds it
-- locked gets busy = true and no ids. An atomic operation's one batch is all its targets.
-- security definer: as bulk_start.
create or replace function cfg_private.bulk_claim(
    operation_id uuid, out op cfg.bulk_operations, out ids uuid [], out busy boolean
)
language plpgsql
security definer
set search_path = ''
as $$
begin
    op := cfg_private.bulk_operation_for(operation_id, false);
    if op.created_by is distinct from (select auth.uid()) then
        raise exception 'only the author of a bulk operation continues it (it runs with their rights)'
            using errcode = 'PT403', detail = jsonb_build_object('operation_id', op.id)::text;
    end if;
    select * into op from cfg.bulk_operations as o where o.id = op.id for update skip locked;
    busy := op.id is null;
    if busy then
        op := cfg_private.bulk_operation_for(operation_id, false);
    elsif op.status = 'running' then
        select t.target_ids[op.cursor + 1:case when op.atomic then cardinality(t.target_ids) else op.cursor + op.batch_size end]
        into ids
        from cfg_private.bulk_targets as t where t.operation_id = op.id;
        perform cfg_private.bulk_batch_mark(ids);
    end if;
end
$$;
revoke execute on function cfg_private.bulk_claim(uuid) from public, anon;
grant execute on function cfg_private.bulk_claim(uuid) to authenticated, service_role;

-- Records the results of the next batch (in target order, as the engine returns them)
-- with the audit rows this transaction wrote about each automation, and advances the
-- operation; finishes it after the last batch. Atomic: the whole target list at once,
-- and when anything failed the succeeded items are recorded as rolled back (the caller
-- rolled them back). security definer: as bulk_start; only the author records.
create or replace function cfg_private.bulk_record(operation_id uuid, results jsonb)
returns cfg.bulk_operations
language plpgsql
security definer
set search_path = ''
as $$
declare
    op cfg.bulk_operations := cfg_private.bulk_operation_for(operation_id, true);
    targets cfg_private.bulk_targets;
    n integer := jsonb_array_length(results);
    counts record;
    undo boolean;
begin
    select * into targets from cfg_private.bulk_targets as t where t.operation_id = op.id;
    if op.created_by is distinct from (select auth.uid()) or op.status <> 'running' then
        raise exception 'only the author records the batches of a running bulk operation'
            using errcode = 'PT403', detail = jsonb_build_object('operation_id', op.id, 'status', op.status)::text;
    end if;
    -- One reading of the results for the check and the counts (thousands of items).
    select
        coalesce(bool_or(r.automation_id is distinct from targets.target_ids[op.cursor + r.i::integer]), false)
        as mismatched,
        count(*) filter (where r.result = 'succeeded') as succeeded,
        count(*) filter (where r.result = 'unchanged') as unchanged,
        count(*) filter (where r.result = 'failed') as failed,
        count(*) filter (where r.result = 'not_found') as not_found
    into counts
    from (
        select (e.item ->> 'automation_id')::uuid as automation_id, e.item ->> 'result' as result, e.i
        from jsonb_array_elements(results) with ordinality as e (item, i)
    ) as r;
    if n = 0 or (op.atomic and n <> cardinality(targets.target_ids)) or counts.mismatched then
        raise exception 'these results are not those of the next batch'
            using errcode = 'PT409', detail = jsonb_build_object('operation_id', op.id, 'cursor', op.cursor)::text;
    end if;
    -- All or nothing: anything failed (or not found at the start), nothing stays.
    undo := op.atomic and (op.not_found > 0 or counts.failed + counts.not_found > 0);

    perform cfg_private.bulk_items_unaudited(op.id, true);
    with audited as (
        select l.automation_id, array_agg(l.id order by l.id) as ids
        from cfg.audit_log as l
        where l.org_id = op.org_id and l.created_at = now() and l.txid = txid_current() and not undo
        group by l.automation_id
    )
    insert into cfg.bulk_operation_items (
        org_id, operation_id, position, automation_id, result, code, message, detail, version_id, request_id, audit_ids
    )
    select op.org_id, op.id, targets.target_positions[op.cursor + r.i::integer], (r.item ->> 'automation_id')::uuid,
        case when undo and r.item ->> 'result' = 'succeeded' then 'rolled_back' else r.item ->> 'result' end,
        r.item ->> 'code', r.item ->> 'message', r.item -> 'detail',
        case when not undo then (r.item ->> 'version_id')::uuid end,
        case when not undo then (r.item ->> 'request_id')::uuid end,
        coalesce(a.ids, '{}')
    from jsonb_array_elements(results) with ordinality as r (item, i)
    left join audited as a on a.automation_id = (r.item ->> 'automation_id')::uuid;
    perform cfg_private.bulk_items_unaudited(op.id, false);
    perform cfg_private.bulk_batch_mark('{}');

    update cfg.bulk_operations as o
    set cursor = o.cursor + n, done = o.done + n, heartbeat_at = now(),
        succeeded = o.succeeded + case when undo then 0 else counts.succeeded end, unchanged = o.unchanged + counts.unchanged,
        failed = o.failed + counts.failed, not_found = o.not_found + counts.not_found,
        rolled_back = o.rolled_back + case when undo then counts.succeeded else 0 end
    where o.id = op.id
    returning o.* into op;
    if op.cursor = cardinality(targets.target_ids) then
        op := cfg_private.bulk_finish(op.id, case when undo then 'failed' else 'completed' end);
    end if;
    return op;
end
$$;
revoke execute on function cfg_private.bulk_record(uuid, jsonb) from public, anon;
grant execute on function cfg_private.bulk_record(uuid, jsonb) to authenticated, service_role;

-- Cancels a running operation between batches (it waits for a batch in flight): its
-- author or an admin of its org. security definer: nobody writes the records directly.
create or replace function cfg_private.cancel_bulk_operation(operation_id uuid)
returns cfg.bulk_operations
language plpgsql
security definer
set search_path = ''
as $$
declare
    op cfg.bulk_operations := cfg_private.bulk_operation_for(operation_id, true);
begin
    if op.created_by is distinct from (select auth.uid()) and not cfg_private.is_admin_of(op.org_id) then
        perform cfg_private.require_role(op.org_id, 'admin', 'cancelling another member''s bulk operation');
    end if;
    if op.status not in ('queued', 'running') then
        raise exception 'the bulk operation is already %', op.status
            using errcode = 'PT409', detail = jsonb_build_object('operation_id', op.id, 'status', op.status)::text;
    end if;
    update cfg.bulk_operations as o set cancelled_by = (select auth.uid()) where o.id = op.id;
    return cfg_private.bulk_finish(op.id, 'cancelled');
end
$$;
revoke execute on function cfg_private.cancel_bulk_operation(uuid) from public, anon;
grant execute on function cfg_private.cancel_bulk_operation(uuid) to authenticated, service_role;

-- For the continuation worker (sync_service/workers/bulk.py): running operations with
-- no progress for stale_after, leased (heartbeat_at = now()) so one worker takes each.
create or replace function cfg_private.stalled_bulk_operations(stale_after interval, max_count integer)
returns table (operation_id uuid, author_id uuid, author_email text)
language plpgsql
security definer
set search_path = ''
as $$
begin
    return query
    with stalled as (
        select o.id from cfg.bulk_operations as o
        where o.status = 'running' and o.heartbeat_at < now() - stale_after
        order by o.heartbeat_at
        limit max_count
        for update skip locked
    )
    update cfg.bulk_operations as o set heartbeat_at = now()
    from stalled
    where o.id = stalled.id
    returning o.id, o.created_by, o.created_by_email;
end
$$;
revoke execute on function cfg_private.stalled_bulk_operations(interval, integer) from public, anon, authenticated;
grant execute on function cfg_private.stalled_bulk_operations(interval, integer) to service_role;

-- The worker gives up on an operation its author can no longer continue (left the org,
-- lost the role, account deleted): failed, with the reason.
create or replace function cfg_private.fail_bulk_operation(operation_id uuid, error jsonb)
returns cfg.bulk_operations
language plpgsql
security definer
set search_path = ''
as $$
begin
    update cfg.bulk_operations as o set error = fail_bulk_operation.error
    where o.id = fail_bulk_operation.operation_id and o.status = 'running';
    if not found then
        return null;
    end if;
    return cfg_private.bulk_finish(operation_id, 'failed');
end
$$;
revoke execute on function cfg_private.fail_bulk_operation(uuid, jsonb) from public, anon, authenticated;
grant execute on function cfg_private.fail_bulk_operation(uuid, jsonb) to service_role;

-- Operations: audited when created and when they end (status, cancelled_by, error); a
-- batch's progress (cursor, counts, heartbeat) is bookkeeping, and the selection is kept
-- by the row, not copied into the audit (thousands of ids, re-read by every batch's audit).
-- Items: audited, except the inserts cfgctl makes (cfg_private.bulk_items_unaudited).
select cfg_private.register_table('cfg.bulk_operations', audit_arguments => '{-selection,+status,+cancelled_by,+error}');
select cfg_private.register_table('cfg.bulk_operation_items', audit_arguments => '{-audit_ids}', versioned => 'audit');
