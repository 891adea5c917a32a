-- =============================================================================
-- cfg.automations' indexes on created_by and updated_by were there for the foreign
-- keys to auth.users, which 20261129120100_tenancy_plain_provenance dropped. Nothing
-- reads automations by author (no function, policy, worker or CLI command), yet every
-- write kept both up to date: an update is never HOT here (updated_at is indexed), so
-- each row of a bulk change wrote an entry in each (Supabase's advisor lints unused
-- indexes). webhook_endpoints has the same leftovers; it is not written in bulk, so they
-- stay until someone shows they cost.
-- =============================================================================

drop index if exists cfg.automations_created_by_idx;
drop index if exists cfg.automations_updated_by_idx;
