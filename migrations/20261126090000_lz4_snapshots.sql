-- Version snapshots and audit values are jsonb documents of a few kilobytes written on
-- every save; lz4 compresses them several times faster than the default pglz, for
-- about the same size. Existing rows keep their compression until rewritten.
alter table cfg.config_versions alter column content set compression lz4;
alter table cfg.audit_log alter column old_values set compression lz4;
alter table cfg.audit_log alter column new_values set compression lz4;
