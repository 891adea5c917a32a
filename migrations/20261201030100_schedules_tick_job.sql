-- The schedules tick (functions/91_schedules_run.sql): pg_cron calls it, as the role
-- that ran this migration (postgres, the owner of cfgctl's tables), in the database
-- pg_cron lives in (cron.database_name). pg_cron 1.5+ (hosted Supabase) takes
-- interval schedules in seconds: every 10 seconds there. Debian's 1.4 knows only
-- cron syntax: every minute, so an occurrence runs at most a minute late.
do $cron$
declare
    version integer[];
begin
    if current_database() = current_setting('cron.database_name', true) then
        select string_to_array(split_part(e.extversion, '-', 1), '.')::integer[] into version
        from pg_catalog.pg_extension as e where e.extname = 'pg_cron';
        perform cron.schedule(
            'cfgctl-schedules-tick',
            case when version >= array[1, 5] then '10 seconds' else '* * * * *' end,
            'select cfg_private.run_schedules()'
        );
    end if;
end
$cron$;
