-- The audit log: editors and admins read their org's rows, admins only those about
-- admin-only tables (readable_by). No one writes through the API (the trigger writes
-- as definer); no update or delete policy exists.
drop policy if exists "editors read the audit log" on cfg.audit_log;
create policy "editors read the audit log" on cfg.audit_log
for select to authenticated
using (
    org_id in (select cfg_private.orgs_with_role('editor'))
    and (readable_by = 'editor' or org_id in (select cfg_private.orgs_with_role('admin')))
);
