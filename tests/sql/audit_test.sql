-- The audit log, acting as real users the way PostgREST does: who, what and when;
-- redaction; append-only; retention; the audit_events RPC.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select plan(31);

insert into auth.users (id, email, email_confirmed_at) values
    ('00000000-0000-4000-b000-00000000000a', 'alice@example.test', now()),
    ('00000000-0000-4000-b000-00000000000b', 'bob@example.test', now()),
    ('00000000-0000-4000-b000-00000000000c', 'carol@example.test', now()),
    ('00000000-0000-4000-b000-00000000000d', 'dave@example.test', now());

create function pg_temp.act_as(email text) returns void
language sql as $$
    select set_config(
        'request.jwt.claims',
        jsonb_build_object('sub', u.id, 'email', u.email, 'role', 'authenticated', 'aud', 'authenticated')::text,
        true
    )
    from auth.users as u where u.email = act_as.email;
    set local role authenticated;
$$;

create function pg_temp.act_as_service() returns void
language sql as $$
    select set_config('request.jwt.claims', '{"role": "service_role"}', true);
    set local role service_role;
$$;

-- alice: admin of acme; bob: editor; carol: viewer; dave: admin of another org.
select pg_temp.act_as('alice@example.test');
do $$
declare
    acme uuid := (select id from cfg.create_org('Acme', 'acme'));
begin
    perform set_config('test.acme', acme::text, true);
    perform cfg.invite_member(acme, 'bob@example.test', 'editor');
    perform cfg.invite_member(acme, 'carol@example.test', 'viewer');
end
$$;
reset role;
-- They accept: members join only by invitation.
select pg_temp.act_as('bob@example.test');
do $$ begin perform cfg.accept_invitation((select id from cfg.org_invitations)); end $$;
reset role;
select pg_temp.act_as('carol@example.test');
do $$ begin perform cfg.accept_invitation((select id from cfg.org_invitations)); end $$;
reset role;
select pg_temp.act_as('dave@example.test');
do $$ begin perform cfg.create_org('Dave Co', 'dave-co'); end $$;
reset role;

-- =============================================================================
-- Who, what, when
-- =============================================================================

select pg_temp.act_as('bob@example.test');
do $$
declare
    created cfg.automations := cfg.create_automation(current_setting('test.acme')::uuid, 'Billing', 'billing');
    section uuid;
begin
    perform set_config('test.billing', created.id::text, true);
    perform set_config('test.txid', txid_current()::text, true);
    update cfg.automations set description = 'Bills people' where id = created.id;
    insert into cfg.config_sections (org_id, automation_id, name)
    values (created.org_id, created.id, 'http') returning id into section;
    insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret)
    values (created.org_id, created.id, section, 'api_key', '"sk_live_hunter2"', true);
    update cfg.config_entries set value = '"sk_live_hunter2_rotated"' where key = 'api_key';
end
$$;
reset role;

select results_eq(
    $$ select actor_id, actor_email, actor_role, org_id, automation_id
       from cfg.audit_log where table_name = 'automations' and operation = 'INSERT'
       and row_id = current_setting('test.billing')::uuid $$,
    $$ values ('00000000-0000-4000-b000-00000000000b'::uuid, 'bob@example.test'::text, 'authenticated'::text,
               current_setting('test.acme')::uuid, current_setting('test.billing')::uuid) $$,
    'an insert records the actor, the org and the automation'
);
select results_eq(
    $$ select old_values, new_values from cfg.audit_log
       where table_name = 'automations' and operation = 'UPDATE' $$,
    $$ values ('{"description": ""}'::jsonb, '{"description": "Bills people"}'::jsonb) $$,
    'an update records only the fields that changed'
);
select is(
    (select count(distinct txid)::int from cfg.audit_log where actor_email = 'bob@example.test'),
    1,
    'every row of one transaction shares its txid'
);
select is(
    (select min(txid) from cfg.audit_log where actor_email = 'bob@example.test'),
    current_setting('test.txid')::bigint,
    'and it is the writing transaction''s id'
);
select is(
    (select count(*)::int from cfg.audit_log where table_name = 'config_entries'
     and automation_id = current_setting('test.billing')::uuid),
    1,
    'entries are audited with their automation'
);

-- =============================================================================
-- Redaction
-- =============================================================================

select is(
    (select count(*)::int from cfg.audit_log as a where a::text like '%hunter2%'),
    0,
    'no audit row contains the secret value'
);
select results_eq(
    $$ select operation, new_values ->> 'secret_id', new_values ->> 'token' from cfg.audit_log
       where table_name = 'entry_secrets' order by id $$,
    $$ values ('INSERT'::text, '[redacted]'::text, '[redacted]'::text), ('UPDATE', '[redacted]', '[redacted]') $$,
    'secret value changes are audited, their Vault id and token redacted'
);
select is(
    (select count(*)::int from cfg_private.events as e where e::text like '%hunter2%'),
    0,
    'nor does any event'
);

-- =============================================================================
-- Service role and DBA work
-- =============================================================================

