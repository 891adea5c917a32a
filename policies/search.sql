-- =============================================================================
-- Row-level security for saved filters: a member reads their own and the org's shared
-- ones; anyone in the org keeps personal filters; editors and up share, change and delete
-- shared ones. Search itself reads the tables under their own policies.
-- =============================================================================

drop policy if exists "members read their own and shared filters" on cfg.saved_filters;
create policy "members read their own and shared filters" on cfg.saved_filters
for select to authenticated
using (
    org_id in (select cfg_private.orgs_with_role('viewer'))
    and (shared or owner_id = (select auth.uid()))
);

drop policy if exists "members save filters, editors share them" on cfg.saved_filters;
create policy "members save filters, editors share them" on cfg.saved_filters
for insert to authenticated
with check (
    owner_id = (select auth.uid())
    and org_id in (select cfg_private.orgs_with_role(case when shared then 'editor' else 'viewer' end::cfg.org_role))
);

drop policy if exists "owners and editors change filters" on cfg.saved_filters;
create policy "owners and editors change filters" on cfg.saved_filters
for update to authenticated
using (
    (owner_id = (select auth.uid()) and org_id in (select cfg_private.orgs_with_role('viewer')))
    or (shared and org_id in (select cfg_private.orgs_with_role('editor')))
)
with check (
    org_id in (select cfg_private.orgs_with_role(case when shared then 'editor' else 'viewer' end::cfg.org_role))
    and (shared or owner_id = (select auth.uid()))
);

drop policy if exists "owners and editors delete filters" on cfg.saved_filters;
create policy "owners and editors delete filters" on cfg.saved_filters
for delete to authenticated
using (
    (owner_id = (select auth.uid()) and org_id in (select cfg_private.orgs_with_role('viewer')))
    or (shared and org_id in (select cfg_private.orgs_with_role('editor')))
);

drop policy if exists "members read what their environments run" on cfg_private.deployed_entries;
create policy "members read what their environments run" on cfg_private.deployed_entries
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));
