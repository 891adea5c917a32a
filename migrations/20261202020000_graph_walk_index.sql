-- The dependency graph's walk (issue 15, benchmark 6 (a)). "Who references automation X
-- now" was a max(version) lookup per edge, for every edge of every version into X; a
-- flag marks the edges of each automation's newest version instead, kept by the
-- extraction trigger (functions/44_graph.sql), so that question is one range of a
-- partial index. The walk itself: cfg_private.reach.

-- True on the edges of the newest version of their referencing automation; cleared when
-- a newer version of it is written (the only change an edge ever sees). A version row
-- is always its automation's newest when it is inserted, hence the default.
alter table cfg.version_references add column newest boolean not null default true;

-- Existing edges: only those of the highest version of their automation stay newest.
-- As the owner, without the row triggers: this is not a change anyone made.
alter table cfg.version_references disable trigger user;
update cfg.version_references as r
set newest = false
where r.version < (select max(v.version) from cfg.config_versions as v where v.automation_id = r.from_automation_id);
alter table cfg.version_references enable trigger user;

-- Who references X now (the impact walk, the delete check, an event's affected list):
-- covering what the walk reads and RLS checks, so a level reads the index alone.
create index version_references_newest_to_idx on cfg.version_references (to_automation_id)
include (from_automation_id, to_section, to_key, kind, org_id, to_org_id) where newest;
-- What X references now (the cycle check), and the edges a new version of X supersedes.
create index version_references_newest_from_idx on cfg.version_references (from_automation_id)
include (to_automation_id) where newest;
-- Who references X in an environment: the edges into X by version, matched with what
-- runs there. Replaces the index on to_automation_id alone (its first column serves the
-- foreign key to the referenced automation).
create index version_references_to_version_idx on cfg.version_references (to_automation_id, version_id);
drop index cfg.version_references_to_idx;

-- The walk gains "declared" (a declared dependency counts whatever the keys: what an
-- event's affected list needs), so its old signature goes; names are read for a set
-- of automations at once (cfg_private.automation_names), not one call each.
drop function if exists cfg_private.reach(uuid, uuid, text [], integer);
drop function if exists cfg_private.automation_name(uuid, uuid);
