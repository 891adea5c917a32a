-- =============================================================================
-- Bulk marks cover automations, not operations. 'bulk_batch' marks each automation of
-- the batch a transaction runs (subject_id: the automation, no longer the operation),
-- and the new 'bulk_decision' each automation whose pending promotion request of a bulk
-- promotion an admin is deciding (cfg.decide_bulk_promotions). The broadcast triggers
-- send nothing about a marked automation: the batch, or the decision, is one
-- automations.bulk_updated on the org's topic (functions/95_realtime.sql). Marks live
-- only as long as their transaction (functions/85_bulk_marks.sql,
-- functions/99_bulk_decisions.sql).
-- =============================================================================

alter table cfg_private.transaction_marks drop constraint transaction_marks_mark_known;
alter table cfg_private.transaction_marks add constraint transaction_marks_mark_known check (
    mark in ('versioned_write', 'direct_versioned', 'audit_retention', 'scheduled', 'bulk_batch', 'bulk_decision')
);
