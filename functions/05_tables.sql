-- =============================================================================
-- Row stamping shared by every table: updated_at, org_id frozen, author columns
-- from the JWT. Tables attach them where they are defined (20_tenancy.sql, …).
-- =============================================================================

-- updated_at on every write; org_id can never move a row to another tenant.
-- For every table with an org_id (columns read directly: this runs on every write).
create or replace function cfg_private.touch_row()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'UPDATE' and new.org_id is distinct from old.org_id then
        raise exception 'org_id cannot be changed'
            using errcode = 'PT422',
                  detail = jsonb_build_object('table', tg_table_name)::text;
    end if;
    new.updated_at := now();
    return new;
end
$$;
revoke execute on function cfg_private.touch_row() from public, anon, authenticated, service_role;

-- updated_at for cfg.orgs, the one table whose tenant key is its own id.
create or replace function cfg_private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;
revoke execute on function cfg_private.touch_updated_at() from public, anon, authenticated, service_role;

-- created_by/updated_by come from the JWT, never from the client.
create or replace function cfg_private.stamp_author()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    actor uuid := (select auth.uid());
begin
    if tg_op = 'INSERT' then
        new.created_by := coalesce(actor, new.created_by);
    else
        new.created_by := old.created_by;
    end if;
    new.updated_by := coalesce(actor, new.updated_by);
    return new;
end
$$;
revoke execute on function cfg_private.stamp_author() from public, anon, authenticated, service_role;
