-- =============================================================================
-- Bulk operations, an admin's decision on a bulk promotion's requests (issue 12). After
-- realtime (95_realtime.sql): the decision reaches Realtime as one message, as a batch
-- of the operation does, not as each promotion's changes on two topics.
-- =============================================================================

-- Marks the transaction as an admin's decision on a bulk promotion's pending requests
-- (cfg.decide_bulk_promotions; on_ = true): meanwhile the changes of their automations
-- are not broadcast one by one (bulk_batch_mark). on_ = false removes the marks and
-- broadcasts one automations.bulk_updated listing `decided` (those of the operation's
-- requests), as a batch would be.
-- security definer: it writes the mark, for admins of the operation's org only.
create or replace function cfg_private.bulk_decision_mark(operation_id uuid, on_ boolean, decided uuid [] default '{}')
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    op cfg.bulk_operations := cfg_private.bulk_operation_for(operation_id, false);
begin
    perform cfg_private.require_role_on(op.org_id, 'admin', 'deciding promotions', 'bulk operation',
                                        'operation_id', op.id);
    if on_ then
        perform cfg_private.bulk_batch_mark(array(
            select i.automation_id
            from cfg.bulk_operation_items as i
            join cfg.promotion_requests as r on r.id = i.request_id
            where i.operation_id = op.id and r.status = 'pending'
        ));
        return;
    end if;
    perform cfg_private.bulk_batch_mark('{}');
    perform cfg_private.broadcast_changes(array(
        select cfg_private.bulk_batch_change(op, jsonb_agg(i.automation_id order by i.position))
        from cfg.bulk_operation_items as i
        join unnest(decided) as d (automation_id) on d.automation_id = i.automation_id
        where i.operation_id = op.id and i.request_id is not null
        having count(*) > 0
    ));
end
$$;
revoke execute on function cfg_private.bulk_decision_mark(uuid, boolean, uuid []) from public, anon;
grant execute on function cfg_private.bulk_decision_mark(uuid, boolean, uuid []) to authenticated, service_role;

-- Approves (or rejects, with comment as the reason) every still pending promotion
-- request of a bulk promotion, each by the single RPC (approve_promotion applies it;
-- an admin who is not its requester): per request, what that call answered. Single
-- requests are decided with approve_promotion / reject_promotion as ever. Realtime
-- gets one message for the decision, as for a batch (bulk_decision_mark).
-- security invoker: those RPCs check the caller.
create or replace function cfg.decide_bulk_promotions(operation_id uuid, approve boolean, comment text default null)
returns jsonb
language plpgsql
set jit = off
set search_path = ''
as $$
declare
    op cfg.bulk_operations;
    item record;
    results jsonb [] := '{}';
    state text;
    msg text;
    detail text;
begin
    select * into op from cfg.bulk_operations as o where o.id = decide_bulk_promotions.operation_id;
    perform cfg_private.require_role_on(op.org_id, 'admin', 'deciding promotions', 'bulk operation',
                                        'operation_id', operation_id);
    if approve is null then
        raise exception 'approve is true or false'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'approve')::text;
    end if;
    perform cfg_private.bulk_decision_mark(op.id, true);
    for item in
        select i.automation_id, i.request_id from cfg.bulk_operation_items as i
        join cfg.promotion_requests as r on r.id = i.request_id
        where i.operation_id = op.id and r.status = 'pending'
        order by i.position
    loop
        begin
            if approve then
                perform cfg.approve_promotion(item.request_id, comment);
            else
                perform cfg.reject_promotion(item.request_id, comment);
            end if;
            results := results || jsonb_build_object(
                'automation_id', item.automation_id, 'request_id', item.request_id,
                'result', case when approve then 'approved' else 'rejected' end
            );
        exception when others then
            get stacked diagnostics state = returned_sqlstate, msg = message_text, detail = pg_exception_detail;
            results := results || (cfg_private.bulk_failed(item.automation_id, state, msg, detail)
                || jsonb_build_object('request_id', item.request_id, 'result', 'failed'));
        end;
    end loop;
    perform cfg_private.bulk_decision_mark(op.id, false, array(
        select (r ->> 'automation_id')::uuid from unnest(results) as r where r ->> 'result' <> 'failed'
    ));
    return jsonb_build_object(
        'operation_id', op.id, 'approve', approve, 'decided', (
            select count(*) from unnest(results) as r where r ->> 'result' <> 'failed'
        ),
        'failed', (select count(*) from unnest(results) as r where r ->> 'result' = 'failed'),
        'items', to_jsonb(results)
    );
end
$$;
revoke execute on function cfg.decide_bulk_promotions(uuid, boolean, text) from public, anon;
grant execute on function cfg.decide_bulk_promotions(uuid, boolean, text) to authenticated, service_role;
