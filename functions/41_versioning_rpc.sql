-- =============================================================================
-- RPCs
-- =============================================================================

-- Saves the whole content of an automation as one unit: validates it, checks the
-- caller edited the current version, replaces sections and entries, records a
-- version (none when nothing changed), deploys it to dev and appends config.saved.
-- security definer: the version tables accept no writes from API roles, so history
-- cannot be forged; the caller's role is checked first (editor), by automation_for.
-- cfg.save_config is the API; this is its privileged half.
create or replace function cfg_private.save_config(
    automation_id uuid, expected_version integer, content jsonb, message text
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations;
begin
    target := cfg_private.automation_for(save_config.automation_id, 'editor', 'saving config', true);
    perform cfg_private.require_valid_content(content);
    if length(coalesce(message, '')) > 2000 then
        raise exception 'message is at most 2000 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'message')::text;
    end if;
    perform cfg_private.require_current_version(target.id, expected_version);
    return cfg_private.write_version(target, content, message, 'save');
end
$$;
revoke execute on function cfg_private.save_config(uuid, integer, jsonb, text) from public, anon;
grant execute on function cfg_private.save_config(uuid, integer, jsonb, text) to authenticated, service_role;

-- cfg.save_config, with its dry run: functions/44_versioning_dry_run.sql.

-- Creates a new version whose content equals version to_version (history stays
-- append-only), deploys it to dev and appends config.rolled_back. Pass
-- expected_version to make it fail with PT409 if someone saved meanwhile.
-- security definer: it restores the secrets versions keep in cfg_private; editors only
-- (automation_for). cfg.rollback is the API; this is its privileged half.
create or replace function cfg_private.rollback(
    automation_id uuid, to_version integer, message text, expected_version integer
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations;
    restored cfg.config_versions;
    content jsonb;
begin
    target := cfg_private.automation_for(rollback.automation_id, 'editor', 'rolling back config', true);
    select * into restored
    from cfg.config_versions as v
    where v.automation_id = target.id and v.version = rollback.to_version;
    if restored.id is null then
        raise exception 'version % of this automation does not exist', coalesce(to_version::text, 'null')
            using errcode = 'PT404',
                  detail = jsonb_build_object('automation_id', target.id, 'version', to_version)::text;
    end if;
    if expected_version is not null then
        perform cfg_private.require_current_version(target.id, expected_version);
    end if;
    -- Valid when it was saved; checked again as content (rules may change).
    perform cfg_private.require_valid_content(cfg_private.snapshot_as_content(restored.content));
    content := cfg_private.restorable_content(restored.id);
    return cfg_private.write_version(
        target, content, coalesce(message, 'rollback to version ' || restored.version), 'rollback', restored.version
    );
end
$$;
revoke execute on function cfg_private.rollback(uuid, integer, text, integer) from public, anon;
grant execute on function cfg_private.rollback(uuid, integer, text, integer) to authenticated, service_role;

create or replace function cfg.rollback(
    automation_id uuid, to_version integer, message text default null, expected_version integer default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.rollback(automation_id, to_version, message, expected_version);
end
$$;
revoke execute on function cfg.rollback(uuid, integer, text, integer) from public, anon;
grant execute on function cfg.rollback(uuid, integer, text, integer) to authenticated, service_role;

-- The content of an automation at a version (default: the current one), as
-- save_config takes it: secrets appear as {"secret": true} without their value.
create or replace function cfg.get_config(automation_id uuid, version integer default null)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    target cfg.automations;
    found cfg.config_versions;
begin
    target := cfg_private.automation_for(get_config.automation_id, 'viewer', 'reading config');
    if version is null then
        found := cfg_private.current_version(target.id);
    else
        select * into found
        from cfg.config_versions as v
        where v.automation_id = target.id and v.version = get_config.version;
        if found.id is null then
            raise exception 'version % of this automation does not exist', version
                using errcode = 'PT404',
                      detail = jsonb_build_object('automation_id', target.id, 'version', version)::text;
        end if;
    end if;
    return jsonb_build_object(
        'automation_id', target.id,
        'version', coalesce(found.version, 0),
        'version_id', found.id,
        'content', cfg_private.snapshot_as_content(coalesce(found.content, '{"sections": {}}'::jsonb))
    );
end
$$;
revoke execute on function cfg.get_config(uuid, integer) from public, anon;
grant execute on function cfg.get_config(uuid, integer) to authenticated, service_role;

-- History, newest first, one page at a time (before_version: the last version of
-- the previous page). Content is left out; read cfg.config_versions for it.
create or replace function cfg.config_history(
    automation_id uuid, max_rows integer default 50, before_version integer default null
)
returns table (
    version integer,
    id uuid,
    parent_version integer,
    kind text,
    restored_from integer,
    message text,
    author_id uuid,
    author_email text,
    created_at timestamptz,
    content_hash text,
    changes jsonb
)
language plpgsql stable
set search_path = ''
as $$
declare
    target cfg.automations;
begin
    if max_rows is null or max_rows not between 1 and 1000 then
        raise exception 'max_rows must be between 1 and 1000'
            using errcode = 'PT422', detail = jsonb_build_object('max_rows', max_rows)::text;
    end if;
    target := cfg_private.automation_for(config_history.automation_id, 'viewer', 'reading history');
    return query
    select
        v.version, v.id, v.parent_version, v.kind, v.restored_from, v.message, v.author_id,
        coalesce(v.author_email, v.author_role), v.created_at, v.content_hash, v.changes
    from cfg.config_versions as v
    where v.org_id = target.org_id and v.automation_id = target.id
        and (before_version is null or v.version < before_version)
    order by v.version desc
    limit max_rows;
end
$$;
revoke execute on function cfg.config_history(uuid, integer, integer) from public, anon;
grant execute on function cfg.config_history(uuid, integer, integer) to authenticated, service_role;

-- Structured diff between two versions (by id) of the same automation: entry
-- changes per section and key with old and new values; secrets show as changed,
-- never with a value. security invoker: RLS decides which versions the caller sees.
create or replace function cfg.diff_versions(from_version_id uuid, to_version_id uuid)
returns jsonb
language plpgsql stable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    a cfg.config_versions;
    b cfg.config_versions;
begin
    select * into a from cfg.config_versions as v where v.id = from_version_id;
    select * into b from cfg.config_versions as v where v.id = to_version_id;
    if a.id is null or b.id is null then
        raise exception 'version not found'
            using errcode = 'PT404',
                  detail = jsonb_build_object(
                      'from_version_id', from_version_id, 'to_version_id', to_version_id,
                      'missing', case when a.id is null then 'from_version_id' else 'to_version_id' end
                  )::text;
    end if;
    if a.automation_id <> b.automation_id then
        raise exception 'the two versions belong to different automations'
            using errcode = 'PT422',
                  detail = jsonb_build_object(
                      'from_automation_id', a.automation_id, 'to_automation_id', b.automation_id
                  )::text;
    end if;
    return jsonb_build_object(
        'automation_id', a.automation_id,
        'from', jsonb_build_object('id', a.id, 'version', a.version),
        'to', jsonb_build_object('id', b.id, 'version', b.version)
    ) || cfg_private.diff_contents(a.content, b.content);
end
$$;
revoke execute on function cfg.diff_versions(uuid, uuid) from public, anon;
grant execute on function cfg.diff_versions(uuid, uuid) to authenticated, service_role;

-- Mine's content as a snapshot of automation_id, for comparing with versions: its
-- secrets become tokens. security definer: tokens need the private key; editors
-- only (automation_for), who may read the automation's secret values anyway.
create or replace function cfg_private.editor_snapshot(automation_id uuid, content jsonb)
returns jsonb
language plpgsql stable
security definer
set search_path = ''
as $$
begin
    perform cfg_private.automation_for(editor_snapshot.automation_id, 'editor', 'merging config');
    return cfg_private.content_snapshot(editor_snapshot.automation_id, content);
end
$$;
revoke execute on function cfg_private.editor_snapshot(uuid, jsonb) from public, anon;
grant execute on function cfg_private.editor_snapshot(uuid, jsonb) to authenticated, service_role;

-- The three-way merge of saves and templates: base and theirs are snapshots (as
-- versions store them), mine is content as save_config takes it and mine_snapshot
-- the same as a snapshot. {"merged": content, "conflicts": [...]}: a conflict is a
-- key (or a section's attributes) both sides changed differently; merged keeps mine there.
create or replace function cfg_private.merge_contents(base jsonb, theirs jsonb, mine jsonb, mine_snapshot jsonb)
returns jsonb
language sql immutable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
with base_e as (
    select s.key as section, e.key, e.value as entry
    from jsonb_each(merge_contents.base -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
),
theirs_e as (
    select s.key as section, e.key, e.value as entry
    from jsonb_each(merge_contents.theirs -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
),
mine_raw as (
    select s.key as section, e.key, e.value as raw
    from jsonb_each(merge_contents.mine -> 'sections') as s, jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
),
-- Mine in snapshot form, comparable with base and theirs. A secret sent without
-- a value is unchanged from base.
mine_e as (
    select
        m.section, m.key, m.raw,
        case
            when coalesce((m.raw ->> 'secret')::boolean, false) and not m.raw ? 'value'
                then coalesce(
                    (select b.entry from base_e as b where b.section = m.section and b.key = m.key),
                    (select t.entry from theirs_e as t where t.section = m.section and t.key = m.key)
                )
            else merge_contents.mine_snapshot -> 'sections' -> m.section -> 'entries' -> m.key
        end as entry
    from mine_raw as m
),
keys as (
    select k.section, k.key from base_e as k
    union
    select k.section, k.key from theirs_e as k
    union
    select k.section, k.key from mine_e as k
),
decided as (
    select
        k.section, k.key, b.entry as b, t.entry as t, m.entry as m, m.raw,
        case
            when m.entry is not distinct from t.entry then 'mine'
            when m.entry is not distinct from b.entry then 'theirs'
            when t.entry is not distinct from b.entry then 'mine'
            else 'conflict'
        end as pick
    from keys as k
    left join base_e as b on b.section = k.section and b.key = k.key
    left join theirs_e as t on t.section = k.section and t.key = k.key
    left join mine_e as m on m.section = k.section and m.key = k.key
),
chosen as (
    select
        d.section, d.key,
        case
            when d.pick = 'theirs' then d.t - 'digest'
            else d.raw
        end as entry
    from decided as d
),
section_attrs as (
    select
        s.section,
        (merge_contents.base -> 'sections' -> s.section) - 'entries' as b,
        (merge_contents.theirs -> 'sections' -> s.section) - 'entries' as t,
        case when merge_contents.mine -> 'sections' ? s.section then jsonb_build_object(
            'description', coalesce(merge_contents.mine -> 'sections' -> s.section ->> 'description', ''),
            'position', coalesce((merge_contents.mine -> 'sections' -> s.section ->> 'position')::integer, 0)
        ) end as m
    from (
        select jsonb_object_keys(merge_contents.base -> 'sections') as section
        union
        select jsonb_object_keys(merge_contents.theirs -> 'sections')
        union
        select jsonb_object_keys(merge_contents.mine -> 'sections')
    ) as s
),
section_pick as (
    select
        a.section, a.b, a.t, a.m,
        case
            when a.m is not distinct from a.t then a.m
            when a.m is not distinct from a.b then a.t
            else a.m
        end as attrs,
        a.m is distinct from a.t and a.m is distinct from a.b and a.t is distinct from a.b as conflict
    from section_attrs as a
),
merged_sections as (
    select
        p.section,
        coalesce(p.attrs, '{"description": "", "position": 0}'::jsonb) || jsonb_build_object(
            'entries', coalesce((
                select jsonb_object_agg(c.key, c.entry)
                from chosen as c where c.section = p.section and c.entry is not null
            ), '{}'::jsonb)
        ) as value
    from section_pick as p
    where p.attrs is not null
        or exists (select 1 from chosen as c where c.section = p.section and c.entry is not null)
),
hidden as (
    select
        d.section, d.key,
        case
            when d.b is null then null
            when (d.b -> 'secret') = 'true'::jsonb then '{"secret": true}'::jsonb
            else d.b - 'digest'
        end as b,
        case
            when d.t is null then null
            when (d.t -> 'secret') = 'true'::jsonb then '{"secret": true}'::jsonb
            else d.t - 'digest'
        end as t,
        case
            when d.m is null then null
            when (d.m -> 'secret') = 'true'::jsonb then '{"secret": true}'::jsonb
            else d.m - 'digest'
        end as m
    from decided as d
    where d.pick = 'conflict'
)
select jsonb_build_object(
    'merged', jsonb_build_object('sections', coalesce(
        (select jsonb_object_agg(s.section, s.value) from merged_sections as s), '{}'::jsonb
    )),
    'conflicts', coalesce((
        select jsonb_agg(c.conflict order by c.section, c.key nulls first)
        from (
            select h.section, h.key, jsonb_build_object(
                'section', h.section, 'key', h.key, 'base', h.b, 'theirs', h.t, 'mine', h.m
            ) as conflict
            from hidden as h
            union all
            select p.section, null, jsonb_build_object(
                'section', p.section, 'key', null, 'base', p.b, 'theirs', p.t, 'mine', p.m
            )
            from section_pick as p
            where p.conflict
        ) as c
    ), '[]'::jsonb)
)
$$;
revoke execute on function cfg_private.merge_contents(jsonb, jsonb, jsonb, jsonb) from public, anon;
grant execute on function cfg_private.merge_contents(jsonb, jsonb, jsonb, jsonb) to authenticated, service_role;

-- Three-way merge of mine (content, as save_config takes it) with theirs_version_id,
-- both descending from base_version_id. Returns {"merged": content, "conflicts": [...]}
-- where a conflict is a key both sides changed differently; merged keeps mine there.
-- Save merged with expected_version = theirs' number.
-- security invoker: RLS decides which versions the caller sees, so another org's
-- version is "not found" like a missing one, before anything else is said.
create or replace function cfg.merge_config(base_version_id uuid, theirs_version_id uuid, mine jsonb)
returns jsonb
language plpgsql stable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    base cfg.config_versions;
    theirs cfg.config_versions;
    mine_snapshot jsonb;
begin
    select * into base from cfg.config_versions as v where v.id = base_version_id;
    select * into theirs from cfg.config_versions as v where v.id = theirs_version_id;
    if base.id is null or theirs.id is null then
        raise exception 'version not found'
            using errcode = 'PT404',
                  detail = jsonb_build_object('base_version_id', base_version_id, 'theirs_version_id', theirs_version_id)::text;
    end if;
    if base.automation_id <> theirs.automation_id then
        raise exception 'base and theirs belong to different automations'
            using errcode = 'PT422',
                  detail = jsonb_build_object(
                      'base_automation_id', base.automation_id, 'theirs_automation_id', theirs.automation_id
                  )::text;
    end if;
    perform cfg_private.require_role(base.org_id, 'editor', 'merging config');
    perform cfg_private.require_valid_content(mine);
    mine_snapshot := cfg_private.editor_snapshot(base.automation_id, mine);

    return jsonb_build_object('base_version', base.version, 'theirs_version', theirs.version)
        || cfg_private.merge_contents(base.content, theirs.content, mine, mine_snapshot);
end
$$;
revoke execute on function cfg.merge_config(uuid, uuid, jsonb) from public, anon;
grant execute on function cfg.merge_config(uuid, uuid, jsonb) to authenticated, service_role;

-- cfg.patch_config, with its dry run: functions/44_versioning_dry_run.sql.
