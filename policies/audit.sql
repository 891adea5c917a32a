-- The audit log: editors and admins read their org's rows. No one writes through
-- the API (the trigger writes as definer); no update or delete policy exists.
drop policy if exists "editors read the audit log" on cfg.audit_log;
create policy "editors read the audit log" on cfg.audit_log
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')));
