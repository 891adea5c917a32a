-- One API for the dashboard (issue 9): an argument named *_version is a version number,
-- one named *_version_id a version's uuid. diff_versions and merge_config took uuids
-- under *_version names; their arguments are renamed (functions/41_versioning_rpc.sql),
-- which PostgreSQL allows only by dropping the old signature.
drop function if exists cfg.diff_versions(uuid, uuid);
drop function if exists cfg.merge_config(uuid, uuid, jsonb);
