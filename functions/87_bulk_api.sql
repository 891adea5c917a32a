-- =============================================================================
-- Bulk operations, the engine and the RPCs (issue 12). The records and their definer
-- helpers are in 86_bulk.sql.
--
-- Each item runs exactly what a single call runs, as the caller: patch_config,
-- promote, delete_automation inside a sub-block, so roles, conflicts and validation
-- rules are checked per item and a failure is recorded with the SQLSTATE, message and
-- detail that call gave. Status and tags are one UPDATE per batch (its row triggers
-- still audit each row and emit each automation.updated event), falling back to one
-- row at a time when the statement fails, so only the offending rows fail.
-- Best effort: batches of batch_size, each in its own transaction (bulk_apply runs
-- the first, bulk_continue each next). Atomic: everything in bulk_apply's transaction.
-- A dry run runs the same code and rolls it back.
-- =============================================================================

-- Raised to roll a block back on purpose (a dry run, a failed atomic operation).
-- SQLSTATE BK000 is ours: no PostgreSQL error uses class BK.

-- A failed item from the error its call raised: not_found when the automation is not
-- (or no longer) visible, like a single call's PT404.
create or replace function cfg_private.bulk_failed(automation_id uuid, state text, message text, detail text)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    parsed jsonb;
begin
    if not exists (select 1 from cfg.automations as a where a.id = bulk_failed.automation_id) then
        return cfg_private.bulk_not_found(automation_id);
    end if;
    begin
        parsed := nullif(detail, '')::jsonb;
    exception when others then
        parsed := to_jsonb(detail);
    end;
    return jsonb_build_object(
        'automation_id', automation_id, 'result', 'failed', 'code', state, 'message', message, 'detail', parsed
    );
end
$$;
revoke execute on function cfg_private.bulk_failed(uuid, text, text, text) from public, anon;
grant execute on function cfg_private.bulk_failed(uuid, text, text, text) to authenticated, service_role;

