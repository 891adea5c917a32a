-- Supabase Realtime streams the tables in this publication from the WAL.
do $publication$
begin
    if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end
$publication$;
