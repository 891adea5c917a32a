-- Bulk status and tag changes broadcast one message per batch on the org's topic (issue
-- 12 (a), docs/realtime.md "Bulk operations"). Supabase Realtime limits the messages a
-- project and a channel take per second; 5,000 automation.updated on one org topic would
-- be throttled and flood every open grid. Within a batch of a bulk status, tag or untag
-- operation, each automation's own topic still gets its automation.updated and the org
-- topic gets one automations.bulk_updated (written by cfg_private.bulk_record,
-- functions/86_bulk.sql). Functions: functions/95_realtime.sql.

-- Which topics a logged change went to: a bulk batch's per-automation changes went only
-- to their automation's topic, so an org's catch-up (changes_since without automation_id)
-- leaves them out and serves the batch's one message instead, as the org topic carried it.
alter table cfg_private.changes add column org_topic boolean not null default true;

-- 'bulk_batch': this transaction runs a batch of the bulk operation subject_id (written
-- by its definer helpers after checking the author; read by the broadcast trigger).
alter table cfg_private.transaction_marks drop constraint transaction_marks_mark_known;
alter table cfg_private.transaction_marks add constraint transaction_marks_mark_known check (
    mark in ('versioned_write', 'direct_versioned', 'audit_retention', 'scheduled', 'bulk_batch')
);

-- broadcast_changes takes the topics to use (functions/95_realtime.sql).
drop function if exists cfg_private.broadcast_changes(jsonb []);
