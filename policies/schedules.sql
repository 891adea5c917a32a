-- =============================================================================
-- Row-level security for schedules: members read schedules and their occurrences;
-- every write goes through the schedule RPCs and the tick (cfgctl's definer code).
-- =============================================================================

drop policy if exists "members read schedules" on cfg.schedules;
create policy "members read schedules" on cfg.schedules
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));

drop policy if exists "members read schedule occurrences" on cfg.schedule_occurrences;
create policy "members read schedule occurrences" on cfg.schedule_occurrences
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('viewer')));
