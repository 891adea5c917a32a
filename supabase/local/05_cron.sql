-- pg_cron as Supabase installs it (Integrations > Cron): in pg_catalog, never in public
-- (splinter lint 0014, extension_in_public). pg_cron can only be created in the
-- database named by cron.database_name; the migrations schedule their jobs there.

do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        create extension if not exists pg_cron with schema pg_catalog;
    end if;
end
$cron$;
