-- A batch of a bulk status, tag or untag operation is now broadcast as its one
-- automations.bulk_updated on the org's topic only, no longer also as an
-- automation.updated per automation on each automation's topic: Supabase Realtime counts
-- every row of realtime.messages against the project's messages per second, subscribed or
-- not, and drops broadcasts over it, every org's alike (docs/realtime.md). A tab open on
-- one automation hears its org's topic for these, and changes_since with automation_id
-- serves the batches that list it (functions/95_realtime.sql).
--
-- The log's rows that went to an automation's topic only were those per-automation
-- changes of bulk batches. The batch messages logged with them list the same automations
-- with the same change, so an automation's catch-up now serves those instead: the rows
-- and the column that marked them go.
delete from cfg_private.changes where not org_topic;
alter table cfg_private.changes drop column org_topic;
drop function if exists cfg_private.broadcast_changes(jsonb [], boolean);
