-- =============================================================================
-- Membership by invitation (table: migrations/20261129120000_tenancy_invitations.sql).
-- An admin invites an email address; the answer never depends on whether an account
-- with that email exists. The person accepts with cfg.accept_invitation, or the
-- invitation is accepted when an account with that email is confirmed (sign-up with
-- email, OAuth or SSO: GoTrue sets auth.users.email_confirmed_at in every case).
-- The RPCs are security invoker; their writes go through the narrow definer helpers
-- below, which check the caller themselves.
-- =============================================================================

-- Writes an invitation; a new one replaces the open invitation for the same address.
-- security definer: API roles cannot write cfg.org_invitations, and the member check
-- reads auth.users. It checks the caller is an admin of the org itself.
create or replace function cfg_private.create_invitation(
    org_id uuid, email text, role cfg.org_role, expires_in interval
)
returns cfg.org_invitations
language plpgsql
security definer
set search_path = ''
as $$
declare
    address text := lower(btrim(create_invitation.email));
    actor record := cfg_private.current_actor();
    created cfg.org_invitations;
begin
    perform cfg_private.require_role(create_invitation.org_id, 'admin', 'inviting members');
    if address is null or address !~ '^[^@\s]+@[^@\s]+$' or length(address) > 320 then
        raise exception '% is not an email address', coalesce(quote_literal(left(email, 320)), 'null')
            using errcode = 'PT422', detail = jsonb_build_object('field', 'email')::text;
    end if;
    if create_invitation.role is null then
        raise exception 'an invitation needs a role: viewer, editor or admin'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'role')::text;
    end if;
    if expires_in is null or expires_in < interval '1 hour' or expires_in > interval '30 days' then
        raise exception 'an invitation expires after 1 hour to 30 days'
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'expires_in', 'value', expires_in::text)::text;
    end if;
    -- The org's admins see its members anyway: saying so reveals nothing about accounts.
    if exists (
        select 1 from cfg.org_members as m join auth.users as u on u.id = m.user_id
        where m.org_id = create_invitation.org_id and lower(u.email) = address
    ) then
        raise exception '% is already a member', quote_literal(address)
            using errcode = 'PT409',
                  detail = jsonb_build_object('org_id', org_id, 'email', address)::text;
    end if;
    update cfg.org_invitations as i
    set revoked_at = now(), revoked_by = actor.actor_id
    where i.org_id = create_invitation.org_id and i.email = address
        and i.accepted_at is null and i.revoked_at is null;
    insert into cfg.org_invitations (org_id, email, role, invited_by, invited_by_email, expires_at)
    values (
        create_invitation.org_id, address, create_invitation.role,
        actor.actor_id, actor.actor_email, now() + expires_in
    )
    returning * into created;
    return created;
end
$$;
revoke execute on function cfg_private.create_invitation(uuid, text, cfg.org_role, interval) from public, anon;
grant execute on function cfg_private.create_invitation(uuid, text, cfg.org_role, interval)
to authenticated, service_role;

-- Invites EMAIL to join the org with ROLE. Admins only. The same answer (the
-- invitation) whether or not an account with that email exists.
create or replace function cfg.invite_member(
    org_id uuid, email text, role cfg.org_role default 'viewer', expires_in interval default '7 days'
)
returns cfg.org_invitations
language plpgsql
set search_path = ''
as $$
begin
    perform cfg_private.require_role(invite_member.org_id, 'admin', 'inviting members');
    return cfg_private.create_invitation(
        invite_member.org_id, invite_member.email, invite_member.role, invite_member.expires_in
    );
end
$$;
revoke execute on function cfg.invite_member(uuid, text, cfg.org_role, interval) from public, anon;
grant execute on function cfg.invite_member(uuid, text, cfg.org_role, interval) to authenticated, service_role;

-- An org's invitations, newest first, with their status. Admins only (and RLS).
create or replace function cfg.list_invitations(org_id uuid)
returns table (
    id uuid, email text, role cfg.org_role, status text, invited_by_email text,
    expires_at timestamptz, created_at timestamptz, accepted_at timestamptz, revoked_at timestamptz
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_invitations.org_id, 'admin', 'listing invitations');
    return query
    select
        i.id, i.email, i.role,
        case
            when i.accepted_at is not null then 'accepted'
            when i.revoked_at is not null then 'revoked'
            when i.expires_at <= now() then 'expired'
            else 'pending'
        end,
        i.invited_by_email, i.expires_at, i.created_at, i.accepted_at, i.revoked_at
    from cfg.org_invitations as i
    where i.org_id = list_invitations.org_id
    order by i.created_at desc, i.email;
