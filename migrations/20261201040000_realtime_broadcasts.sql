-- Realtime that is safe across tenants (issue 14): tenant data reaches browser tabs
-- through Broadcast from the database to private channels (`org:<id>`,
-- `automation:<id>`), authorised by RLS on realtime.messages (policies/realtime.sql),
-- never through postgres_changes. Functions: functions/95_realtime.sql. Docs:
-- docs/realtime.md.

-- =============================================================================
-- The change log: every broadcast change, kept 72 hours (as long as Realtime keeps
-- its messages), read back by cfg.changes_since. Keyed by (xid of the writing
-- transaction, seq): writers never wait for one another; a reader serves only rows
-- of transactions older than its snapshot's xmin, which can no longer change, so
-- what it has served never gains a row behind it (docs/realtime.md, "Cursors").
-- =============================================================================

create sequence cfg_private.changes_seq;

create table cfg_private.changes (
    -- Unique on its own; orders the rows of one transaction.
    seq bigint primary key default nextval('cfg_private.changes_seq'),
    xid xid8 not null default pg_current_xact_id(),
    org_id uuid not null,
    automation_id uuid,
    type text not null,
    -- The message as broadcast, cursor included (cfg.changes_since returns it as is).
    message jsonb not null,
    created_at timestamptz not null default now(),
    constraint changes_type_format check (type ~ '^[a-z_]+\.[a-z_]+$')
);
create index changes_org_cursor_idx on cfg_private.changes (org_id, xid, seq);
create index changes_created_at_idx on cfg_private.changes (created_at);

-- The newest key the retention job deleted: a cursor behind it may have missed rows.
create table cfg_private.changes_horizon (
    only_row boolean primary key default true,
    xid xid8 not null,
    seq bigint not null,
    updated_at timestamptz not null default now(),
    -- One row.
    constraint changes_horizon_one_row check (only_row)
);
insert into cfg_private.changes_horizon (xid, seq) values ('0', 0);

alter table cfg_private.changes enable row level security;
alter table cfg_private.changes_horizon enable row level security;
revoke all on cfg_private.changes, cfg_private.changes_horizon from public, anon, authenticated, service_role;
revoke all on sequence cfg_private.changes_seq from public, anon, authenticated, service_role;

-- =============================================================================
-- postgres_changes leaves tenant data: Realtime cannot apply RLS to a DELETE, so every
-- subscriber of a published table received the primary key of every deleted row, other
-- orgs' and anon included. Every cfg table leaves the publication (a uuid key still
-- says which row went, when, in which table); dashboards subscribe to private channels.
-- =============================================================================

do $publication$
declare
    published record;
begin
    for published in
        select schemaname, tablename from pg_catalog.pg_publication_tables
        where pubname = 'supabase_realtime' and schemaname in ('cfg', 'cfg_private')
    loop
        execute format('alter publication supabase_realtime drop table %I.%I', published.schemaname,
                       published.tablename);
    end loop;
end
$publication$;

-- =============================================================================
-- Retention: daily, 72 hours kept (see migrations/…_audit_and_outbox.sql for why jobs
-- are only scheduled in cron.database_name).
-- =============================================================================

do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        create extension if not exists pg_cron;
        perform cron.schedule(
            'cfgctl-realtime-changes-retention', '23 3 * * *',
            'select cfg_private.trim_changes(interval ''72 hours'')'
        );
    end if;
end
$cron$;