select pg_temp.act_as_service();
update cfg.automations set status = 'paused' where slug = 'billing';
reset role;
select results_eq(
    $$ select actor_id, actor_email, actor_role, new_values from cfg.audit_log
       where table_name = 'automations' order by id desc limit 1 $$,
    $$ values (null::uuid, null::text, 'service_role'::text, '{"status": "paused"}'::jsonb) $$,
    'the service key is recorded as service_role'
);
do $$ begin perform set_config('request.jwt.claims', '', true); end $$;
update cfg.automations set status = 'active' where slug = 'billing';
select is(
    (select actor_role from cfg.audit_log where table_name = 'automations' order by id desc limit 1),
    session_user::text,
    'DBA work is recorded with the database role'
);

-- =============================================================================
-- audit_events
-- =============================================================================

select pg_temp.act_as('bob@example.test');
select ok(
    (select count(*) from cfg.audit_events(current_setting('test.acme')::uuid)) > 5,
    'an editor reads the org''s log'
);
select is(
    (select count(*)::int from cfg.audit_events(current_setting('test.acme')::uuid,
                                                automation_id => current_setting('test.billing')::uuid)
     where automation_id is distinct from current_setting('test.billing')::uuid),
    0,
    'filtered by automation'
);
select is(
    (select count(*)::int from cfg.audit_events(current_setting('test.acme')::uuid, actor => 'service_role')),
    1,
    'filtered by actor service_role'
);
select ok(
    (select count(*) from cfg.audit_events(current_setting('test.acme')::uuid, actor => 'Alice@Example.test'))
    = (select count(*) from cfg.audit_log where actor_email = 'alice@example.test')
    and exists (select 1 from cfg.audit_log where actor_email = 'alice@example.test'),
    'filtered by actor email, whatever its case'
);
select is(
    (select count(*)::int from cfg.audit_events(current_setting('test.acme')::uuid,
                                                actor => '00000000-0000-4000-b000-00000000000a')),
    (select count(*)::int from cfg.audit_events(current_setting('test.acme')::uuid, actor => 'alice@example.test')),
    'filtered by actor id'
);
select is_empty(
    $$ select 1 from cfg.audit_events(current_setting('test.acme')::uuid, since => now() + interval '1 second') $$,
    'filtered by time range'
);
select is(
    (select count(*)::int from cfg.audit_events(current_setting('test.acme')::uuid, max_rows => 2)),
    2,
    'max_rows limits the rows'
);
select throws_ok(
    $$ select cfg.audit_events(current_setting('test.acme')::uuid, max_rows => 0) $$,
    'PT422', 'max_rows must be between 1 and 10000',
    'max_rows must be at least 1'
);
select throws_ok(
    $$ select cfg.audit_events(current_setting('test.acme')::uuid, max_rows => 10001) $$,
    'PT422', 'max_rows must be between 1 and 10000',
    'and at most 10000'
);
reset role;

select pg_temp.act_as('carol@example.test');
select throws_ok(
    $$ select cfg.audit_events(current_setting('test.acme')::uuid) $$,
    'PT403', 'reading the audit log requires the editor role; you are viewer',
    'viewers do not read the log'
);
select is_empty($$ select 1 from cfg.audit_log $$, 'not even directly');
reset role;

select pg_temp.act_as('dave@example.test');
select throws_ok(
    $$ select cfg.audit_events(current_setting('test.acme')::uuid) $$,
    'PT404', 'organisation not found',
    'another org''s log is not found'
);
select is_empty(
    $$ select 1 from cfg.audit_log where org_id = current_setting('test.acme')::uuid $$,
    'nor readable directly'
);
reset role;

-- =============================================================================
-- Append-only, for everyone
-- =============================================================================

select pg_temp.act_as('alice@example.test');
select throws_ok($$ update cfg.audit_log set actor_email = 'x' $$, '42501', null, 'an admin cannot edit the log');
select throws_ok($$ delete from cfg.audit_log $$, '42501', null, 'nor delete from it');
reset role;

select pg_temp.act_as_service();
select throws_ok($$ truncate cfg.audit_log $$, '42501', null, 'the service role cannot truncate it');
reset role;

do $$ begin perform set_config('request.jwt.claims', '', true); end $$;
select throws_ok($$ update cfg.audit_log set actor_email = 'x' $$, 'PT403', 'the audit log is append-only',
                 'even the superuser cannot edit it');
select throws_ok($$ truncate cfg.audit_log $$, 'PT403', 'the audit log is append-only',
                 'nor truncate it');

-- =============================================================================
-- Retention: only through purge_audit_log, keeping at least a day
-- =============================================================================

insert into cfg.audit_log (org_id, actor_role, table_name, row_id, operation, created_at)
values (current_setting('test.acme')::uuid, 'postgres', 'orgs', current_setting('test.acme')::uuid, 'INSERT',
        now() - interval '2 years');
select throws_ok(
    $$ select cfg_private.purge_audit_log(interval '1 hour') $$,
    'PT422', 'audit retention must keep at least one day',
    'retention keeps at least one day'
);
select pg_temp.act_as('alice@example.test');
select throws_ok(
    $$ select cfg_private.purge_audit_log(interval '1 year') $$,
    '42501', null,
    'users cannot purge the log'
);
reset role;
select pg_temp.act_as_service();
select is(cfg_private.purge_audit_log(interval '1 year'), 1::bigint, 'the service purges old rows');
reset role;

select * from finish();
rollback;
