-- =============================================================================
-- Tenancy: the stamping and rules of orgs, members and automations, org and member
-- RPCs, the custom access token hook. Role helpers: 00_access.sql; the shared row
-- stamping functions: 05_tables.sql.
-- =============================================================================

-- =============================================================================
-- Row stamping
-- =============================================================================

-- cfg.orgs.created_by comes from the JWT (cfg.create_org) and never changes after.
create or replace function cfg_private.stamp_org_creator()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        new.created_by := coalesce((select auth.uid()), new.created_by);
    else
        new.created_by := old.created_by;
    end if;
    return new;
end
$$;
revoke execute on function cfg_private.stamp_org_creator() from public, anon, authenticated, service_role;

-- A membership belongs to one user for good, and who invited them never changes.
-- invited_by is set by the code that makes memberships: cfg.create_org (the creator,
-- from the JWT) and invitation acceptance (the inviter, stamped from their JWT when
-- they invited). No API role inserts memberships directly.
create or replace function cfg_private.guard_membership()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.user_id is distinct from old.user_id then
        raise exception 'a membership cannot be given to another user; invite them instead'
            using errcode = 'PT422',
                  detail = jsonb_build_object('org_id', old.org_id, 'user_id', old.user_id)::text;
    end if;
    new.invited_by := old.invited_by;
    return new;
end
$$;
revoke execute on function cfg_private.guard_membership() from public, anon, authenticated, service_role;

-- Every table: updated_at, org_id frozen, audit (functions/05_tables.sql).
-- entry_secrets' Vault id and token are always redacted; config_entries' value is null for secrets
-- (divert_secret_value). Sections and entries written by save_config / rollback stamp
-- updated_at themselves and never move org_id: a save rewrites many rows, each a
-- trigger call, so their touch_row skips those writes too.
select cfg_private.register_table('cfg.orgs');
select cfg_private.register_table('cfg.org_members');
select cfg_private.register_table('cfg.environments');
select cfg_private.register_table('cfg.automations', stamp_author => true);
select cfg_private.register_table('cfg.config_sections', versioned => 'touch_and_audit');
select cfg_private.register_table('cfg.config_entries', versioned => 'touch_and_audit');
select cfg_private.register_table('cfg.entry_secrets', audit_arguments => '{secret_id,token}', versioned => 'audit');
create or replace trigger stamp_creator before insert or update on cfg.orgs
for each row execute function cfg_private.stamp_org_creator();
create or replace trigger guard_membership before update on cfg.org_members
for each row execute function cfg_private.guard_membership();

-- A secret entry's value is moved to Vault (cfg.entry_secrets keeps its id) before
-- the row is written, so it never reaches config_entries, its WAL stream or its
-- realtime subscribers.
-- security definer: entry_secrets and Vault take no writes from API roles. It runs
-- inside a write that row-level security allows on config_entries (or the statement
-- fails and takes the Vault write with it).
create or replace function cfg_private.divert_secret_value()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if new.is_secret and new.value is not null then
        perform cfg_private.put_entry_secret(new.id, new.org_id, new.automation_id, new.value);
        new.value := null;
    elsif tg_op = 'UPDATE' and old.is_secret and not new.is_secret then
        if new.value is null then
            raise exception 'entry % stops being secret: give it a plain value', new.key
                using errcode = 'PT422',
                      detail = jsonb_build_object('entry_id', new.id, 'key', new.key)::text;
        end if;
        delete from cfg.entry_secrets as s where s.id = new.id;
    end if;
    return new;
end
$$;
revoke execute on function cfg_private.divert_secret_value() from public, anon, authenticated, service_role;

-- Only rows with a secret value to divert, or that stop being secret: the function
-- does nothing for the others, and a save rewrites many entries at once (it stores
-- its secret values itself: cfg_private.apply_content).
create or replace trigger divert_secret_value before insert on cfg.config_entries
for each row when (new.is_secret and new.value is not null)
execute function cfg_private.divert_secret_value();
create or replace trigger divert_secret_value_on_update before update on cfg.config_entries
for each row when (new.is_secret and new.value is not null or old.is_secret and not new.is_secret)
execute function cfg_private.divert_secret_value();

