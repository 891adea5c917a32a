-- =============================================================================
-- Row-level security for versions, deployments and promotion requests. Members
-- read their org's rows; nobody writes them directly (no insert, update or delete
-- grant): save_config, rollback, promote and the approval RPCs are the only paths.
-- =============================================================================

drop policy if exists "members read config versions" on cfg.config_versions;
create policy "members read config versions" on cfg.config_versions
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "members read deployments" on cfg.deployments;
create policy "members read deployments" on cfg.deployments
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "members read deployment history" on cfg.deployment_history;
create policy "members read deployment history" on cfg.deployment_history
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "members read promotion requests" on cfg.promotion_requests;
create policy "members read promotion requests" on cfg.promotion_requests
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

-- Pipeline change requests (functions/22_tenancy_pipeline.sql): members read;
-- only the request/approve/reject RPCs write them.
drop policy if exists "members read environment change requests" on cfg.environment_change_requests;
create policy "members read environment change requests" on cfg.environment_change_requests
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));