end
$$;
revoke execute on function cfg.list_invitations(uuid) from public, anon;
grant execute on function cfg.list_invitations(uuid) to authenticated, service_role;

-- Revokes an open invitation. security definer: API roles cannot write the table.
-- An invitation of an org the caller is not in answers like one that does not exist.
create or replace function cfg_private.revoke_invitation(invitation_id uuid)
returns cfg.org_invitations
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.org_invitations;
begin
    select * into target from cfg.org_invitations as i
    where i.id = revoke_invitation.invitation_id
    for update;
    if target.id is null or (not cfg_private.is_service() and cfg_private.org_role(target.org_id) is null) then
        raise exception 'invitation not found'
            using errcode = 'PT404', detail = jsonb_build_object('invitation_id', invitation_id)::text;
    end if;
    perform cfg_private.require_role(target.org_id, 'admin', 'revoking invitations');
    if target.accepted_at is not null or target.revoked_at is not null then
        raise exception 'this invitation was already %',
            case when target.accepted_at is not null then 'accepted' else 'revoked' end
            using errcode = 'PT409', detail = jsonb_build_object('invitation_id', target.id)::text;
    end if;
    update cfg.org_invitations as i
    set revoked_at = now(), revoked_by = (select auth.uid())
    where i.id = target.id
    returning * into target;
    return target;
end
$$;
revoke execute on function cfg_private.revoke_invitation(uuid) from public, anon;
grant execute on function cfg_private.revoke_invitation(uuid) to authenticated, service_role;

create or replace function cfg.revoke_invitation(invitation_id uuid)
returns cfg.org_invitations
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.revoke_invitation(revoke_invitation.invitation_id);
end
$$;
revoke execute on function cfg.revoke_invitation(uuid) from public, anon;
grant execute on function cfg.revoke_invitation(uuid) to authenticated, service_role;

-- The caller joins the org an invitation addressed to their account's email invites
-- them to. security definer: it reads auth.users (the account's current, confirmed
-- email, not a claim) and writes a membership no policy would admit.
create or replace function cfg_private.accept_invitation(invitation_id uuid)
returns cfg.org_members
language plpgsql
security definer
set search_path = ''
as $$
declare
    account record;
    invitation cfg.org_invitations;
    joined cfg.org_members;
begin
    select u.id, lower(u.email) as email, u.email_confirmed_at into account
    from auth.users as u where u.id = (select auth.uid());
    select * into invitation from cfg.org_invitations as i
    where i.id = accept_invitation.invitation_id
    for update;
    -- Addressed to someone else: exactly like an invitation that does not exist.
    if account.id is null or invitation.id is null or invitation.email is distinct from account.email then
        raise exception 'invitation not found'
            using errcode = 'PT404', detail = jsonb_build_object('invitation_id', invitation_id)::text,
                  hint = 'Invitations are accepted by the account with the invited email address.';
    end if;
    if account.email_confirmed_at is null then
        raise exception 'confirm your email address before accepting invitations'
            using errcode = 'PT403', detail = jsonb_build_object('invitation_id', invitation.id)::text;
    end if;
    if invitation.revoked_at is not null or invitation.accepted_at is not null then
        raise exception 'this invitation was already %',
            case when invitation.accepted_at is not null then 'accepted' else 'revoked' end
            using errcode = 'PT409', detail = jsonb_build_object('invitation_id', invitation.id)::text;
    end if;
    if invitation.expires_at <= now() then
        raise exception 'this invitation expired at %', invitation.expires_at
            using errcode = 'PT409',
                  detail = jsonb_build_object('invitation_id', invitation.id, 'expires_at', invitation.expires_at)::text,
                  hint = 'Ask an admin of the organisation for a new invitation.';
    end if;
    insert into cfg.org_members (org_id, user_id, role, invited_by)
    values (invitation.org_id, account.id, invitation.role, invitation.invited_by)
    on conflict on constraint org_members_org_user_key do nothing
    returning * into joined;
    if joined.id is null then
        raise exception 'you are already a member of this organisation'
            using errcode = 'PT409',
                  detail = jsonb_build_object('invitation_id', invitation.id, 'org_id', invitation.org_id)::text;
    end if;
    update cfg.org_invitations as i
    set accepted_at = now(), accepted_by = account.id
    where i.id = invitation.id;
    return joined;
