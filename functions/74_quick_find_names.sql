-- =============================================================================
-- Quick find's automation names (cfg_private.quick_find_names, migration
-- 20261204020000): a row per automation, written when one is created or renamed and
-- never by a status or tag change, so the trigram GiST it carries is not rewritten by
-- bulk updates. Read by cfg_private.quick_find_hits (94_search_filters.sql).
-- The triggers fire ALWAYS, also with session_replication_role = replica (a restore, a
-- bulk load): like an index, the table follows the automations whatever writes them.
-- =============================================================================

-- security definer: API roles cannot write cfg_private. Executable by nobody.
create or replace function cfg_private.quick_find_names_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into cfg_private.quick_find_names (automation_id, org_id, slug, name)
    select n.id, n.org_id, n.slug, n.name from new_rows as n;
    return null;
end
$$;
revoke execute on function cfg_private.quick_find_names_insert() from public, anon, authenticated, service_role;

-- security definer: API roles cannot write cfg_private. Executable by nobody.
create or replace function cfg_private.quick_find_names_rename()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update cfg_private.quick_find_names as n
    set slug = new.slug, name = new.name, updated_at = now()
    where n.automation_id = new.id;
    return null;
end
$$;
revoke execute on function cfg_private.quick_find_names_rename() from public, anon, authenticated, service_role;

create or replace trigger quick_find_names_insert after insert on cfg.automations
referencing new table as new_rows
for each statement execute function cfg_private.quick_find_names_insert();
-- Only an UPDATE naming slug or name considers it at all; the WHEN skips no-op renames.
create or replace trigger quick_find_names_rename after update of slug, name on cfg.automations
for each row when (old.slug is distinct from new.slug or old.name is distinct from new.name)
execute function cfg_private.quick_find_names_rename();
alter table cfg.automations enable always trigger quick_find_names_insert;
alter table cfg.automations enable always trigger quick_find_names_rename;
