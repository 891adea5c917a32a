-- =============================================================================
-- Deleting an automation others depend on (issue 15): refused unless forced. Here, after
-- the graph (44_graph.sql) and before everything that deletes (bulk operations).
-- =============================================================================

-- The automations whose newest version references automation_id (in any org): those
-- the caller may see by name ({automation_id, name}), the others only counted.
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
    select
        coalesce(jsonb_agg(jsonb_build_object('automation_id', d.id, 'name', cfg_private.automation_name(d.id, origin_org))
            order by cfg_private.automation_name(d.id, origin_org)) filter (where d.seen), '[]'),
        count(*) filter (where not d.seen)
    into visible, hidden
    from (
        select distinct r.from_automation_id as id,
            cfg_private.is_service() or cfg_private.org_role(r.org_id) is not null as seen
        from cfg.version_references as r
        where r.to_automation_id = dependents_of.automation_id and r.from_automation_id <> dependents_of.automation_id
            and r.version = (select max(v.version) from cfg.config_versions as v where v.automation_id = r.from_automation_id)
    ) as d;
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
