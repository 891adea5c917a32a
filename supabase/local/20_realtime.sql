-- Supabase Realtime's SQL, recreated for the embedded cluster after reading
-- supabase/realtime (lib/realtime/tenants/repo/migrations, lib/realtime/tenants/
-- authorization.ex): the same names, signatures and behaviour, written by us.
-- On a hosted project Realtime's own migrations provide all of this.

-- Supabase Realtime streams the tables in this publication from the WAL (postgres_changes).
do $publication$
begin
    if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end
$publication$;

create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;

-- Broadcast and presence messages. Realtime reads inserted rows from the WAL and sends
-- them to the subscribers of `topic`; it also inserts probe rows here to check the RLS
-- policies of a joining client (read: select them back; write: insert as the client).
-- Partitioned by day on inserted_at: Realtime creates the partitions around today and
-- drops those older than 72 hours.
create table if not exists realtime.messages (
    topic text not null,
    extension text not null,
    payload jsonb,
    event text,
    private boolean default false,
    updated_at timestamp without time zone not null default now(),
    inserted_at timestamp without time zone not null default now(),
    id uuid not null default gen_random_uuid(),
    binary_payload bytea,
    primary key (id, inserted_at)
) partition by range (inserted_at);
create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic)
where extension = 'broadcast' and private is true;
alter table realtime.messages enable row level security;
alter table realtime.messages owner to supabase_realtime_admin;
grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;

-- The daily partitions from yesterday to three days ahead, and none older than 72 hours:
-- what Realtime's janitor does (Realtime.Tenants.create_messages_partitions and
-- Realtime.Messages.delete_old_messages). Ours, for the embedded stack only.
create or replace function realtime.local_maintain_partitions()
returns void
language plpgsql
set search_path = ''
as $$
declare
    day date;
    old record;
begin
    for day in select generate_series(current_date - 1, current_date + 3, interval '1 day')::date loop
        execute format(
            'create table if not exists realtime.%I partition of realtime.messages for values from (%L) to (%L)',
            'messages_' || to_char(day, 'YYYY_MM_DD'), day, day + 1
        );
        execute format('alter table realtime.%I owner to supabase_realtime_admin', 'messages_' || to_char(day, 'YYYY_MM_DD'));
    end loop;
    for old in
        select c.relname from pg_catalog.pg_inherits as i
        join pg_catalog.pg_class as c on c.oid = i.inhrelid
        where i.inhparent = 'realtime.messages'::regclass
          and to_date(substr(c.relname, 10), 'YYYY_MM_DD') < (now() - interval '72 hours')::date
    loop
        execute format('drop table if exists realtime.%I', old.relname);
    end loop;
end
$$;
revoke execute on function realtime.local_maintain_partitions() from public, anon, authenticated, service_role;
select realtime.local_maintain_partitions();

do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        perform cron.schedule(
            'realtime-local-partitions', '7 0 * * *', 'select realtime.local_maintain_partitions()'
        );
    end if;
end
$cron$;

-- The topic of the channel being authorised: Realtime sets realtime.topic before it
-- runs the policies; realtime.send sets it for the message it inserts.
create or replace function realtime.topic()
returns text
language sql stable
set search_path = ''
as $$
    select nullif(current_setting('realtime.topic', true), '')::text;
$$;
alter function realtime.topic() owner to supabase_realtime_admin;
grant execute on function realtime.topic() to postgres, anon, authenticated, service_role;

-- Broadcast from the database: one message on `topic`, private by default (only
-- clients the RLS policies let read the topic receive it). The payload gets an `id`
-- unless it has one. A failure never aborts the caller's transaction: Realtime logs a
-- warning and the message is lost, so cfgctl keeps its own log (cfg.changes_since).
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
set search_path = ''
as $$
declare
    generated_id uuid := gen_random_uuid();
begin
    begin
        perform set_config('realtime.topic', topic, true);
        insert into realtime.messages (id, payload, event, topic, private, extension)
        values (
            generated_id,
            case when payload ? 'id' then payload else jsonb_set(payload, '{id}', to_jsonb(generated_id)) end,
            event, topic, private, 'broadcast'
        );
    exception when others then
        raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
    end;
end
$$;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
grant execute on function realtime.send(jsonb, text, text, boolean) to postgres, anon, authenticated, service_role;

-- A row trigger's change as a broadcast: {old_record, record, operation, table, schema}.
create or replace function realtime.broadcast_changes(
    topic_name text, event_name text, operation text, table_name text, table_schema text,
    new record, old record, level text default 'ROW'
)
returns void
language plpgsql
set search_path = ''
as $$
begin
    if level = 'STATEMENT' then
        raise exception 'function can only be triggered for each row, not for each statement';
    end if;
    if operation not in ('INSERT', 'UPDATE', 'DELETE') then
        raise exception 'Unexpected operation type: %', operation;
    end if;
    perform realtime.send(
        jsonb_build_object(
            'old_record', old, 'record', new, 'operation', operation, 'table', table_name, 'schema', table_schema
        ),
        event_name, topic_name
    );
end
$$;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
owner to supabase_realtime_admin;
grant execute on function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
to postgres, anon, authenticated, service_role;
