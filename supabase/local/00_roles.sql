-- Supabase's database roles, recreated for a plain PostgreSQL cluster.
-- Roles are cluster-wide, so every statement is guarded and the file can run twice.

do $roles$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticator') then
        -- PostgREST logs in as authenticator and switches to the JWT's role.
        create role authenticator login noinherit password 'postgres';
    end if;
    if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
        create role supabase_admin login superuser createdb createrole replication bypassrls;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
        -- GoTrue's role; it calls the custom access token hook.
        create role supabase_auth_admin login noinherit createrole password 'postgres';
    end if;
    if not exists (select 1 from pg_roles where rolname = 'supabase_realtime_admin') then
        create role supabase_realtime_admin nologin noinherit;
    end if;
    grant anon, authenticated, service_role to authenticator;
    grant anon, authenticated, service_role to postgres;
end
$roles$;
