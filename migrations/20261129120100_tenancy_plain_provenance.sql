-- =============================================================================
-- Supabase Auth deletes a user with `DELETE FROM auth.users`. Columns that say who
-- did something are history: they keep the id (and, where there is one, the email)
-- as plain values instead of referencing auth.users, so a deletion neither fails
-- on immutable rows (config versions) nor is undone by the triggers that freeze
-- provenance (created_by, invited_by). Only memberships reference auth.users:
-- they end with the account (on delete cascade).
-- =============================================================================

alter table cfg.orgs drop constraint if exists orgs_created_by_fkey;
alter table cfg.org_members drop constraint if exists org_members_invited_by_fkey;
alter table cfg.automations
drop constraint if exists automations_created_by_fkey,
drop constraint if exists automations_updated_by_fkey;
alter table cfg.webhook_endpoints
drop constraint if exists webhook_endpoints_created_by_fkey,
drop constraint if exists webhook_endpoints_updated_by_fkey;
alter table cfg.config_versions drop constraint if exists config_versions_author_id_fkey;
alter table cfg.deployments drop constraint if exists deployments_deployed_by_fkey;
alter table cfg.deployment_history drop constraint if exists deployment_history_actor_id_fkey;
alter table cfg.promotion_requests
drop constraint if exists promotion_requests_requested_by_fkey,
drop constraint if exists promotion_requests_decided_by_fkey;
