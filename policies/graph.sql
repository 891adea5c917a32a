-- =============================================================================
-- Row-level security for the dependency graph. A reference is read by those who are
-- members of both orgs it joins (within one org, its members): a member of only one
-- of two orgs does not learn that they reference each other. Written only by the
-- definer trigger that extracts them (cfg_private.extract_references).
-- =============================================================================

drop policy if exists "members of both orgs read references" on cfg.version_references;
create policy "members of both orgs read references" on cfg.version_references
for select to authenticated
using (
    org_id in (select cfg_private.orgs_with_role('viewer'))
    -- Within one org (nearly every reference) the second list is never read.
    and (to_org_id = org_id or to_org_id in (select cfg_private.orgs_with_role('viewer')))
);
