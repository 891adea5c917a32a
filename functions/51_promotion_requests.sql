-- =============================================================================
-- Reading promotion requests, as a dashboard's approval queue shows them.
-- =============================================================================

-- Promotion requests of an org, newest first, with the automation and environment
-- names: all of them or those of one automation (for_automation_id), in one status
-- (with_status; null: every status).
-- security invoker: members read their org's requests under RLS.
create or replace function cfg.list_promotion_requests(
    org_id uuid, with_status cfg.promotion_status default 'pending', for_automation_id uuid default null
)
returns table (
    id uuid, automation_id uuid, automation text, from_env text, to_env text, version integer,
    status cfg.promotion_status, message text, skip_reason text, requested_by_email text, created_at timestamptz,
    decided_by_email text, decision_comment text, decided_at timestamptz, applied_at timestamptz,
    superseded_by uuid
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_promotion_requests.org_id, 'viewer', 'reading promotion requests');
    return query
    select
        r.id, r.automation_id, a.slug, f.slug, t.slug, r.version, r.status, r.message, r.skip_reason,
        r.requested_by_email, r.created_at, r.decided_by_email, r.decision_comment, r.decided_at,
        r.applied_at, r.superseded_by
    from cfg.promotion_requests as r
    join cfg.automations as a on a.id = r.automation_id
    join cfg.environments as f on f.id = r.from_environment_id
    join cfg.environments as t on t.id = r.to_environment_id
    where r.org_id = list_promotion_requests.org_id
        and (for_automation_id is null or r.automation_id = for_automation_id)
        and (with_status is null or r.status = with_status)
    order by r.created_at desc;
end
$$;
revoke execute on function cfg.list_promotion_requests(uuid, cfg.promotion_status, uuid) from public, anon;
grant execute on function cfg.list_promotion_requests(uuid, cfg.promotion_status, uuid) to authenticated, service_role;
