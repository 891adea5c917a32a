-- =============================================================================
-- Row-level security for tenancy tables. Roles: viewer reads; editor writes
-- automations, sections and entries; admin also manages members, environments,
-- the org itself and deletes automations. Nothing is visible outside one's orgs.
-- Helper calls are wrapped in (select ...) so they run once per statement.
-- =============================================================================

-- orgs: created only through cfg.create_org(); never deleted through the API.
drop policy if exists "members read their orgs" on cfg.orgs;
create policy "members read their orgs" on cfg.orgs
for select to authenticated
using (id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "admins update their orgs" on cfg.orgs;
create policy "admins update their orgs" on cfg.orgs
for update to authenticated
using (id in (select cfg_private.orgs_with_role('admin')))
with check (id in (select cfg_private.orgs_with_role('admin')));

-- org_members
drop policy if exists "members read memberships" on cfg.org_members;
create policy "members read memberships" on cfg.org_members
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

-- No insert policy: people join by accepting an invitation (or by creating the org),
-- never because an admin wrote a row (functions/21_tenancy_invitations.sql).
drop policy if exists "admins add members" on cfg.org_members;

drop policy if exists "admins change roles" on cfg.org_members;
create policy "admins change roles" on cfg.org_members
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')))
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins remove members" on cfg.org_members;
create policy "admins remove members" on cfg.org_members
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

-- org_invitations: written only by the invitation RPCs. Admins of the org read its
-- invitations; the invitee reads those addressed to the email in their JWT.
drop policy if exists "admins read invitations" on cfg.org_invitations;
create policy "admins read invitations" on cfg.org_invitations
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "invitees read their invitations" on cfg.org_invitations;
create policy "invitees read their invitations" on cfg.org_invitations
for select to authenticated
using (email = (select lower(auth.email())));

-- environments
drop policy if exists "members read environments" on cfg.environments;
create policy "members read environments" on cfg.environments
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "admins create environments" on cfg.environments;
create policy "admins create environments" on cfg.environments
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins update environments" on cfg.environments;
create policy "admins update environments" on cfg.environments
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')))
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins delete environments" on cfg.environments;
create policy "admins delete environments" on cfg.environments
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

-- automations
drop policy if exists "members read automations" on cfg.automations;
create policy "members read automations" on cfg.automations
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "editors create automations" on cfg.automations;
create policy "editors create automations" on cfg.automations
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('editor')));

drop policy if exists "editors update automations" on cfg.automations;
create policy "editors update automations" on cfg.automations
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')))
with check (org_id in (select cfg_private.orgs_with_role('editor')));

drop policy if exists "admins delete automations" on cfg.automations;
create policy "admins delete automations" on cfg.automations
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

-- config_sections
drop policy if exists "members read sections" on cfg.config_sections;
create policy "members read sections" on cfg.config_sections
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "editors create sections" on cfg.config_sections;
create policy "editors create sections" on cfg.config_sections
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('editor')));

drop policy if exists "editors update sections" on cfg.config_sections;
create policy "editors update sections" on cfg.config_sections
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')))
with check (org_id in (select cfg_private.orgs_with_role('editor')));

drop policy if exists "editors delete sections" on cfg.config_sections;
create policy "editors delete sections" on cfg.config_sections
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')));

-- config_entries (secret values are not here: see entry_secrets)
drop policy if exists "members read entries" on cfg.config_entries;
create policy "members read entries" on cfg.config_entries
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "editors create entries" on cfg.config_entries;
create policy "editors create entries" on cfg.config_entries
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('editor')));

drop policy if exists "editors update entries" on cfg.config_entries;
create policy "editors update entries" on cfg.config_entries
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')))
with check (org_id in (select cfg_private.orgs_with_role('editor')));

drop policy if exists "editors delete entries" on cfg.config_entries;
create policy "editors delete entries" on cfg.config_entries
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')));

-- entry_secrets: Vault ids and tokens, read by editors; written only by cfgctl's
-- definer code (no write grants), revealed through cfg.reveal_secret.
drop policy if exists "editors read secret value ids" on cfg.entry_secrets;
create policy "editors read secret value ids" on cfg.entry_secrets
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')));
