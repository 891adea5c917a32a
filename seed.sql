-- Demo data for the embedded stack: one org, a user per role, a few automations.
-- Every user's password is "password". Safe to run twice.

insert into auth.users (id, email, encrypted_password, email_confirmed_at, raw_app_meta_data)
values
    ('00000000-0000-4000-a000-000000000001', 'admin@acme.test',
     extensions.crypt('password', extensions.gen_salt('bf')), now(), '{"provider": "email"}'),
    ('00000000-0000-4000-a000-000000000002', 'editor@acme.test',
     extensions.crypt('password', extensions.gen_salt('bf')), now(), '{"provider": "email"}'),
    ('00000000-0000-4000-a000-000000000003', 'viewer@acme.test',
     extensions.crypt('password', extensions.gen_salt('bf')), now(), '{"provider": "email"}')
on conflict (id) do nothing;

insert into cfg.orgs (id, name, slug, created_by)
values ('00000000-0000-4000-b000-000000000001', 'Acme', 'acme', '00000000-0000-4000-a000-000000000001')
on conflict (id) do nothing;

insert into cfg.org_members (org_id, user_id, role)
values
    ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000001', 'admin'),
    ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000002', 'editor'),
    ('00000000-0000-4000-b000-000000000001', '00000000-0000-4000-a000-000000000003', 'viewer')
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
