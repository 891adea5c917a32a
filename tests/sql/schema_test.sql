-- The shape of the Supabase contract and of schema cfg, checked with pgTAP.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select plan(19);

-- Supabase's roles and their attributes.
select has_role('anon');
select has_role('authenticated');
select has_role('service_role');
select ok((select rolbypassrls from pg_roles where rolname = 'service_role'), 'service_role bypasses RLS');
select ok(
    (select not rolinherit and rolcanlogin from pg_roles where rolname = 'authenticator'),
    'authenticator logs in and does not inherit'
);
select ok(pg_has_role('authenticator', 'authenticated', 'member'), 'authenticator can become authenticated');

-- auth helpers read the claims PostgREST sets.
select set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-a000-0000000000aa", "role": "authenticated", "email": "x@example.test"}', true);
select is(auth.uid(), '00000000-0000-4000-a000-0000000000aa'::uuid, 'auth.uid() reads sub');
select is(auth.role(), 'authenticated', 'auth.role() reads role');
select is(auth.email(), 'x@example.test', 'auth.email() reads email');

-- Tables and their row-level security.
select has_table('cfg', 'audit_log', 'cfg has an audit log');
select ok(
    not exists (
        select 1 from pg_class
        where relnamespace = 'cfg'::regnamespace and relkind = 'r' and not relrowsecurity
    ),
    'every table in cfg has RLS enabled'
);
select has_function('cfg', 'create_org', array['text', 'text']);
select has_function('cfg_private', 'custom_access_token_hook', array['jsonb']);
select function_privs_are(
    'cfg_private', 'custom_access_token_hook', array['jsonb'], 'authenticated', array[]::text[]
);
select function_privs_are(
    'cfg_private', 'custom_access_token_hook', array['jsonb'], 'supabase_auth_admin', array['EXECUTE']
);
select schema_privs_are('cfg', 'anon', array[]::text[], 'anon cannot use schema cfg');
select ok(
    not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and schemaname = 'cfg'),
    'no tenant table is published to postgres_changes (tabs get broadcasts on private channels)'
);
select ok(
    not exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'entry_secrets'),
    'secret values are not published to realtime'
);
select col_not_null('cfg', 'config_entries', 'org_id', 'entries carry their tenant');

select * from finish();
rollback;
