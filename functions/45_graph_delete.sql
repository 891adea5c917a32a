-- =============================================================================
-- Deleting an automation others depend on (issue 15): refused unless forced. Here, after
-- the graph (44_graph.sql) and before everything that deletes (bulk operations).
-- =============================================================================

-- The automations whose newest version references automation_id (in any org; the
-- walk's first level): those the caller may see by name ({automation_id, name}), the others only counted.
-- security definer: a reference from an org the admin is not a member of still
-- forbids the delete; it is not named.
create or replace function cfg_private.dependents_of(automation_id uuid, out visible jsonb, out hidden integer)
language plpgsql stable security definer
-- JIT compiling these queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    origin_org uuid := (select a.org_id from cfg.automations as a where a.id = dependents_of.automation_id);
begin
    with d as materialized (
        select r.automation_id from cfg_private.reach(dependents_of.automation_id, max_depth => 1) as r
    )
    select
        coalesce(jsonb_agg(jsonb_build_object('automation_id', a.automation_id, 'name', a.name) order by a.name)
            filter (where a.seen), '[]'),
        count(*) filter (where not a.seen)
    into visible, hidden
    from (
        select a.automation_id, a.name, cfg_private.is_service() or cfg_private.org_role(a.org_id) is not null as seen
        from cfg_private.automation_names(array(select d.automation_id from d), origin_org) as a
    ) as a;
end
$$;
revoke execute on function cfg_private.dependents_of(uuid) from public, anon;
grant execute on function cfg_private.dependents_of(uuid) to authenticated, service_role;

-- Deletes an automation with its sections and entries. Admins only. Refused (PT409,
-- with the list) while other automations reference it in their newest version,
-- unless force => true: their content keeps naming it, unresolved from then on.
create or replace function cfg.delete_automation(automation_id uuid, force boolean default false)
returns cfg.automations
language plpgsql
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(automation_id, 'admin', 'deleting automations');
    dependents record;
begin
    if not coalesce(force, false) then
        select * into dependents from cfg_private.dependents_of(target.id);
        if jsonb_array_length(dependents.visible) + dependents.hidden > 0 then
            raise exception '% is referenced by % automation(s)%: remove the references first, or delete with force',
                target.slug, jsonb_array_length(dependents.visible) + dependents.hidden,
                coalesce(': ' || nullif((select string_agg(d ->> 'name', ', ') from jsonb_array_elements(dependents.visible) as d), ''), '')
                using errcode = 'PT409',
                      detail = jsonb_build_object(
                          'automation_id', target.id, 'dependents', dependents.visible, 'hidden_dependents', dependents.hidden
                      )::text;
        end if;
    end if;
    delete from cfg.automations as a where a.id = target.id;
    return target;
end
$$;
revoke execute on function cfg.delete_automation(uuid, boolean) from public, anon;
grant execute on function cfg.delete_automation(uuid, boolean) to authenticated, service_role;
