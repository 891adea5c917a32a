-- =============================================================================
-- Row-level security for automation types and validation rules: members read them
-- (a rule is what an editor's save must pass), admins write them (directly or through
-- the RPCs; triggers check and version every write). Rule versions and the validation
-- status are written by cfgctl's definer code only; members read them.
-- =============================================================================

drop policy if exists "members read automation types" on cfg.automation_types;
create policy "members read automation types" on cfg.automation_types
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "admins create automation types" on cfg.automation_types;
create policy "admins create automation types" on cfg.automation_types
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins update automation types" on cfg.automation_types;
create policy "admins update automation types" on cfg.automation_types
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')))
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins delete automation types" on cfg.automation_types;
create policy "admins delete automation types" on cfg.automation_types
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "members read validation rules" on cfg.validation_rules;
create policy "members read validation rules" on cfg.validation_rules
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "admins create validation rules" on cfg.validation_rules;
create policy "admins create validation rules" on cfg.validation_rules
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins update validation rules" on cfg.validation_rules;
create policy "admins update validation rules" on cfg.validation_rules
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')))
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins delete validation rules" on cfg.validation_rules;
create policy "admins delete validation rules" on cfg.validation_rules
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "members read validation rule versions" on cfg.validation_rule_versions;
create policy "members read validation rule versions" on cfg.validation_rule_versions
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "members read validation status" on cfg.validation_status;
create policy "members read validation status" on cfg.validation_status
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));