-- The last admin of an org cannot leave or be demoted: someone must manage it.
-- One exception: Supabase Auth deleting the account (DELETE FROM auth.users cascades
-- to the memberships). That must succeed, so the org is left without an admin and an
-- org.admin_lost event records it; an operator names a new admin with the service
-- key (README, "When an account is deleted").
-- security definer: it must see the org and every membership whatever the caller's
-- RLS says; an admin removing themselves no longer sees their org at this point.
create or replace function cfg_private.keep_one_admin()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if old.role <> 'admin' or (tg_op = 'UPDATE' and new.role = 'admin') then
        return null;
    end if;
    -- Serialise admin changes per org: two transactions demoting each other would
    -- each still see the other admin (write skew). With the org row locked the second
    -- waits, and its check below (a new snapshot) sees what the first committed.
    -- No row: the org itself is being deleted, and its members with it.
    perform 1 from cfg.orgs as o where o.id = old.org_id for no key update;
    if found and not exists (
        select 1 from cfg.org_members as m
        where m.org_id = old.org_id and m.role = 'admin'
    ) then
        -- Checked at the end of the statement: a deleted account is gone by then.
        if tg_op = 'DELETE' and not exists (select 1 from auth.users as u where u.id = old.user_id) then
            perform cfg_private.emit_event(
                old.org_id, 'org.admin_lost', 'org', old.org_id, null,
                jsonb_build_object('user_id', old.user_id)
            );
            return null;
        end if;
        raise exception 'cannot remove or demote the last admin of the organisation'
            using errcode = 'PT409',
                  detail = jsonb_build_object('org_id', old.org_id, 'user_id', old.user_id)::text,
                  hint = 'Make another member admin first.';
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.keep_one_admin() from public, anon, authenticated, service_role;

-- A constraint trigger sees the final state of the statement, so swaps still work.
drop trigger if exists keep_one_admin on cfg.org_members;
create constraint trigger keep_one_admin after update or delete on cfg.org_members
for each row execute function cfg_private.keep_one_admin();

-- =============================================================================
-- Org RPCs
-- =============================================================================

-- The privileged half of cfg.create_org: the org row and its first admin, the
-- caller (from the JWT). security definer: the caller is not a member yet, so no
-- policy could admit either row; it checks the caller itself.
create or replace function cfg_private.found_org(name text, slug text)
returns cfg.orgs
language plpgsql
security definer
set search_path = ''
as $$
declare
    creator uuid := (select auth.uid());
    created cfg.orgs;
begin
    if creator is null then
        raise exception 'creating an organisation needs a signed-in user'
            using errcode = 'PT403';
    end if;
    if slug is null or slug !~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' then
        raise exception 'invalid organisation slug %: use 1-63 lowercase letters, digits and inner hyphens',
            coalesce(quote_literal(slug), 'null')
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'slug', 'value', left(slug, 100))::text;
    end if;
    if name is null or length(btrim(name)) not between 1 and 200 then
        raise exception 'organisation name must be 1-200 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'name')::text;
    end if;
    insert into cfg.orgs (name, slug, created_by)
    values (btrim(found_org.name), found_org.slug, creator)
    on conflict on constraint orgs_slug_key do nothing
    returning * into created;
    if created.id is null then
        raise exception 'an organisation with slug % already exists', quote_literal(slug)
            using errcode = 'PT409',
                  detail = jsonb_build_object('field', 'slug', 'value', slug)::text;
    end if;
    insert into cfg.org_members (org_id, user_id, role, invited_by)
    values (created.id, creator, 'admin', creator);
    return created;
end
$$;
revoke execute on function cfg_private.found_org(text, text) from public, anon;
grant execute on function cfg_private.found_org(text, text) to authenticated, service_role;

-- Creates an org with the caller as its first admin and the default pipeline.
-- The pipeline is written as the caller, who is the org's admin by then.
create or replace function cfg.create_org(name text, slug text)
returns cfg.orgs
language plpgsql
set search_path = ''
as $$
declare
    created cfg.orgs;
