-- =============================================================================
-- Row-level security for templates: members read them (an editor creates automations
-- from them), admins write them (directly or through the RPCs; triggers check and
-- version every write). Template versions and automation origins are written by
-- cfgctl's definer code only; members read them.
-- =============================================================================

drop policy if exists "members read templates" on cfg.templates;
create policy "members read templates" on cfg.templates
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "admins create templates" on cfg.templates;
create policy "admins create templates" on cfg.templates
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins update templates" on cfg.templates;
create policy "admins update templates" on cfg.templates
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')))
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins delete templates" on cfg.templates;
create policy "admins delete templates" on cfg.templates
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "members read template versions" on cfg.template_versions;
create policy "members read template versions" on cfg.template_versions
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "members read automation origins" on cfg.automation_origins;
create policy "members read automation origins" on cfg.automation_origins
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));
