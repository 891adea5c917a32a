-- Audit, automation events, webhook fan-out and broadcasts are statement-level (issue
-- 12, bulk benchmark (a)): cfg_private.audit_changes replaces the row-level audit_row
-- (register_table attaches it again, as audit_insert/_update/_delete, when the function
-- files are applied after this migration), and cfg_private.broadcast_changes logs and
-- sends a statement's changes at once in place of broadcast_change.
drop function if exists cfg_private.audit_row() cascade;
drop function if exists cfg_private.broadcast_change(uuid, uuid, text, jsonb, uuid, text);
