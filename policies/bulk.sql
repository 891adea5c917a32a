-- =============================================================================
-- Row-level security for bulk operations: members of the org read the operations
-- and their items (a dashboard polls or subscribes to the progress row); nobody
-- writes them directly: cfgctl's definer helpers (functions/86_bulk.sql) do.
-- =============================================================================

drop policy if exists "members read bulk operations" on cfg.bulk_operations;
create policy "members read bulk operations" on cfg.bulk_operations
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "members read bulk operation items" on cfg.bulk_operation_items;
create policy "members read bulk operation items" on cfg.bulk_operation_items
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));
