-- The parts of Supabase's `auth` and `extensions` schemas that cfgctl relies on.
-- Applied only when the database has no auth.users of its own (see cli/local.py).

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists pg_trgm with schema extensions;

create schema if not exists auth authorization supabase_auth_admin;
comment on schema auth is 'cfgctl embedded shim of Supabase Auth';
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
    instance_id uuid,
    id uuid primary key default gen_random_uuid(),
    aud varchar(255) default 'authenticated',
    role varchar(255) default 'authenticated',
    email varchar(255) unique,
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    phone text unique,
    raw_app_meta_data jsonb default '{}'::jsonb,
    raw_user_meta_data jsonb default '{}'::jsonb,
    is_sso_user boolean not null default false,
    is_anonymous boolean not null default false,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    last_sign_in_at timestamptz,
    deleted_at timestamptz
);
-- The rest of GoTrue's columns (its migrations, read from supabase/auth), with its
-- defaults: the first four token columns have none, which is why rows written by
-- hand (seed.sql) must give them '' — GoTrue cannot read a NULL token.
alter table auth.users
add column if not exists invited_at timestamptz,
add column if not exists confirmation_token varchar(255),
add column if not exists confirmation_sent_at timestamptz,
add column if not exists recovery_token varchar(255),
add column if not exists recovery_sent_at timestamptz,
add column if not exists email_change_token_new varchar(255),
add column if not exists email_change varchar(255),
add column if not exists email_change_sent_at timestamptz,
add column if not exists email_change_token_current varchar(255) default '',
add column if not exists email_change_confirm_status smallint default 0,
add column if not exists phone_confirmed_at timestamptz,
add column if not exists phone_change text default '',
add column if not exists phone_change_token varchar(255) default '',
add column if not exists phone_change_sent_at timestamptz,
add column if not exists reauthentication_token varchar(255) default '',
add column if not exists reauthentication_sent_at timestamptz,
add column if not exists banned_until timestamptz,
add column if not exists is_super_admin boolean;

-- One row per way of signing in (email, google, azure, sso:…); GoTrue writes one at
-- every sign-up and deletes them with the user.
create table if not exists auth.identities (
    provider_id text not null,
    user_id uuid not null references auth.users (id) on delete cascade,
    identity_data jsonb not null,
    provider text not null,
    last_sign_in_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    email text generated always as (lower(identity_data ->> 'email')) stored,
    id uuid primary key default gen_random_uuid(),
    constraint identities_provider_id_provider_unique unique (provider_id, provider)
);
create index if not exists identities_user_id_idx on auth.identities (user_id);
alter table auth.identities owner to supabase_auth_admin;

alter table auth.users owner to supabase_auth_admin;

-- auth.uid()/role()/email()/jwt() read the claims PostgREST puts in the transaction,
-- falling back to the legacy per-claim settings exactly like Supabase's definitions.
create or replace function auth.jwt() returns jsonb
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

create or replace function auth.email() returns text
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;

alter function auth.jwt() owner to supabase_auth_admin;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
    to anon, authenticated, service_role;

-- Supabase's default privileges on `public`: the API roles get access, RLS decides rows.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
