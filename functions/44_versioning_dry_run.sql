-- =============================================================================
-- Saving and patching with a dry run: the write runs in full (every check, rule and
-- reference, the version it would be) and is rolled back, and the answer says what
-- the change would affect (cfg_private.impact_report). Here, after the graph model
-- (44_graph.sql), because the dry run reports the impact radius.
-- =============================================================================

-- Saves content (cfg_private.save_config does the work). dry_run => true: the same
-- answer, plus "dry_run": true and "impact", the automations that reference the
-- changed keys in the first environment (where a save lands), and nothing is kept
-- (the version number it names is not taken).
create or replace function cfg.save_config(
    automation_id uuid, expected_version integer, content jsonb, message text default '', dry_run boolean default false
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    result jsonb;
    saved cfg.config_versions;
    first_env uuid;
begin
    if not coalesce(dry_run, false) then
        return cfg_private.save_config(automation_id, expected_version, content, message);
    end if;
    begin
        result := cfg_private.save_config(automation_id, expected_version, content, message);
        select * into saved from cfg.config_versions as v where v.id = (result ->> 'version_id')::uuid;
        select e.id into first_env from cfg.environments as e where e.org_id = saved.org_id order by e.position limit 1;
        result := result || jsonb_build_object('dry_run', true, 'impact', cfg_private.impact_report(
            saved.automation_id,
            -- An unchanged save changes no key.
            case when (result ->> 'created')::boolean then cfg_private.key_paths(saved.changes) else '{}' end,
            first_env
        ));
        -- Undoes everything since the block began; the variables keep their values.
        raise exception 'dry run' using errcode = 'PTDRY';
    exception when sqlstate 'PTDRY' then
        return result;
    end;
end
$$;
revoke execute on function cfg.save_config(uuid, integer, jsonb, text, boolean) from public, anon;
grant execute on function cfg.save_config(uuid, integer, jsonb, text, boolean) to authenticated, service_role;

-- Changes some keys and saves a version: the key-level write that `cfgctl config set`,
-- bulk operations, Git sync and the assistant share. set = {"<section>": {"<key>":
-- entry}}, an entry as in content ({value, secret?, description?}; fields it leaves out
-- keep their current value, so a secret stays secret); unset = {"<section>": ["<key>",
-- …]}. A section named in set is created when missing; sections left empty stay.
-- Without expected_version it patches the current version (PT409 only if someone
-- saves between the read and the write). dry_run: as save_config's.
-- security invoker: it reads (get_config) and saves (save_config) as the caller, so
-- their checks, locks and PT409 on a stale expected_version apply unchanged.
create or replace function cfg.patch_config(
    automation_id uuid,
    expected_version integer default null,
    set jsonb default '{}',
    unset jsonb default '{}',
    message text default '',
    dry_run boolean default false
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    current jsonb := cfg.get_config(patch_config.automation_id);
    content jsonb := current -> 'content';
    section record;
    entry record;
    gone text;
begin
    if jsonb_typeof(coalesce(set, '{}')) <> 'object'
        or exists (select 1 from jsonb_each(coalesce(set, '{}')) as s where jsonb_typeof(s.value) <> 'object')
        or exists (
            select 1 from jsonb_each(coalesce(set, '{}')) as s, jsonb_each(s.value) as e
            where jsonb_typeof(e.value) <> 'object'
        ) then
        raise exception 'set must be {"<section>": {"<key>": {"value": …}}}'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'set')::text;
    end if;
    if jsonb_typeof(coalesce(unset, '{}')) <> 'object'
        or exists (
            select 1 from jsonb_each(coalesce(unset, '{}')) as s
            where jsonb_typeof(s.value) <> 'array'
                or exists (select 1 from jsonb_array_elements(s.value) as k where jsonb_typeof(k) <> 'string')
        ) then
        raise exception 'unset must be {"<section>": ["<key>", …]}'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'unset')::text;
    end if;
    for section in select s.key as name, s.value as keys from jsonb_each(coalesce(unset, '{}')) as s loop
        for gone in select jsonb_array_elements_text(section.keys) loop
            if not coalesce(content -> 'sections' -> section.name -> 'entries' ? gone, false) then
                raise exception '%.% does not exist', section.name, gone
                    using errcode = 'PT404',
                          detail = jsonb_build_object('section', section.name, 'key', gone)::text;
            end if;
            content := content #- array['sections', section.name, 'entries', gone];
        end loop;
    end loop;
    for entry in
        select s.key as section, e.key, e.value
        from jsonb_each(coalesce(set, '{}')) as s, jsonb_each(s.value) as e
    loop
        if not content -> 'sections' ? entry.section then
            content := jsonb_set(content, array['sections', entry.section], '{"entries": {}}');
        end if;
        content := jsonb_set(
            content, array['sections', entry.section, 'entries', entry.key],
            coalesce(content -> 'sections' -> entry.section -> 'entries' -> entry.key, '{}') || entry.value
        );
    end loop;
    return cfg.save_config(
        patch_config.automation_id, coalesce(expected_version, (current ->> 'version')::integer), content, message,
        dry_run
    );
end
$$;
revoke execute on function cfg.patch_config(uuid, integer, jsonb, jsonb, text, boolean) from public, anon;
grant execute on function cfg.patch_config(uuid, integer, jsonb, jsonb, text, boolean) to authenticated, service_role;
