-- How versions are stored, after measuring save_config (bench/bench_versioning.py).
--
-- Snapshots and audit values are jsonb documents of a few kilobytes written on every
-- save; lz4 compresses them several times faster than the default pglz, for about the
-- same size. Existing rows keep their compression until rewritten.
alter table cfg.config_versions alter column content set compression lz4;
alter table cfg.audit_log alter column old_values set compression lz4;
alter table cfg.audit_log alter column new_values set compression lz4;
alter table cfg_private.events alter column payload set compression lz4;

-- The keys a version changed against its parent, [{section, key, change, secret}]
-- (keys only, never values): history can say what changed without a diff, and the
-- version's audit entry records it instead of a second copy of the snapshot.
-- Null for versions recorded before this column existed.
alter table cfg.config_versions add column changes jsonb;
alter table cfg.config_versions add constraint config_versions_changes_is_array
check (jsonb_typeof(changes) = 'array');
alter table cfg.config_versions alter column changes set compression lz4;