end
$$;
revoke execute on function cfg_private.accept_invitation(uuid) from public, anon;
grant execute on function cfg_private.accept_invitation(uuid) to authenticated, service_role;

create or replace function cfg.accept_invitation(invitation_id uuid)
returns cfg.org_members
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.accept_invitation(accept_invitation.invitation_id);
end
$$;
revoke execute on function cfg.accept_invitation(uuid) from public, anon;
grant execute on function cfg.accept_invitation(uuid) to authenticated, service_role;

-- The caller's open invitations (addressed to the email of their JWT), oldest first.
-- Not an admin's view of their org's invitations: that is list_invitations. Only
-- signed-in users have an email; the service key calls list_invitations.
create or replace function cfg.my_invitations()
returns table (id uuid, org_id uuid, role cfg.org_role, expires_at timestamptz, created_at timestamptz)
language plpgsql stable
set search_path = ''
as $$
begin
    return query
    select i.id, i.org_id, i.role, i.expires_at, i.created_at
    from cfg.org_invitations as i
    where i.email = (select lower(auth.email()))
        and i.accepted_at is null and i.revoked_at is null and i.expires_at > now()
    order by i.created_at, i.id;
end
$$;
revoke execute on function cfg.my_invitations() from public, anon, service_role;
grant execute on function cfg.my_invitations() to authenticated;

-- When an account's email is confirmed (sign-up, OAuth, SSO, or a confirmed change of
-- email), its open invitations are accepted. A trigger on auth.users, which GoTrue
-- writes as supabase_auth_admin: security definer, and it never raises (a sign-in
-- must not fail because of an invitation).
create or replace function cfg_private.accept_invitations_on_sign_in()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if new.email is null or new.email_confirmed_at is null then
        return null;
    end if;
    if tg_op = 'UPDATE' and old.email_confirmed_at is not null and lower(old.email) = lower(new.email) then
        return null;
    end if;
    with accepted as (
        update cfg.org_invitations as i
        set accepted_at = now(), accepted_by = new.id
        where i.email = lower(new.email) and i.accepted_at is null and i.revoked_at is null
            and i.expires_at > now()
        returning i.org_id, i.role, i.invited_by
    )
    insert into cfg.org_members (org_id, user_id, role, invited_by)
    select a.org_id, new.id, a.role, a.invited_by from accepted as a
    on conflict on constraint org_members_org_user_key do nothing;
    return null;
end
$$;
revoke execute on function cfg_private.accept_invitations_on_sign_in()
from public, anon, authenticated, service_role;

create or replace trigger cfgctl_accept_invitations
after insert or update of email, email_confirmed_at on auth.users
for each row execute function cfg_private.accept_invitations_on_sign_in();

-- member.invited and member.invitation_revoked for webhooks. Accepting adds a member,
-- which emits member.added. security definer: it calls emit_event.
create or replace function cfg_private.invitation_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op = 'INSERT' then
        perform cfg_private.emit_event(
            new.org_id, 'member.invited', 'invitation', new.id, null,
            jsonb_build_object('email', new.email, 'role', new.role, 'expires_at', new.expires_at)
        );
    elsif new.revoked_at is not null and old.revoked_at is null then
        perform cfg_private.emit_event(
            new.org_id, 'member.invitation_revoked', 'invitation', new.id, null,
            jsonb_build_object('email', new.email, 'role', new.role)
        );
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.invitation_event() from public, anon, authenticated, service_role;

-- Only admins read invitations (invitees their own), so only admins read their audit.
select cfg_private.register_table('cfg.org_invitations', audit_arguments => '{@admin}');
create or replace trigger emit_event after insert or update on cfg.org_invitations
for each row execute function cfg_private.invitation_event();