begin
    created := cfg_private.found_org(create_org.name, create_org.slug);
    -- One statement each, in pipeline order: an environment goes after the last one
    -- (cfg_private.guard_environment_change checks each statement's rows together).
    insert into cfg.environments (org_id, name, slug, position, requires_approval)
    values (created.id, 'Development', 'dev', 0, false);
    insert into cfg.environments (org_id, name, slug, position, requires_approval)
    values (created.id, 'Staging', 'staging', 1, false);
    insert into cfg.environments (org_id, name, slug, position, requires_approval)
    values (created.id, 'Production', 'prod', 2, true);
    return created;
end
$$;
revoke execute on function cfg.create_org(text, text) from public, anon;
grant execute on function cfg.create_org(text, text) to authenticated, service_role;

create or replace function cfg.set_member_role(org_id uuid, user_id uuid, role cfg.org_role)
returns cfg.org_members
language plpgsql
set search_path = ''
as $$
declare
    member cfg.org_members;
begin
    member := cfg_private.member_for_admin(set_member_role.org_id, set_member_role.user_id, 'changing roles');
    update cfg.org_members as m set role = set_member_role.role
    where m.id = member.id
    returning * into member;
    return member;
end
$$;
revoke execute on function cfg.set_member_role(uuid, uuid, cfg.org_role) from public, anon;
grant execute on function cfg.set_member_role(uuid, uuid, cfg.org_role) to authenticated, service_role;

create or replace function cfg.remove_member(org_id uuid, user_id uuid)
returns cfg.org_members
language plpgsql
set search_path = ''
as $$
declare
    member cfg.org_members;
begin
    member := cfg_private.member_for_admin(remove_member.org_id, remove_member.user_id, 'removing members');
    delete from cfg.org_members as m where m.id = member.id;
    return member;
end
$$;
revoke execute on function cfg.remove_member(uuid, uuid) from public, anon;
grant execute on function cfg.remove_member(uuid, uuid) to authenticated, service_role;

-- cfg.delete_automation (refused while others reference it): functions/98_graph_api.sql.

-- =============================================================================
-- Custom access token hook (supabase/config.toml): puts {org_id: role} into the
-- JWT as `org_roles` for the UI. Policies never trust it: membership is the truth.
-- security definer: GoTrue calls it as supabase_auth_admin, which has no table rights.
-- =============================================================================

create or replace function cfg_private.custom_access_token_hook(event jsonb)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    roles jsonb;
begin
    select coalesce(jsonb_object_agg(m.org_id::text, m.role), '{}'::jsonb)
    into roles
    from cfg.org_members as m
    where m.user_id = (event ->> 'user_id')::uuid;
    return jsonb_set(
        event, '{claims}',
        coalesce(event -> 'claims', '{}'::jsonb) || jsonb_build_object('org_roles', roles)
    );
end
$$;
revoke execute on function cfg_private.custom_access_token_hook(jsonb) from public, anon, authenticated, service_role;
grant execute on function cfg_private.custom_access_token_hook(jsonb) to supabase_auth_admin;

-- The emails of an org's members. security definer: emails live in auth.users,
-- which API roles cannot read; it checks the caller is a member itself.
create or replace function cfg_private.member_emails(org_id uuid)
returns table (user_id uuid, email text)
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform cfg_private.require_role(member_emails.org_id, 'viewer', 'listing members');
    return query
    select m.user_id, u.email::text
    from cfg.org_members as m
    join auth.users as u on u.id = m.user_id
    where m.org_id = member_emails.org_id;
end
$$;
revoke execute on function cfg_private.member_emails(uuid) from public, anon;
grant execute on function cfg_private.member_emails(uuid) to authenticated, service_role;

-- Members with their emails.
create or replace function cfg.list_members(org_id uuid)
returns table (user_id uuid, email text, role cfg.org_role, created_at timestamptz)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_members.org_id, 'viewer', 'listing members');
    return query
    select m.user_id, e.email, m.role, m.created_at
    from cfg.org_members as m
    join cfg_private.member_emails(list_members.org_id) as e on e.user_id = m.user_id
    where m.org_id = list_members.org_id
    order by e.email;
end
$$;
revoke execute on function cfg.list_members(uuid) from public, anon;
grant execute on function cfg.list_members(uuid) to authenticated, service_role;

-- =============================================================================
-- Automations
-- =============================================================================

-- Creates an automation with clear errors (the table's constraints and policies
-- still apply: this is security invoker).
create or replace function cfg.create_automation(
    org_id uuid,
    name text,
    slug text,
    type text default 'service',
    tags text [] default '{}',
    description text default ''
)
returns cfg.automations
language plpgsql
set search_path = ''
as $$
declare
    created cfg.automations;
