-- =============================================================================
-- pg_cron lives in pg_catalog, as on Supabase (splinter lint 0014,
-- extension_in_public). Earlier releases let `create extension pg_cron` put it in
-- public. pg_cron is not relocatable: keep its jobs and their run history,
-- recreate the extension in pg_catalog, and put them back unchanged (same ids,
-- names, schedules, commands, databases, users, active flags).
-- =============================================================================

do $move$
declare
    jobs jsonb;
    runs jsonb;
begin
    if exists (
        select 1 from pg_catalog.pg_extension
        where extname = 'pg_cron' and extnamespace <> 'pg_catalog'::regnamespace
    ) then
        select coalesce(jsonb_agg(to_jsonb(j)), '[]') into jobs from cron.job as j;
        select coalesce(jsonb_agg(to_jsonb(r)), '[]') into runs from cron.job_run_details as r;

        drop extension pg_cron;
        create extension pg_cron with schema pg_catalog;

        insert into cron.job (jobid, schedule, command, nodename, nodeport, database, username, active, jobname)
        select j.jobid, j.schedule, j.command, j.nodename, j.nodeport, j.database, j.username,
               coalesce(j.active, true), j.jobname
        from jsonb_populate_recordset(null::cron.job, jobs) as j;
        insert into cron.job_run_details
        select * from jsonb_populate_recordset(null::cron.job_run_details, runs);

        perform pg_catalog.setval('cron.jobid_seq', coalesce((select max(jobid) from cron.job), 0) + 1, false);
        perform pg_catalog.setval('cron.runid_seq', coalesce((select max(runid) from cron.job_run_details), 0) + 1, false);
    end if;
end
$move$;
