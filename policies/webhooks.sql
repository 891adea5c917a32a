-- =============================================================================
-- Webhooks: endpoints are managed by admins only (URLs often carry tokens);
-- the host allowlist is readable by admins and written by the operator
-- (service role). Secrets, the queue and the delivery log live in cfg_private
-- and are reached through RPCs (functions/60_webhooks.sql).
-- =============================================================================

drop policy if exists "admins read webhook endpoints" on cfg.webhook_endpoints;
create policy "admins read webhook endpoints" on cfg.webhook_endpoints
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins create webhook endpoints" on cfg.webhook_endpoints;
create policy "admins create webhook endpoints" on cfg.webhook_endpoints
for insert to authenticated
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins update webhook endpoints" on cfg.webhook_endpoints;
create policy "admins update webhook endpoints" on cfg.webhook_endpoints
for update to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')))
with check (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins delete webhook endpoints" on cfg.webhook_endpoints;
create policy "admins delete webhook endpoints" on cfg.webhook_endpoints
for delete to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "admins read allowed webhook hosts" on cfg.webhook_allowed_hosts;
create policy "admins read allowed webhook hosts" on cfg.webhook_allowed_hosts
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));