begin
    perform cfg_private.require_role(create_automation.org_id, 'editor', 'creating automations');
    if slug is null or slug !~ '^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$' then
        raise exception 'invalid automation slug %: use 1-80 lowercase letters, digits and inner hyphens',
            coalesce(quote_literal(slug), 'null')
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'slug', 'value', left(slug, 100))::text;
    end if;
    if name is null or length(btrim(name)) not between 1 and 200 then
        raise exception 'automation name must be 1-200 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'name')::text;
    end if;
    if exists (
        select 1 from cfg.automations as a
        where a.org_id = create_automation.org_id and a.slug = create_automation.slug
    ) then
        raise exception 'an automation with slug % already exists in this organisation', quote_literal(slug)
            using errcode = 'PT409',
                  detail = jsonb_build_object('field', 'slug', 'value', slug)::text;
    end if;
    if not exists (
        select 1 from cfg.automation_types as t
        where t.org_id = create_automation.org_id and t.slug = coalesce(create_automation.type, 'service')
    ) then
        raise exception 'unknown automation type %: an admin adds types (cfg.add_automation_type)',
            coalesce(quote_literal(type), 'null')
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'type', 'value', left(type, 100), 'available', (
                      select jsonb_agg(t.slug order by t.slug) from cfg.automation_types as t
                      where t.org_id = create_automation.org_id
                  ))::text;
    end if;
    insert into cfg.automations (org_id, name, slug, type, tags, description)
    values (
        create_automation.org_id, btrim(create_automation.name), create_automation.slug,
        coalesce(create_automation.type, 'service'), coalesce(tags, '{}'), coalesce(description, '')
    )
    returning * into created;
    return created;
end
$$;
revoke execute on function cfg.create_automation(uuid, text, text, text, text [], text)
from public, anon;
grant execute on function cfg.create_automation(uuid, text, text, text, text [], text)
to authenticated, service_role;

-- The caller's organisations with their role in each (the service key: every org,
-- role null). security invoker: RLS shows members their own orgs.
create or replace function cfg.my_orgs()
returns table (id uuid, slug text, name text, role cfg.org_role, created_at timestamptz)
language plpgsql stable
set search_path = ''
as $$
begin
    return query
    select o.id, o.slug, o.name, m.role, o.created_at
    from cfg.orgs as o
    left join cfg.org_members as m on m.org_id = o.id and m.user_id = (select auth.uid())
    order by o.slug;
end
$$;
revoke execute on function cfg.my_orgs() from public, anon;
grant execute on function cfg.my_orgs() to authenticated, service_role;

-- =============================================================================
-- Finding and listing what a dashboard shows (the CLI calls the same RPCs)
-- =============================================================================

-- An org by id or slug (PT404 alike for a missing org and another org's).
create or replace function cfg.find_org(ref text)
returns cfg.orgs
language sql stable
set search_path = ''
as $$
    select * from cfg_private.org_by_ref(find_org.ref)
$$;
revoke execute on function cfg.find_org(text) from public, anon;
grant execute on function cfg.find_org(text) to authenticated, service_role;

-- An automation by id, as ORG/SLUG, or by slug within org_ref (PT404 alike for a
-- missing automation and another org's; PT422 for a slug without its org).
create or replace function cfg.find_automation(ref text, org_ref text default null)
returns cfg.automations
language sql stable
set search_path = ''
as $$
    select * from cfg_private.automation_by_ref(find_automation.ref, find_automation.org_ref)
$$;
revoke execute on function cfg.find_automation(text, text) from public, anon;
grant execute on function cfg.find_automation(text, text) to authenticated, service_role;

-- The automations of an org, by slug. security invoker: members read them under RLS.
create or replace function cfg.list_automations(org_id uuid)
returns setof cfg.automations
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_automations.org_id, 'viewer', 'listing automations');
    return query
    select * from cfg.automations as a where a.org_id = list_automations.org_id order by a.slug;
end
$$;
revoke execute on function cfg.list_automations(uuid) from public, anon;
grant execute on function cfg.list_automations(uuid) to authenticated, service_role;
