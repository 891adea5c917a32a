-- =============================================================================
-- Bulk operations, the marks a batch's transaction carries (issue 12): its item rows
-- are not audited again, and its automations' changes reach Realtime as one message
-- per batch (functions/95_realtime.sql). Marks, not settings: only definer code writes
-- them (86_bulk.sql, after checking the author), and each covers only its operation's
-- automations. An admin's decision on a bulk promotion: 99_bulk_decisions.sql.
-- =============================================================================

-- Items are the record of an operation and link the audit rows their automations wrote:
-- their own inserts are not audited again, which would double the audit trail of every
-- bulk change. The versioned-write flag skips them (register_table, versioned => 'audit');
-- the mark is what makes the flag count (cfg_private.guard_versioned_write), and only
-- definer code writes it. on = false turns both off again.
create or replace function cfg_private.bulk_items_unaudited(operation_id uuid, on_ boolean)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    if on_ then
        insert into cfg_private.transaction_marks (mark, subject_id)
        values ('versioned_write', operation_id)
        on conflict do nothing;
    else
        delete from cfg_private.transaction_marks as m
        where m.txid = txid_current() and m.mark = 'versioned_write' and m.subject_id = operation_id;
    end if;
    perform set_config('cfgctl.versioned_write', case when on_ then 'on' else 'off' end, true);
end
$$;
revoke execute on function cfg_private.bulk_items_unaudited(uuid, boolean) from public, anon, authenticated, service_role;

-- Marks the transaction's automations whose changes a bulk message covers: the batch it
-- runs (bulk_claim, until bulk_record marks none) or the requests an admin decides
-- (bulk_decision_mark). Meanwhile the broadcast triggers send nothing about them, and
-- the org's topic gets one automations.bulk_updated instead (functions/95_realtime.sql,
-- docs/realtime.md). A mark per automation (subject_id), so it silences nothing else and
-- the triggers look each up by key. Replaces the transaction's earlier marks. A mark, not
-- a setting: only definer code writes it, after checking the caller.
create or replace function cfg_private.bulk_batch_mark(automation_ids uuid [])
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    delete from cfg_private.transaction_marks as m where m.txid = txid_current() and m.mark = 'bulk_batch';
    -- A plain insert (the ids are distinct, and no mark is left): an ON CONFLICT check per
    -- row would double its cost.
    insert into cfg_private.transaction_marks (mark, subject_id)
    select 'bulk_batch', a.id from unnest(automation_ids) as a (id);
end
$$;
revoke execute on function cfg_private.bulk_batch_mark(uuid []) from public, anon, authenticated, service_role;