-- Status, tag, untag: one UPDATE for the whole batch, as the caller (RLS: editors).
-- A row already as asked is unchanged; an id no longer visible is not found. preview:
-- each item says what it changes (the caller rolls the update back).
create or replace function cfg_private.bulk_set_attributes(
    org_id uuid, action text, options jsonb, ids uuid [], preview boolean
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    wanted_status cfg.automation_status := options ->> 'status';
    wanted_tags text [] := array(select jsonb_array_elements_text(options -> 'tags'));
    results jsonb;
begin
    with visible as (
        select a.id, a.status, a.tags from cfg.automations as a
        where a.id = any(ids) and a.org_id = bulk_set_attributes.org_id
    ),
    changed as (
        update cfg.automations as a
        set status = case when action = 'status' then wanted_status else a.status end,
            updated_at = now(), updated_by = coalesce((select auth.uid()), a.updated_by), -- as the row triggers would: they skip
            tags = case action
                when 'tag' then a.tags || array(select t from unnest(wanted_tags) as t where t <> all(a.tags))
                when 'untag' then array(select t from unnest(a.tags) as t where t <> all(wanted_tags))
                else a.tags
            end
        where a.id = any(ids) and a.org_id = bulk_set_attributes.org_id
            and case action
                when 'status' then a.status <> wanted_status
                when 'tag' then not a.tags @> wanted_tags
                else a.tags && wanted_tags
            end
        returning a.id, a.status, a.tags
    )
    select jsonb_agg(
        case
            when v.id is null then cfg_private.bulk_not_found(u.id)
            when c.id is null then jsonb_build_object('automation_id', u.id, 'result', 'unchanged')
            when not preview then jsonb_build_object('automation_id', u.id, 'result', 'succeeded')
            else jsonb_build_object('automation_id', u.id, 'result', 'succeeded', 'preview', case
                when action = 'status' then jsonb_build_object('status', jsonb_build_object('from', v.status, 'to', c.status))
                else jsonb_build_object('tags', jsonb_build_object('from', v.tags, 'to', c.tags))
            end)
        end
        order by u.n
    )
    into results
    from unnest(ids) with ordinality as u (id, n)
    left join visible as v on v.id = u.id
    left join changed as c on c.id = u.id;
    return coalesce(results, '[]');
end
$$;
revoke execute on function cfg_private.bulk_set_attributes(uuid, text, jsonb, uuid [], boolean) from public, anon;
grant execute on function cfg_private.bulk_set_attributes(uuid, text, jsonb, uuid [], boolean)
to authenticated, service_role;

-- One item of a patch, promote or delete: the single call, as the caller. Raises what
-- it raises (bulk_run records it). preview: the item's diff as the call's dry run shows it.
create or replace function cfg_private.bulk_run_one(
    org_id uuid, action text, options jsonb, automation_id uuid, preview boolean
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    before jsonb;
    answer jsonb;
    state text;
    detail text;
    msg text;
    done jsonb := jsonb_build_object('automation_id', automation_id, 'result', 'succeeded');
begin
    if action = 'patch' then
        -- Checked again per item: an entry may have become a secret since the start.
        perform cfg_private.bulk_refuse_secrets(action, options, array[automation_id]);
        if preview then
            before := cfg.get_config(automation_id) -> 'content';
        end if;
        answer := cfg.patch_config(
            automation_id, null,
            coalesce((
                select jsonb_object_agg(s.section, s.entries) from (
                    select split_part(p.key, '.', 1) as section,
                        jsonb_object_agg(substr(p.key, strpos(p.key, '.') + 1), jsonb_build_object('value', p.value)) as entries
                    from jsonb_each(options -> 'set') as p
                    group by 1
                ) as s
            ), '{}'),
            coalesce((
                select jsonb_object_agg(s.section, s.keys) from (
                    select split_part(p, '.', 1) as section, jsonb_agg(substr(p, strpos(p, '.') + 1)) as keys
                    from jsonb_array_elements_text(options -> 'unset') as p
                    group by 1
                ) as s
            ), '{}'),
            coalesce(options ->> 'message', '')
        );
        if not (answer ->> 'created')::boolean then
            return done || '{"result": "unchanged"}';
        end if;
        done := done || jsonb_build_object('version_id', answer -> 'version_id', 'version', answer -> 'version');
        if preview then
            done := done || jsonb_build_object('preview', cfg_private.diff_contents(before, cfg.get_config(automation_id) -> 'content'));
        end if;
        return done;
    elsif action = 'promote' then
        begin
            answer := cfg.promote(
                automation_id, options ->> 'from_env', options ->> 'to_env', false,
                options ->> 'reason', options ->> 'message'
            );
        exception when sqlstate 'PT409' then
            -- The target already runs that version: nothing to do, as for a status already set.
            get stacked diagnostics state = returned_sqlstate, msg = message_text, detail = pg_exception_detail;
            if detail::jsonb ?& array['automation_id', 'environment', 'version'] and not detail::jsonb ? 'request_id' then
                return done || '{"result": "unchanged"}';
            end if;
            raise exception '%', msg using errcode = state, detail = detail;
        end;
        done := done || jsonb_build_object('request_id', answer -> 'request_id', 'promotion', answer ->> 'action');
        if preview then
            done := done || jsonb_build_object('preview', answer - 'dry_run' - 'action' - 'request_id' - 'status' - 'supersedes');
        end if;
        return done;
    elsif action = 'delete' then
        answer := to_jsonb(cfg.delete_automation(automation_id));
        return done || case when preview then jsonb_build_object('preview', jsonb_build_object('delete', answer ->> 'slug')) else '{}' end;
    end if;
    -- Status and tags one at a time (after their batch statement failed).
    answer := cfg_private.bulk_set_attributes(org_id, action, options, array[automation_id], preview) -> 0;
    if answer ->> 'result' = 'not_found' then
        raise exception 'automation not found' using errcode = 'PT404', detail = answer ->> 'detail';
    end if;
    return answer;
end
$$;
revoke execute on function cfg_private.bulk_run_one(uuid, text, jsonb, uuid, boolean) from public, anon;
grant execute on function cfg_private.bulk_run_one(uuid, text, jsonb, uuid, boolean) to authenticated, service_role;

-- The engine: the results of action on ids, in order, one per id.
create or replace function cfg_private.bulk_run(org_id uuid, action text, options jsonb, ids uuid [], preview boolean)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    results jsonb [] := '{}';
    id uuid;
    state text;
    msg text;
    detail text;
begin
    if action in ('status', 'tag', 'untag') then
        begin
            return cfg_private.bulk_set_attributes(org_id, action, options, ids, preview);
        exception when others then
            null;  -- a row the statement refused (a check, a trigger): row by row below, so only it fails
        end;
    end if;
    foreach id in array ids loop
        begin
            results := results || cfg_private.bulk_run_one(org_id, action, options, id, preview);
        exception when others then
            get stacked diagnostics state = returned_sqlstate, msg = message_text, detail = pg_exception_detail;
            results := results || cfg_private.bulk_failed(id, state, msg, detail);
        end;
    end loop;
    return to_jsonb(results);
end
$$;
revoke execute on function cfg_private.bulk_run(uuid, text, jsonb, uuid [], boolean) from public, anon;
grant execute on function cfg_private.bulk_run(uuid, text, jsonb, uuid [], boolean) to authenticated, service_role;

-- The items an operation recorded (only those recorded by this transaction: the batch
-- just run), in selection order, with the status of their promotion requests.
-- One to_jsonb of the item rows, not an object built per item: about half the cost for
-- thousands of items. The columns are listed in the order jsonb keeps an object's keys
-- (shorter first, then bytewise), so no item's keys need sorting; the answer is the same.
-- security invoker: members read them under RLS.
create or replace function cfg_private.bulk_items(operation_id uuid, this_transaction boolean)
returns jsonb
language sql stable
set search_path = ''
as $$
    select coalesce(to_jsonb(array_agg(item order by item.position)), '[]')
    from (
        select i.code, a.slug, i.detail, i.result, i.message, i.position, i.audit_ids, i.request_id,
            i.version_id, i.automation_id, r.status as request_status
        from cfg.bulk_operation_items as i
        left join cfg.automations as a on a.id = i.automation_id and a.org_id = i.org_id
        left join cfg.promotion_requests as r on r.id = i.request_id
        where i.operation_id = bulk_items.operation_id and (not this_transaction or i.created_at = now())
    ) as item
$$;
revoke execute on function cfg_private.bulk_items(uuid, boolean) from public, anon;
grant execute on function cfg_private.bulk_items(uuid, boolean) to authenticated, service_role;

-- Applies action to the automations of selection (cfg.select_automations) in org_id.
-- Editors and up; per item, the role the single call needs (delete: admins).
--   action  options
--   status  {status: active|paused|archived}
--   tag     {tags: [...]}           untag {tags: [...]}
--   patch   {set: {"section.key": value}, unset: ["section.key"]}  (patch_config)
--   promote {from_env, to_env, reason?}  (promote; targets needing approval get a request each)
--   delete  {}                       (delete_automation)
-- and for all: dry_run (previews, nothing changes, nothing recorded), atomic (all or
-- nothing, one transaction), message (versions' and promotions'), batch_size (500).
-- Returns the operation with items (the first batch's, and those not found); when its
-- status is still running, call bulk_continue until it is not.
-- security invoker: every item runs as the caller; the records are written by 86_bulk.sql.
create or replace function cfg.bulk_apply(org_id uuid, selection jsonb, action text, options jsonb default '{}')
returns jsonb
language plpgsql
set jit = off
set search_path = ''
as $$
declare
    checked jsonb;
    op cfg.bulk_operations;
    claim record;
    ids uuid [];
    positions integer [];
    missing jsonb;
    results jsonb;
begin
    perform cfg_private.require_role(bulk_apply.org_id, 'editor', 'bulk operations');
    checked := cfg_private.bulk_options(action, options);
    if not coalesce((checked ->> 'dry_run')::boolean, false) then
        op := cfg_private.bulk_start(bulk_apply.org_id, selection, action, checked);
        if not op.atomic then
            return cfg.bulk_continue(op.id);
        end if;
        select * into claim from cfg_private.bulk_claim(op.id);  -- all its targets: one batch
        if claim.ids is not null then
            begin
                results := cfg_private.bulk_run(op.org_id, op.action, op.options, claim.ids, false);
                if op.not_found > 0 or jsonb_path_exists(results, '$[*] ? (@.result == "failed")') then
                    raise exception 'atomic bulk operation failed' using errcode = 'BK000';
                end if;
            exception when sqlstate 'BK000' then
                null;  -- every item's work is undone; bulk_record says so
            end;
            op := cfg_private.bulk_record(op.id, results);
        end if;
        return jsonb_set(cfg_private.bulk_summary(op), '{items}', cfg_private.bulk_items(op.id, false));
    end if;

    -- A dry run: the same engine, rolled back; nothing is recorded.
    select coalesce(array_agg(s.automation_id order by s.ord) filter (where s.found), '{}'),
        coalesce(array_agg(s.ord order by s.ord) filter (where s.found), '{}'),
        coalesce(jsonb_agg(cfg_private.bulk_not_found(s.automation_id) || jsonb_build_object('position', s.ord))
                 filter (where not s.found), '[]')
    into ids, positions, missing
    from cfg.select_automations(bulk_apply.org_id, selection) as s;
    perform cfg_private.bulk_refuse_secrets(action, checked, ids);
    begin
        results := cfg_private.bulk_run(bulk_apply.org_id, action, checked, ids, true);
        raise exception 'dry run' using errcode = 'BK000';
    exception when sqlstate 'BK000' then
        null;
    end;
    select jsonb_agg(i order by (i ->> 'position')::integer) into results
    from (
        select r.item || jsonb_build_object('position', positions[r.n::integer]) as i
        from jsonb_array_elements(results) with ordinality as r (item, n)
        union all
        select m from jsonb_array_elements(missing) as m
    ) as all_items;
    return jsonb_build_object(
        'dry_run', true, 'org_id', bulk_apply.org_id, 'action', action, 'options', checked,
        'total', jsonb_array_length(coalesce(results, '[]')),
        'succeeded', jsonb_array_length(coalesce(jsonb_path_query_array(results, '$[*] ? (@.result == "succeeded")'), '[]')),
        'unchanged', jsonb_array_length(coalesce(jsonb_path_query_array(results, '$[*] ? (@.result == "unchanged")'), '[]')),
        'failed', jsonb_array_length(coalesce(jsonb_path_query_array(results, '$[*] ? (@.result == "failed")'), '[]')),
        'not_found', jsonb_array_length(missing),
        'items', coalesce(results, '[]')
    );
end
$$;
revoke execute on function cfg.bulk_apply(uuid, jsonb, text, jsonb) from public, anon;
grant execute on function cfg.bulk_apply(uuid, jsonb, text, jsonb) to authenticated, service_role;

-- Runs the next batch of a running best-effort operation, as its author, in the
-- caller's transaction. Returns the operation with that batch's items; busy = true when
-- another continuation holds it (try again). Nothing to do once it is not running.
-- security invoker: the items run as the caller (the author: bulk_claim checks).
create or replace function cfg.bulk_continue(operation_id uuid)
returns jsonb
language plpgsql
set jit = off
set search_path = ''
as $$
declare
    claim record;
    op cfg.bulk_operations;
begin
    select * into claim from cfg_private.bulk_claim(operation_id);
    op := claim.op;
    if claim.ids is not null then
        op := cfg_private.bulk_record(op.id, cfg_private.bulk_run(op.org_id, op.action, op.options, claim.ids, false));
    end if;
    -- jsonb_set copies the items once; || with a built object copied them twice.
    return jsonb_set(
        cfg_private.bulk_summary(op) || jsonb_build_object('busy', claim.busy), '{items}',
        cfg_private.bulk_items(op.id, true)
    );
end
$$;
revoke execute on function cfg.bulk_continue(uuid) from public, anon;
grant execute on function cfg.bulk_continue(uuid) to authenticated, service_role;

-- Cancels a running operation between batches: what is done stays done, the rest is
-- not attempted. Its author or an admin. security invoker: the helper checks the caller.
create or replace function cfg.cancel_bulk_operation(operation_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.bulk_summary(cfg_private.cancel_bulk_operation(operation_id));
end
$$;
revoke execute on function cfg.cancel_bulk_operation(uuid) from public, anon;
grant execute on function cfg.cancel_bulk_operation(uuid) to authenticated, service_role;

-- An operation with all its items (members). security invoker: RLS decides.
create or replace function cfg.get_bulk_operation(operation_id uuid)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    op cfg.bulk_operations;
begin
    select * into op from cfg.bulk_operations as o where o.id = get_bulk_operation.operation_id;
    if op.id is null then
        raise exception 'bulk operation not found'
            using errcode = 'PT404', detail = jsonb_build_object('operation_id', operation_id)::text;
    end if;
    return jsonb_set(cfg_private.bulk_summary(op), '{items}', cfg_private.bulk_items(op.id, false));
end
$$;
revoke execute on function cfg.get_bulk_operation(uuid) from public, anon;
grant execute on function cfg.get_bulk_operation(uuid) to authenticated, service_role;

-- The org's operations, newest first (members).
create or replace function cfg.list_bulk_operations(org_id uuid, max_count integer default 50)
returns table (
    id uuid, action text, status text, atomic boolean, total integer, done integer, succeeded integer,
    unchanged integer, failed integer, not_found integer, rolled_back integer, created_by_email text,
    created_at timestamptz, finished_at timestamptz
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_bulk_operations.org_id, 'viewer', 'reading bulk operations');
    return query
    select o.id, o.action, o.status, o.atomic, o.total, o.done, o.succeeded, o.unchanged, o.failed, o.not_found,
        o.rolled_back, o.created_by_email, o.created_at, o.finished_at
    from cfg.bulk_operations as o
    where o.org_id = list_bulk_operations.org_id
    order by o.created_at desc
    limit least(greatest(coalesce(max_count, 50), 1), 1000);
end
$$;
revoke execute on function cfg.list_bulk_operations(uuid, integer) from public, anon;
grant execute on function cfg.list_bulk_operations(uuid, integer) to authenticated, service_role;
