-- =============================================================================
-- Row-level security for external vaults. Backends and conflicts are admins'
-- business; bindings (a backend, an address, a state: no value) are shown to
-- editors, who save the entries. Nobody writes these tables directly: the RPCs in
-- functions/72_secrets_external.sql and the sync service do.
-- =============================================================================

drop policy if exists "admins read vault backends" on cfg.vault_backends;
create policy "admins read vault backends" on cfg.vault_backends
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));

drop policy if exists "editors read secret bindings" on cfg.secret_bindings;
create policy "editors read secret bindings" on cfg.secret_bindings
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('editor')));

drop policy if exists "admins read secret conflicts" on cfg.secret_conflicts;
create policy "admins read secret conflicts" on cfg.secret_conflicts
for select to authenticated
using (org_id in (select cfg_private.orgs_with_role('admin')));
