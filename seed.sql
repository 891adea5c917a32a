-- Demo data: one org, a user per role, a few automations. Every user's password is
-- "password". Safe to run twice. `supabase start` seeds this file (config.toml), so
-- users are written as GoTrue's own sign-up writes them: nil instance_id, aud and role
-- 'authenticated', '' (not NULL) in the token columns GoTrue reads as strings, a
-- confirmed email, and an auth.identities row for the email provider.

insert into auth.users (
    instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
    confirmation_token, recovery_token, email_change_token_new, email_change,
    email_change_token_current, phone_change, phone_change_token, reauthentication_token,
    raw_app_meta_data, raw_user_meta_data, created_at, updated_at
)
select
    '00000000-0000-0000-0000-000000000000'::uuid as instance_id,
    u.id::uuid as id,
    'authenticated' as aud,
    'authenticated' as role,
    u.email,
    extensions.crypt('password', extensions.gen_salt('bf')) as encrypted_password,
    now() as email_confirmed_at,
    '' as confirmation_token,
    '' as recovery_token,
    '' as email_change_token_new,
    '' as email_change,
    '' as email_change_token_current,
    '' as phone_change,
    '' as phone_change_token,
    '' as reauthentication_token,
    '{"provider": "email", "providers": ["email"]}'::jsonb as raw_app_meta_data,
    '{}'::jsonb as raw_user_meta_data,
    now() as created_at,
    now() as updated_at
from (values
    ('00000000-0000-4000-a000-000000000001', 'admin@acme.test'),
    ('00000000-0000-4000-a000-000000000002', 'editor@acme.test'),
    ('00000000-0000-4000-a000-000000000003', 'viewer@acme.test')
) as u (id, email)
on conflict (id) do nothing;

-- The email identity: provider_id is the user's id, identity_data as GoTrue fills it.
insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
select
    u.id::text as provider_id,
    u.id as user_id,
    jsonb_build_object(
        'sub', u.id::text, 'email', u.email, 'email_verified', true, 'phone_verified', false
    ) as identity_data,
    'email' as provider,
    now() as last_sign_in_at,
    now() as created_at,
    now() as updated_at
from auth.users as u
where u.id in (
    '00000000-0000-4000-a000-000000000001',
    '00000000-0000-4000-a000-000000000002',
    '00000000-0000-4000-a000-000000000003'
)
on conflict (provider_id, provider) do nothing;

insert into cfg.orgs (id, name, slug, created_by)
values ('00000000-0000-4000-b000-000000000001', 'Acme', 'acme', '00000000-0000-4000-a000-000000000001')
on conflict (id) do nothing;

-- Written directly (the seed runs as the database owner): invitations are how people
-- join through the API, and these demo members would have accepted theirs.
insert into cfg.org_members (org_id, user_id, role, invited_by)
values
    ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000001', 'admin',
     '00000000-0000-4000-a000-000000000001'),
    ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000002', 'editor',
     '00000000-0000-4000-a000-000000000001'),
    ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000003', 'viewer',
     '00000000-0000-4000-a000-000000000001')
on conflict (org_id, user_id) do nothing;

insert into cfg.environments (org_id, name, slug, position, requires_approval)
values
    ('00000000-0000-4000-b000-000000000001', 'Development', 'dev', 0, false),
    ('00000000-0000-4000-b000-000000000001', 'Staging', 'staging', 1, false),
    ('00000000-0000-4000-b000-000000000001', 'Production', 'prod', 2, true)
on conflict (org_id, slug) do nothing;

insert into cfg.automations (id, org_id, name, slug, type, tags, description, created_by)
values
    ('00000000-0000-4000-c000-000000000001', '00000000-0000-4000-b000-000000000001',
     'Billing API', 'billing-api', 'service', '{payments,core}', 'Charges customers.',
     '00000000-0000-4000-a000-000000000001'),
    ('00000000-0000-4000-c000-000000000002', '00000000-0000-4000-b000-000000000001',
     'Nightly report', 'nightly-report', 'cron_job', '{reports}', 'Emails the daily numbers.',
     '00000000-0000-4000-a000-000000000001'),
    ('00000000-0000-4000-c000-000000000003', '00000000-0000-4000-b000-000000000001',
     'Edge gateway', 'edge-gateway', 'api_gateway', '{edge}', 'Routes public traffic.',
     '00000000-0000-4000-a000-000000000001')
on conflict (id) do nothing;

insert into cfg.config_sections (id, org_id, automation_id, name)
values
    ('00000000-0000-4000-d000-000000000001', '00000000-0000-4000-b000-000000000001',
     '00000000-0000-4000-c000-000000000001', 'http'),
    ('00000000-0000-4000-d000-000000000002', '00000000-0000-4000-b000-000000000001',
     '00000000-0000-4000-c000-000000000001', 'stripe')
on conflict (id) do nothing;

-- Fixed ids: a secret's value is diverted to cfg.entry_secrets under the entry's id
-- before the row is written, so a re-run must hit the same id.
insert into cfg.config_entries (id, org_id, automation_id, section_id, key, value, is_secret)
values
    ('00000000-0000-4000-e000-000000000001', '00000000-0000-4000-b000-000000000001',
     '00000000-0000-4000-c000-000000000001', '00000000-0000-4000-d000-000000000001', 'port', '8080', false),
    ('00000000-0000-4000-e000-000000000002', '00000000-0000-4000-b000-000000000001',
     '00000000-0000-4000-c000-000000000001', '00000000-0000-4000-d000-000000000001', 'timeout_ms', '2500', false),
    ('00000000-0000-4000-e000-000000000003', '00000000-0000-4000-b000-000000000001',
     '00000000-0000-4000-c000-000000000001', '00000000-0000-4000-d000-000000000002', 'api_key', '"sk_test_demo_only"', true)
on conflict (id) do nothing;
