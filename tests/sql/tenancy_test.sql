-- Tenancy and roles, acting as real users the way PostgREST does:
-- `set local role authenticated` plus the JWT claims in request.jwt.claims.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = extensions, public;

select plan(42);

-- =============================================================================
-- Users: alice (admin of acme), bob (editor), carol (viewer), dave (admin of
-- dave-co), eve (no org).
-- =============================================================================

insert into auth.users (id, email, email_confirmed_at) values
    ('00000000-0000-4000-a000-00000000000a', 'alice@example.test', now()),
    ('00000000-0000-4000-a000-00000000000b', 'bob@example.test', now()),
    ('00000000-0000-4000-a000-00000000000c', 'carol@example.test', now()),
    ('00000000-0000-4000-a000-00000000000d', 'dave@example.test', now()),
    ('00000000-0000-4000-a000-00000000000e', 'eve@example.test', now());

create function pg_temp.act_as(email text, extra jsonb default '{}'::jsonb) returns void
language sql as $$
    select set_config(
        'request.jwt.claims',
        (jsonb_build_object('sub', u.id, 'email', u.email, 'role', 'authenticated', 'aud', 'authenticated')
         || extra)::text,
        true
    )
    from auth.users as u where u.email = act_as.email;
    set local role authenticated;
$$;

-- =============================================================================
-- create_org: the creator becomes admin, with dev -> staging -> prod
-- =============================================================================

select pg_temp.act_as('alice@example.test');
select lives_ok($$ select cfg.create_org('Acme', 'acme') $$, 'a signed-in user creates an org');
select results_eq(
    $$ select slug, position, requires_approval from cfg.environments order by position $$,
    $$ values ('dev'::text, 0, false), ('staging', 1, false), ('prod', 2, true) $$,
    'a new org gets dev, staging and prod; prod requires approval'
);
select results_eq(
    $$ select role::text from cfg.org_members where user_id = auth.uid() $$,
    $$ values ('admin') $$,
    'the creator is its admin'
);
do $$ begin perform set_config('test.acme', (select id::text from cfg.orgs where slug = 'acme'), true); end $$;
select lives_ok(
    $$ select cfg.invite_member(current_setting('test.acme')::uuid, 'bob@example.test', 'editor') $$,
    'the admin invites an editor'
);
select lives_ok(
    $$ select cfg.invite_member(current_setting('test.acme')::uuid, 'carol@example.test', 'viewer') $$,
    'the admin invites a viewer'
);
select lives_ok(
    $$ select cfg.invite_member(current_setting('test.acme')::uuid, 'nobody@example.test', 'viewer') $$,
    'inviting an email without an account answers the same'
);
select throws_ok(
    $$ select cfg.invite_member(current_setting('test.acme')::uuid, 'eve@example.test', 'owner') $$,
    '22P02', null,
    'an unknown role name is invalid'
);
reset role;

select pg_temp.act_as('bob@example.test');
select lives_ok(
    $$ select cfg.accept_invitation((select id from cfg.org_invitations)) $$,
    'bob accepts the invitation addressed to him'
);
reset role;
select pg_temp.act_as('carol@example.test');
select lives_ok(
    $$ select cfg.accept_invitation((select id from cfg.org_invitations)) $$,
    'carol accepts hers'
);
reset role;

