-- Versions written by an import (issue 12) and by a schedule (issue 16) say so, and so
-- do the deployments they move. Both lists in one place, ahead of both features, so
-- neither migration has to restate the other's kinds.
alter table cfg.config_versions drop constraint config_versions_kind_known;
alter table cfg.config_versions add constraint config_versions_kind_known
check (kind in ('save', 'rollback', 'direct', 'sync', 'import', 'scheduled'));

alter table cfg.deployment_history drop constraint deployment_history_source_known;
alter table cfg.deployment_history add constraint deployment_history_source_known
check (source in ('save', 'rollback', 'direct', 'promotion', 'sync', 'import', 'scheduled'));
