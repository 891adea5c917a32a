-- =============================================================================
-- cfg_private.bulk_batch_mark takes the automations to mark (functions/85_bulk_marks.sql):
-- the batch bulk_claim has just read, or the requests an admin decides. Its form that
-- took the operation and read the batch again is gone. 'bulk_batch' marks now name
-- automations, not operations; they live as long as their transaction.
-- =============================================================================

drop function if exists cfg_private.bulk_batch_mark(cfg.bulk_operations, boolean);
