-- Functions that were replaced or whose signature changed. Dropping them is a schema
-- change, so it lives here: the function files create the current ones and, after any
-- migration has run, are all applied again, which also re-creates the triggers dropped
-- by CASCADE below.

-- Its test was inlined into the trigger WHEN clauses (functions/audit.sql). Databases
-- built before that still have triggers calling it.
drop function if exists cfg_private.in_versioned_write() cascade;

-- A save versions the content it wrote (cfg_private.content_snapshot), and the direct
-- write path reads the rows back with cfg_private.live_content.
drop function if exists cfg_private.snapshot_live(uuid);
-- Now returns the applied content and the changed keys.
drop function if exists cfg_private.apply_content(uuid, uuid, jsonb);
-- Now takes the content it records and its changed keys.
drop function if exists cfg_private.record_version(uuid, uuid, text, text, integer);
-- Now returns the keys each version changed.
drop function if exists cfg.config_history(uuid, integer, integer);