select pg_temp.act_as('alice@example.test');
select throws_ok(
    $$ select cfg.invite_member(current_setting('test.acme')::uuid, 'bob@example.test', 'admin') $$,
    'PT409', '''bob@example.test'' is already a member',
    'inviting a member is a conflict'
);
reset role;

select pg_temp.act_as('dave@example.test');
select lives_ok($$ select cfg.create_org('Dave Co', 'dave-co') $$, 'another user creates another org');
select lives_ok(
    $$ select cfg.create_automation((select id from cfg.orgs where slug = 'dave-co'), 'Daves', 'daves') $$,
    'and an automation in it'
);
select throws_ok(
    $$ select cfg.create_org('Again', 'acme') $$,
    'PT409', 'an organisation with slug ''acme'' already exists',
    'org slugs are unique'
);
select throws_ok($$ select cfg.create_org('Bad', 'Bad Slug') $$, 'PT422', null, 'org slugs are validated');
reset role;
do $$ begin perform set_config('test.dave_co', (select id::text from cfg.orgs where slug = 'dave-co'), true); end $$;

-- =============================================================================
-- Editor: creates automations, sections, entries; cannot delete automations
-- =============================================================================

select pg_temp.act_as('bob@example.test');
select lives_ok(
    $$ select cfg.create_automation(current_setting('test.acme')::uuid, 'Billing', 'billing') $$,
    'an editor creates an automation'
);
select lives_ok(
    $$
    with s as (
        insert into cfg.config_sections (org_id, automation_id, name)
        select org_id, id, 'http' from cfg.automations where slug = 'billing'
        returning id, org_id, automation_id
    )
    insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret)
    select org_id, automation_id, id, 'port', '8080'::jsonb, false from s
    union all
    select org_id, automation_id, id, 'api_key', '"sk_live_hunter2"'::jsonb, true from s
    $$,
    'an editor writes sections and entries, one of them secret'
);
select is(
    cfg.reveal_secret((select id from cfg.automations where slug = 'billing'), 'http', 'api_key') -> 'value',
    '"sk_live_hunter2"'::jsonb,
    'an editor reveals the secret value'
);
select throws_ok(
    $$ select cfg.delete_automation((select id from cfg.automations where slug = 'billing')) $$,
    'PT403', 'deleting automations requires the admin role; you are editor',
    'an editor cannot delete automations'
);
select results_eq(
    $$ with d as (delete from cfg.automations returning 1) select count(*)::int from d $$,
    $$ values (0) $$,
    'nor delete them directly: RLS leaves no row to delete'
);
select throws_ok(
    $$ select cfg.invite_member(current_setting('test.acme')::uuid, 'eve@example.test', 'viewer') $$,
    'PT403', 'inviting members requires the admin role; you are editor',
    'an editor cannot invite members'
);
select is_empty(
    $$ select 1 from cfg.automations where org_id = current_setting('test.dave_co')::uuid $$,
    'an editor sees nothing of another org'
);
reset role;

-- =============================================================================
-- Viewer: reads everything but secret values, writes nothing
-- =============================================================================

select pg_temp.act_as('carol@example.test');
select results_eq(
    $$ select slug from cfg.automations $$,
    $$ values ('billing'::text) $$,
    'a viewer reads the automations of their org only'
);
select is_empty($$ select 1 from cfg.entry_secrets $$, 'a viewer reads no secret value');
select results_eq(
    $$ select key, value from cfg.config_entries order by key $$,
    $$ values ('api_key'::text, null::jsonb), ('port', '8080'::jsonb) $$,
    'a viewer sees that a secret exists, not its value'
);
select throws_ok(
    $$ select cfg.create_automation(current_setting('test.acme')::uuid, 'Nope', 'nope') $$,
    'PT403', 'creating automations requires the editor role; you are viewer',
    'a viewer cannot create automations'
);
select throws_ok(
    $$ insert into cfg.automations (org_id, name, slug) values (current_setting('test.acme')::uuid, 'N', 'n') $$,
    '42501', 'new row violates row-level security policy for table "automations"',
    'nor insert them directly'
);
select results_eq(
    $$ with u as (update cfg.automations set description = 'x' returning 1) select count(*)::int from u $$,
    $$ values (0) $$,
    'a viewer''s update touches no row'
);
reset role;

-- A stale or forged org_roles claim grants nothing: membership is the truth.
select pg_temp.act_as(
    'carol@example.test',
    jsonb_build_object('org_roles', jsonb_build_object(current_setting('test.acme'), 'admin'))
);
select throws_ok(
    $$ select cfg.invite_member(current_setting('test.acme')::uuid, 'eve@example.test', 'viewer') $$,
    'PT403', null,
    'a claim saying admin does not make a viewer admin'
);
select is_empty($$ select 1 from cfg.entry_secrets $$, 'nor let them read secret values');
reset role;

-- =============================================================================
-- Outsiders and other orgs
-- =============================================================================

select pg_temp.act_as('eve@example.test');
select is_empty($$ select 1 from cfg.orgs $$, 'a user with no org sees no org');
select is_empty($$ select 1 from cfg.config_entries $$, 'and no entry');
select throws_ok(
    $$ select cfg.list_members(current_setting('test.acme')::uuid) $$,
    'PT404', 'organisation not found',
    'another org''s members are not found'
);
reset role;

select pg_temp.act_as('dave@example.test');
select throws_ok(
    $$ select cfg.delete_automation((select id from cfg.automations where slug = 'billing')) $$,
    'PT404', 'automation not found',
    'an admin of another org cannot delete our automation (nor learn it exists)'
);
select throws_ok(
    $$
    insert into cfg.config_sections (org_id, automation_id, name)
    select current_setting('test.dave_co')::uuid, a.id, 'x'
    from cfg.automations as a where a.slug = 'daves'
    union all
    select current_setting('test.acme')::uuid, a.id, 'y'
    from cfg.automations as a where a.slug = 'daves'
    $$,
    '42501', null,
    'a section cannot be written into an org one does not edit'
);
reset role;

set local role anon;
do $$ begin perform set_config('request.jwt.claims', '{"role": "anon"}', true); end $$;
select throws_ok($$ select 1 from cfg.orgs $$, '42501', 'permission denied for schema cfg', 'anon sees nothing');
reset role;

-- =============================================================================
-- The last admin stays
-- =============================================================================

select pg_temp.act_as('alice@example.test');
select throws_ok(
    $$ select cfg.remove_member(current_setting('test.acme')::uuid, auth.uid()) $$,
    'PT409', 'cannot remove or demote the last admin of the organisation',
    'the last admin cannot leave'
);
select throws_ok(
    $$ select cfg.set_member_role(current_setting('test.acme')::uuid, auth.uid(), 'editor') $$,
    'PT409', 'cannot remove or demote the last admin of the organisation',
    'the last admin cannot be demoted'
);
select lives_ok(
    $$ select cfg.set_member_role(current_setting('test.acme')::uuid, '00000000-0000-4000-a000-00000000000b', 'admin') $$,
    'once another admin exists'
);
select lives_ok(
    $$ select cfg.remove_member(current_setting('test.acme')::uuid, auth.uid()) $$,
    'the former last admin can leave'
);
select is_empty($$ select 1 from cfg.orgs $$, 'and then sees the org no more');
reset role;

select results_eq(
    $$ select u.email::text, m.role::text from cfg.org_members as m join auth.users as u on u.id = m.user_id
       where m.org_id = current_setting('test.acme')::uuid order by 1 $$,
    $$ values ('bob@example.test'::text, 'admin'::text), ('carol@example.test', 'viewer') $$,
    'memberships are as the admins left them'
);
select results_eq(
    $$ select type from cfg_private.events where org_id = current_setting('test.acme')::uuid order by id $$,
    $$ values ('member.added'::text), ('member.invited'), ('member.invited'), ('member.invited'),
              ('member.added'), ('member.added'), ('automation.created'), ('secret.revealed'),
              ('member.role_changed'), ('member.removed') $$,
    'every member and automation change (and the reveal) left an event'
);

select * from finish();
rollback;
