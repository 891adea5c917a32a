-- =============================================================================
-- Realtime (issue 14): every change a dashboard shows is logged (cfg_private.changes)
-- and broadcast from the database to the private channels `org:<org_id>` and
-- `automation:<automation_id>`, in one place: this file. Who may join a channel is
-- RLS on realtime.messages (policies/realtime.sql). A reconnecting tab catches up
-- with cfg.changes_since. Shapes, cursors and the client pattern: docs/realtime.md.
-- =============================================================================

-- A cursor: the (xid, seq) key of a change as text that sorts like the key
-- (16 hex digits each), so clients compare cursors as plain strings.
create or replace function cfg_private.change_cursor(xid xid8, seq bigint)
returns text
language sql immutable
set search_path = ''
as $$
    select lpad(to_hex(xid::text::bigint), 16, '0') || '-' || lpad(to_hex(seq), 16, '0')
$$;
revoke execute on function cfg_private.change_cursor(xid8, bigint) from public, anon, authenticated, service_role;

-- Logs changes and broadcasts each to its org's topic and, when it concerns one
-- automation, to that automation's topic, in order. A change is {type, org_id,
-- automation_id, actor: {id, email}, data}; its message is the change with its cursor
-- (as `id` and `cursor`), `stable` and `at`, the same in the log and on both topics.
-- `stable` is a cursor every change before which was committed before these (its
-- transaction is older than this snapshot's xmin): a tab that received the message while
-- subscribed may resume from there (docs/realtime.md).
-- Set-based: a statement's changes are logged by one INSERT and broadcast by one INSERT
-- into realtime.messages, the row realtime.send would write for each (Realtime streams
-- every inserted row to its topic). realtime.send wraps each message in a subtransaction
-- of its own; one for all of them keeps its promise (a broadcast that fails, e.g. for a
-- missing partition, is dropped with a warning and never fails the write: the log keeps
-- the change for changes_since) at the cost of one step per statement, not per message.
-- realtime.send is SECURITY INVOKER, so the insert needs no privilege it did not need:
-- the owner's (postgres on a hosted project: INSERT on realtime.messages, BYPASSRLS).
-- security definer: API roles cannot write cfg_private. Executable by nobody: only the
-- triggers below (definer too) call it, so nobody can forge a change.
create or replace function cfg_private.broadcast_changes(changes jsonb [])
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    key_xid xid8 := pg_current_xact_id();
    stable text := cfg_private.change_cursor(pg_snapshot_xmin(pg_current_snapshot()), 0);
    -- Every cursor here is change_cursor(key_xid, seq): the xid half is computed once, the
    -- seq half inline (a per-row call of a function with its own search_path costs more
    -- than the rest of the row). tests/realtime pins that the two agree.
    xid_half text := split_part(cfg_private.change_cursor(key_xid, 0), '-', 1);
    first_seq bigint;
    last_seq bigint;
begin
    if cardinality(changes) = 0 then
        return;
    end if;
    -- In the order given, seq ascending with it (no sort: the ORDER BY follows the
    -- ordinality). The messages are then read back by key for the broadcast insert,
    -- which is cheaper than carrying thousands of rows in a variable.
    with logged as (
        insert into cfg_private.changes (seq, xid, org_id, automation_id, type, message, created_at)
        select s.seq, key_xid, (s.change ->> 'org_id')::uuid, (s.change ->> 'automation_id')::uuid, s.change ->> 'type',
            s.change || jsonb_build_object('id', k.cursor, 'cursor', k.cursor, 'stable', stable, 'at', now()), now()
        from (
            select c.change, c.n, nextval('cfg_private.changes_seq') as seq
            from unnest(changes) with ordinality as c (change, n)
            order by c.n
        ) as s
        cross join lateral (select xid_half || '-' || lpad(to_hex(s.seq), 16, '0') as cursor) as k
        returning seq
    )
    select min(l.seq), max(l.seq) into first_seq, last_seq from logged as l;
    begin
        insert into realtime.messages (payload, event, topic, private, extension)
        select l.message, l.type, t.topic, true, 'broadcast'
        from cfg_private.changes as l
        cross join lateral (
            values (1, 'org:' || l.org_id), (2, 'automation:' || l.automation_id)
        ) as t (place, topic)
        -- Another transaction's changes may hold keys in between: their xid differs.
        where l.seq between first_seq and last_seq and l.xid = key_xid and t.topic is not null
        order by l.seq, t.place;
    exception when others then
        raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
    end;
end
$$;
revoke execute on function cfg_private.broadcast_changes(jsonb []) from public, anon, authenticated, service_role;

-- The outbox already records, once per change and with the right type, what a
-- dashboard shows: automations, saves and rollbacks, promotion requests and their
-- decisions, validation status. Each becomes a broadcast of its non-secret part: no
-- content_hash (a digest over the content, secrets included); `changes` lists keys only.
-- Statement-level: the events one statement appended are broadcast together. In a batch
-- of a bulk operation, the changes of its automations are not broadcast at all: the
-- batch is one message on the org's topic, which automation tabs hear too
-- (broadcast_bulk_batch). Which automations a batch covers: a mark each, written by
-- definer code after checking the caller (bulk_batch_mark, bulk_decision_mark).
-- Realtime counts every row of realtime.messages against the project's messages per
-- second, subscribed or not, and drops what is over.
-- security definer: it calls broadcast_changes. Executable by nobody.
create or replace function cfg_private.broadcast_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    changes jsonb [];
begin
    select coalesce(array_agg(jsonb_build_object(
        'type', e.type, 'org_id', e.org_id, 'automation_id', e.automation_id,
        'actor', jsonb_build_object('id', e.actor_id, 'email', e.actor_email),
        'data', case
            when e.type like 'automation.%' then e.payload -> 'automation'
            else (e.payload - 'content_hash') || jsonb_build_object('environment_id', e.environment_id)
        end
    ) order by e.id), '{}')
    into changes
    from new_events as e
    where e.type in (
        'automation.created', 'automation.updated', 'automation.deleted', 'config.saved', 'config.rolled_back',
        'promotion.requested', 'promotion.approved', 'promotion.rejected', 'validation.status_changed',
        -- The end of a bulk operation, for the dashboard's progress bar (a summary: counts).
        'bulk.completed'
    )
    -- Not an automation of this transaction's bulk batch or decision: a key lookup per
    -- event, as a subquery. (As an anti-join, the planner takes the transition table for
    -- one row and reads every mark for each event: 5,000 x 5,000 for a bulk tag.)
    and not (select exists (
        select 1 from cfg_private.transaction_marks as m
        where m.txid = txid_current() and m.mark = 'bulk_batch' and m.subject_id = e.automation_id
    ));
    perform cfg_private.broadcast_changes(changes);
    return null;
end
$$;
revoke execute on function cfg_private.broadcast_event() from public, anon, authenticated, service_role;

create or replace trigger broadcast after insert on cfg_private.events
referencing new table as new_events
for each statement execute function cfg_private.broadcast_event();

-- An environment now runs another version (a save lands in the first environment, a
-- promotion moves the next): the outbox has no event of its own for this. Not in a
-- bulk batch or decision (its one message covers it; the same mark lookup as
-- broadcast_event's).
-- security definer: it calls broadcast_changes. Executable by nobody.
create or replace function cfg_private.broadcast_deployment()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
begin
    if (tg_op = 'UPDATE' and old.version_id = new.version_id) or exists (
        select 1 from cfg_private.transaction_marks as m
        where m.txid = txid_current() and m.mark = 'bulk_batch' and m.subject_id = new.automation_id
    ) then
        return null;
    end if;
    perform cfg_private.broadcast_changes(array[jsonb_build_object(
        'type', 'deployment.moved', 'org_id', new.org_id, 'automation_id', new.automation_id,
        'actor', jsonb_build_object('id', actor.actor_id, 'email', actor.actor_email),
        'data', jsonb_build_object(
            'environment_id', new.environment_id,
            'environment', (select e.slug from cfg.environments as e where e.id = new.environment_id),
            'version', new.version,
            'version_id', new.version_id,
            'previous_version', case when tg_op = 'UPDATE' then old.version end,
            'deployed_by', new.deployed_by_email
        )
    )]);
    return null;
end
$$;
revoke execute on function cfg_private.broadcast_deployment() from public, anon, authenticated, service_role;

create or replace trigger broadcast after insert or update of version_id on cfg.deployments
for each row execute function cfg_private.broadcast_deployment();

-- A batch of a bulk operation: one message on the org's topic for the batch, when
-- bulk_record records its items, instead of each automation's changes on two topics
-- (broadcast_event, broadcast_deployment). Supabase Realtime counts every broadcast
-- against the project's messages per second (100 on Free, 500 on Pro) and drops what is
-- over, every org's alike: a batch of 5,000 would silence the project's realtime for
-- seconds, and a bulk patch or promote (a few messages per automation, about 100
-- automations a second) for as long as it runs. The message says which automations
-- changed. For status, tag and untag it says how (`changes`, and the stamps every row
-- got), so a grid applies it as it would apply each automation.updated; for patch,
-- promote and delete `changes` is null, and a tab reloads (or drops) those it shows.
-- A tab open on one automation also hears its org's topic for these (docs/realtime.md).
-- Executable by nobody: the trigger below and bulk_decision_mark (definer) call it.
create or replace function cfg_private.bulk_batch_change(op cfg.bulk_operations, automation_ids jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
    row_change boolean := op.action in ('status', 'tag', 'untag');
begin
    return jsonb_build_object(
        'type', 'automations.bulk_updated', 'org_id', op.org_id, 'automation_id', null,
        'actor', jsonb_build_object('id', actor.actor_id, 'email', actor.actor_email),
        'data', jsonb_build_object(
            'operation_id', op.id, 'action', op.action, 'automation_ids', automation_ids,
            'changes', case op.action
                when 'status' then jsonb_build_object('status', op.options -> 'status')
                when 'tag' then jsonb_build_object('tags', jsonb_build_object('add', op.options -> 'tags'))
                when 'untag' then jsonb_build_object('tags', jsonb_build_object('remove', op.options -> 'tags'))
            end,
            -- What the update's row triggers stamped on each (touch_row, stamp_author).
            'updated_at', case when row_change then now() end,
            'updated_by', case when row_change then actor.actor_id end
        )
    );
end
$$;
revoke execute on function cfg_private.bulk_batch_change(cfg.bulk_operations, jsonb)
from public, anon, authenticated, service_role;

-- security definer: it calls broadcast_changes. Executable by nobody.
create or replace function cfg_private.broadcast_bulk_batch()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform cfg_private.broadcast_changes(array(
        select cfg_private.bulk_batch_change(o, i.ids)
        from (
            select n.operation_id, jsonb_agg(n.automation_id order by n.position) as ids
            from new_items as n
            where n.result = 'succeeded'
            group by n.operation_id
        ) as i
        join cfg.bulk_operations as o on o.id = i.operation_id
    ));
    return null;
end
$$;
revoke execute on function cfg_private.broadcast_bulk_batch() from public, anon, authenticated, service_role;

create or replace trigger broadcast after insert on cfg.bulk_operation_items
referencing new table as new_items
for each statement execute function cfg_private.broadcast_bulk_batch();

-- =============================================================================
-- Who may join a channel (called by the policies on realtime.messages once per
-- check, as an init plan): a member of the org of `org:<org_id>`, or of the org
-- that owns `automation:<automation_id>`. Anything else, a malformed topic
-- included, is nobody's.
-- security definer: it reads the automation's org whatever the caller may see; it
-- answers only for the caller's own membership.
-- =============================================================================

create or replace function cfg_private.realtime_may_join(topic text)
returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
declare
    uuid_pattern constant text := '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
    topic_org uuid;
begin
    if topic ~ ('^org:' || uuid_pattern || '$') then
        topic_org := substr(topic, 5)::uuid;
    elsif topic ~ ('^automation:' || uuid_pattern || '$') then
        select a.org_id into topic_org from cfg.automations as a where a.id = substr(topic, 12)::uuid;
    end if;
    return topic_org is not null and cfg_private.org_role(topic_org) is not null;
end
$$;
revoke execute on function cfg_private.realtime_may_join(text) from public, anon;
grant execute on function cfg_private.realtime_may_join(text) to authenticated, service_role;

-- =============================================================================
-- Catching up: the changes of an org (or of one of its automations) after a cursor,
-- in cursor order, served only from transactions older than this snapshot's xmin:
-- those can no longer commit, so no row ever appears behind a cursor already served.
-- =============================================================================

-- security definer: the log is in cfg_private. It checks the caller's role itself.
create or replace function cfg_private.changes_page(org_id uuid, after text, max_rows integer, automation_id uuid)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
    snap pg_snapshot := pg_current_snapshot();
    frontier text := cfg_private.change_cursor(pg_snapshot_xmin(snap), 0);
    head text := cfg_private.change_cursor(pg_snapshot_xmax(snap), 0);
    after_xid xid8;
    after_seq bigint;
    horizon cfg_private.changes_horizon;
    page jsonb;
    served integer;
    last_cursor text;
begin
    perform cfg_private.require_role(org_id, 'viewer', 'reading changes');
    if automation_id is not null and not exists (
        select 1 from cfg.automations as a where a.id = changes_page.automation_id and a.org_id = changes_page.org_id
    ) then
        raise exception 'automation not found'
            using errcode = 'PT404', detail = jsonb_build_object('automation_id', automation_id)::text;
    end if;
    if max_rows is null or max_rows not between 1 and 1000 then
        raise exception 'max_rows must be between 1 and 1000'
            using errcode = 'PT422',
                  detail = jsonb_build_object('errors', jsonb_build_array(
                      jsonb_build_object('path', 'max_rows', 'message', 'between 1 and 1000')
                  ))::text;
    end if;
    if after is null then
        -- A new tab: nothing to replay; it loads a snapshot and follows from here.
        return jsonb_build_object(
            'changes', '[]'::jsonb, 'next', frontier, 'head', head, 'more', false, 'resync', false, 'reason', null
        );
    end if;
    if after !~ '^[0-9a-f]{16}-[0-9a-f]{16}$' then
        raise exception 'after is not a cursor this API gave'
            using errcode = 'PT422',
                  detail = jsonb_build_object('errors', jsonb_build_array(
                      jsonb_build_object('path', 'after', 'message', 'a cursor as returned in "cursor" or "next"')
                  ))::text;
    end if;
    after_xid := (('x' || substr(after, 1, 16))::bit(64)::bigint)::text::xid8;
    after_seq := ('x' || substr(after, 18, 16))::bit(64)::bigint;
    select * into horizon from cfg_private.changes_horizon;
    if (after_xid, after_seq) > (pg_snapshot_xmax(snap), 0) or (after_xid, after_seq) < (horizon.xid, horizon.seq) then
        -- From another database (a restore) or older than what is kept: what was missed
        -- cannot be told, so the tab reloads a snapshot.
        -- Resume after the snapshot from the frontier, or from the horizon if that is newer
        -- (only a transaction running for longer than the retention could sit between them).
        return jsonb_build_object(
            'changes', '[]'::jsonb, 'next', greatest(frontier, cfg_private.change_cursor(horizon.xid, horizon.seq)),
            'head', head, 'more', false, 'resync', true,
            'reason', case when after_xid >= pg_snapshot_xmax(snap) then 'unknown_cursor' else 'expired_cursor' end
        );
    end if;
    select coalesce(jsonb_agg(c.message order by c.xid, c.seq), '[]'::jsonb), count(*),
           max(c.message ->> 'cursor')
    into page, served, last_cursor
    from (
        select ch.xid, ch.seq, ch.message
        from cfg_private.changes as ch
        where ch.org_id = changes_page.org_id
          -- As the topics carried them: all the org's, or the automation's and the bulk
          -- batches that changed it (broadcast_bulk_batch).
          and (changes_page.automation_id is null or ch.automation_id = changes_page.automation_id
               or ch.type = 'automations.bulk_updated'
               and ch.message -> 'data' -> 'automation_ids' ? changes_page.automation_id::text)
          and (ch.xid, ch.seq) > (after_xid, after_seq)
          and ch.xid < pg_snapshot_xmin(snap)
        order by ch.xid, ch.seq
        limit max_rows
    ) as c;
    return jsonb_build_object(
        'changes', page,
        -- A full page: go on from its last row; else everything before the frontier is served.
        'next', case when served = max_rows then last_cursor else greatest(after, frontier) end,
        'head', head,
        'more', served = max_rows,
        'resync', false,
        'reason', null
    );
end
$$;
revoke execute on function cfg_private.changes_page(uuid, text, integer, uuid) from public, anon;
grant execute on function cfg_private.changes_page(uuid, text, integer, uuid) to authenticated, service_role;

-- What a tab missed since `after` (a message's cursor or stable, or a previous next),
-- up to max_rows, as {changes, next, head, more, resync, reason}. After a reconnect,
-- call again with `next` until `next` >= the first call's `head` (docs/realtime.md).
create or replace function cfg.changes_since(
    org_id uuid, after text default null, max_rows integer default 100, automation_id uuid default null
)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
begin
    return cfg_private.changes_page(org_id, after, max_rows, automation_id);
end
$$;
revoke execute on function cfg.changes_since(uuid, text, integer, uuid) from public, anon;
grant execute on function cfg.changes_since(uuid, text, integer, uuid) to authenticated, service_role;

-- Retention (pg_cron, daily): changes older than `keep` go, and the horizon moves to
-- the newest key deleted, so a cursor behind it is told to re-sync.
-- The pg_cron job runs it as its owner; the service key may too, like the other retention jobs.
create or replace function cfg_private.trim_changes(keep interval)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    newest record;
    deleted integer;
begin
    with gone as (
        delete from cfg_private.changes as c where c.created_at < now() - keep returning c.xid, c.seq
    )
    select g.xid, g.seq, count(*) over () as n into newest from gone as g order by g.xid desc, g.seq desc limit 1;
    deleted := coalesce(newest.n, 0);
    if deleted > 0 then
        update cfg_private.changes_horizon as h
        set xid = newest.xid, seq = newest.seq, updated_at = now()
        where (h.xid, h.seq) < (newest.xid, newest.seq);
    end if;
    return deleted;
end
$$;
revoke execute on function cfg_private.trim_changes(interval) from public, anon, authenticated;
grant execute on function cfg_private.trim_changes(interval) to service_role;
