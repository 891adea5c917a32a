-- =============================================================================
-- Membership by invitation. An admin invites an email address with a role; the
-- person accepts (cfg.accept_invitation), or the invitation is accepted when an
-- account with that email is confirmed (first sign-in, SSO included). Inviting
-- answers the same whether or not an account exists, so it reveals nothing.
-- Functions live in functions/tenancy.sql, policies in policies/tenancy.sql.
-- =============================================================================

create table cfg.org_invitations (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references cfg.orgs (id) on delete cascade,
    -- Stored lowercased and trimmed: the match with an account's email ignores case.
    email text not null,
    role cfg.org_role not null default 'viewer',
    -- Provenance as plain values (no foreign key): it outlives the inviter's account.
    invited_by uuid,
    invited_by_email text,
    expires_at timestamptz not null,
    accepted_at timestamptz,
    accepted_by uuid,
    revoked_at timestamptz,
    revoked_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint org_invitations_email_normalised check (email = lower(btrim(email))),
    constraint org_invitations_email_format check (email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 320),
    -- An invitation lives between an hour and 30 days.
    constraint org_invitations_lifetime check (
        expires_at >= created_at + interval '1 hour' and expires_at <= created_at + interval '30 days'
    ),
    -- Closed once: accepted (by someone) or revoked, never both.
    constraint org_invitations_accepted check ((accepted_at is null) = (accepted_by is null)),
    constraint org_invitations_closed_once check (accepted_at is null or revoked_at is null)
);
-- At most one open invitation per org and email; a new one replaces it.
create unique index org_invitations_open_idx on cfg.org_invitations (org_id, email)
where accepted_at is null and revoked_at is null;
-- Sign-in looks up the open invitations of one email.
create index org_invitations_email_idx on cfg.org_invitations (email)
where accepted_at is null and revoked_at is null;
create index org_invitations_org_created_idx on cfg.org_invitations (org_id, created_at desc);

alter table cfg.org_invitations enable row level security;
-- Read under RLS (admins of the org, the invitee); written only by the RPCs.
revoke all on cfg.org_invitations from public, anon, authenticated;
grant select on cfg.org_invitations to authenticated;
grant select, insert, update, delete on cfg.org_invitations to service_role;

-- Memberships are made only by cfg.create_org and by accepting an invitation:
-- an admin can no longer put someone into an org without their consent.
revoke insert on cfg.org_members from authenticated;
drop policy if exists "admins add members" on cfg.org_members;
-- Replaced by cfg.invite_member: it answered differently for unknown emails.
drop function if exists cfg.add_member(uuid, text, cfg.org_role);

insert into cfg_private.event_types (type, description) values
('member.invited', 'Someone was invited to join the organisation'),
('member.invitation_revoked', 'An invitation to join the organisation was revoked'),
('org.admin_lost', 'The last admin''s account was deleted; an operator must name a new admin')
on conflict (type) do nothing;
