-- =============================================================================
-- Versioning: save as one unit with optimistic locking, three-way merge,
-- history, diff and rollback. Tables: migrations/20261125200000_versioning.sql.
--
-- Content, as RPCs take and return it:
--   {"sections": {"<name>": {"description": "", "position": 0,
--       "entries": {"<key>": {"value": <json>, "secret": false, "description": ""}}}}}
-- A secret entry sent without "value" keeps the secret value it has now.
-- A version snapshot has the same shape, except that a secret entry is
--   {"secret": true, "digest": "<hmac>", "description": ""}: never its value. The
-- values themselves are kept in cfg_private.version_secrets for rollback and promotion.
-- =============================================================================

-- The token a version snapshot shows for a secret value: HMAC(key, automation_id ||
-- ':' || value). Bound to the automation, so equal secrets in other automations or
-- orgs give other tokens, and only a caller who can save in this automation (an
-- editor, who may read its secrets anyway) can produce one to test a guess against.
-- The same formula re-tokened old snapshots in
-- migrations/20261129090000_hardening_versioned_writes.sql.
-- security definer: the key lives in cfg_private. Never granted to API roles.
-- plpgsql, not sql, here and in the other functions a save calls: PostgreSQL 15 plans
-- a non-inlined sql function's query on every call; plpgsql keeps the plan.
create or replace function cfg_private.secret_token(automation_id uuid, value jsonb)
returns text
language plpgsql stable security definer
set search_path = ''
as $$
begin
    return (
        select encode(extensions.hmac(
            convert_to(automation_id::text || ':' || value::text, 'UTF8'), k.key, 'sha256'
        ), 'hex')
        from cfg_private.digest_keys as k
    );
end
$$;
revoke execute on function cfg_private.secret_token(uuid, jsonb) from public, anon, authenticated, service_role;

-- The live sections and entries of an automation as content, secret values included.
-- The direct-write path versions this; saves version what they wrote instead.
-- security definer: it must see every entry and secret whoever the caller is.
create or replace function cfg_private.live_content(automation_id uuid)
returns jsonb
language plpgsql stable security definer
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
begin
    return (select jsonb_build_object('sections', coalesce(jsonb_object_agg(
        s.name,
        jsonb_build_object(
            'description', s.description, 'position', s.position,
            'entries', coalesce(ents.entries, '{}'::jsonb)
        )
    ), '{}'::jsonb))
    from cfg.config_sections as s
    left join lateral (
        select jsonb_object_agg(
            e.key,
            jsonb_build_object('secret', e.is_secret, 'description', e.description)
            -- A secret without a stored value has no "value" (as when it is kept).
            || case when not e.is_secret then jsonb_build_object('value', e.value)
                when es.value is not null then jsonb_build_object('value', es.value)
                else '{}'::jsonb end
        ) as entries
        from cfg.config_entries as e
        left join cfg.entry_secrets as es on es.id = e.id
        where e.section_id = s.id
    ) as ents on true
    where s.automation_id = live_content.automation_id);
end
$$;
revoke execute on function cfg_private.live_content(uuid) from public, anon, authenticated, service_role;

-- The snapshot of valid content, as a version of automation_id stores it: every
-- field present (defaults filled in), secret values replaced by their tokens. Content read back
-- from the tables and the content that was written give the same snapshot, so the
-- same hash: an unchanged save records no version.
-- Not granted to API roles: with secret_token it would be an oracle to guess secrets with.
create or replace function cfg_private.content_snapshot(automation_id uuid, content jsonb)
returns jsonb
language plpgsql stable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
begin
    -- Built as json text and parsed once: aggregating jsonb re-encodes every entry at
    -- each level and took twice as long.
    return (select json_build_object('sections', coalesce(json_object_agg(
        s.key,
        json_build_object(
            'description', coalesce(s.value ->> 'description', ''),
            'position', coalesce((s.value ->> 'position')::integer, 0),
            'entries', coalesce((
                select json_object_agg(
                    e.key,
                    case
                        when (e.value -> 'secret') = 'true'::jsonb then json_build_object(
                            'secret', true, 'digest', cfg_private.secret_token(automation_id, e.value -> 'value'),
                            'description', coalesce(e.value ->> 'description', '')
                        )
                        else json_build_object(
                            'secret', false, 'value', e.value -> 'value',
                            'description', coalesce(e.value ->> 'description', '')
                        )
                    end
                )
                from jsonb_each(s.value -> 'entries') as e
            ), '{}'::json)
        )
    ), '{}'::json))::jsonb
    from jsonb_each(content -> 'sections') as s);
end
$$;
revoke execute on function cfg_private.content_snapshot(uuid, jsonb) from public, anon, authenticated, service_role;

-- A snapshot as RPC content: secrets become {"secret": true} (keep the value).
create or replace function cfg_private.snapshot_as_content(snapshot jsonb)
returns jsonb
language sql immutable
set search_path = ''
as $$
    select jsonb_build_object('sections', coalesce(jsonb_object_agg(
        s.key,
        (s.value - 'entries') || jsonb_build_object('entries', coalesce((
            select jsonb_object_agg(e.key, e.value - 'digest')
            from jsonb_each(s.value -> 'entries') as e
        ), '{}'::jsonb))
    ), '{}'::jsonb))
    from jsonb_each(snapshot -> 'sections') as s
$$;
revoke execute on function cfg_private.snapshot_as_content(jsonb) from public, anon;
grant execute on function cfg_private.snapshot_as_content(jsonb) to authenticated, service_role;

-- Every problem with a content document, as [{path, message}], or null when it is valid.
create or replace function cfg_private.content_problems(content jsonb)
returns jsonb
language plpgsql immutable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    problems jsonb;
begin
    if content is null or jsonb_typeof(content) <> 'object' then
        return jsonb_build_array(jsonb_build_object(
            'path', '', 'message', 'content must be a JSON object {"sections": {...}}'
        ));
    end if;
    if jsonb_typeof(content -> 'sections') is distinct from 'object' then
        return jsonb_build_array(jsonb_build_object(
            'path', 'sections', 'message', 'content needs "sections": an object of sections by name'
        ));
    end if;
    -- Bounds before any per-section work: a huge document is refused in linear time.
    if pg_column_size(content) > 16777216 then
        return jsonb_build_array(jsonb_build_object(
            'path', '', 'message', 'content is at most 16 MiB'
        ));
    end if;
    if (select count(*) from jsonb_object_keys(content -> 'sections')) > 1000 then
        return jsonb_build_array(jsonb_build_object(
            'path', 'sections', 'message', 'at most 1000 sections per automation'
        ));
    end if;
    -- Fast path, one pass over sections and entries: valid content (nearly every save)
    -- skips the detailed listing below. It may only err towards "invalid", which the
    -- listing then decides; its conditions are the negations of the checks below.
    -- A counted repetition ({1,200}) makes a regex match several times slower than
    -- `+` and a length check, which say the same here.
    if not exists (select 1 from jsonb_object_keys(content) as k (key) where k.key <> 'sections')
        and coalesce((
            select bool_and(case when jsonb_typeof(s.value) = 'object' then
                s.key ~ '^[A-Za-z0-9_.-]+$' and length(s.key) <= 100
                and (s.value - 'description' - 'position' - 'entries') = '{}'::jsonb
                and (
                    not s.value ? 'description'
                    or jsonb_typeof(s.value -> 'description') = 'string' and length(s.value ->> 'description') <= 10000
                )
                and (
                    not s.value ? 'position'
                    or jsonb_typeof(s.value -> 'position') = 'number'
                    and (s.value ->> 'position') ~ '^[0-9]+$' and length(s.value ->> 'position') <= 9
                )
                and (not s.value ? 'entries' or jsonb_typeof(s.value -> 'entries') = 'object')
            else false end)
            from jsonb_each(content -> 'sections') as s
        ), true) is true
        and coalesce((
            select bool_and(case when jsonb_typeof(e.value) = 'object' then
                e.key ~ '^[A-Za-z0-9_.-]+$' and length(e.key) <= 200
                and (e.value - 'value' - 'secret' - 'description') = '{}'::jsonb
                and (not e.value ? 'secret' or jsonb_typeof(e.value -> 'secret') = 'boolean')
                and (e.value ? 'value' or (e.value -> 'secret') = 'true'::jsonb)
                and (not e.value ? 'value' or octet_length((e.value -> 'value')::text) <= 1048576)
                and (
                    not e.value ? 'description'
                    or jsonb_typeof(e.value -> 'description') = 'string' and length(e.value ->> 'description') <= 10000
                )
            else false end) and count(*) <= 10000
            from jsonb_each(content -> 'sections') as s,
                jsonb_each(case
                    when jsonb_typeof(s.value -> 'entries') = 'object' then s.value -> 'entries' else '{}'::jsonb
                end) as e
        ), true) is true then
        return null;
    end if;
    with sections as (
        select s.key as name, s.value from jsonb_each(content -> 'sections') as s
    ),
    entries as (
        select s.name as section, e.key, e.value
        from sections as s, jsonb_each(case
            when jsonb_typeof(s.value -> 'entries') = 'object' then s.value -> 'entries' else '{}'::jsonb
        end) as e
        where jsonb_typeof(s.value) = 'object'
    ),
    found as (
        select k.key as path, 'unknown top-level field (only "sections")' as message
        from jsonb_object_keys(content) as k (key) where k.key <> 'sections'
        union all
        -- One pass over the sections, one over the entries: each check is a row of VALUES.
        select 'sections.' || s.name || c.suffix, c.message
        from sections as s
        cross join lateral (values
            (s.name !~ '^[A-Za-z0-9_.-]{1,100}$', '', 'section name must be 1-100 letters, digits, _ . -'),
            (jsonb_typeof(s.value) <> 'object', '', 'a section must be an object {description?, position?, entries}'),
            (
                jsonb_typeof(s.value -> 'description') is distinct from 'string' and s.value ? 'description'
                or length(s.value ->> 'description') > 10000,
                '.description', 'description must be a string of at most 10000 characters'
            ),
            (
                s.value ? 'position' and (
                    jsonb_typeof(s.value -> 'position') <> 'number' or (s.value ->> 'position') !~ '^[0-9]{1,9}$'
                ),
                '.position', 'position must be a whole number from 0'
            ),
            (
                s.value ? 'entries' and jsonb_typeof(s.value -> 'entries') <> 'object',
                '.entries', 'entries must be an object of entries by key'
            )
        ) as c (bad, suffix, message)
        where c.bad
        union all
        select 'sections.' || s.name || '.' || k.key, 'unknown section field (description, position, entries)'
        from sections as s, jsonb_object_keys(case
            when jsonb_typeof(s.value) = 'object' then s.value else '{}'::jsonb
        end) as k (key)
        where k.key not in ('description', 'position', 'entries')
        union all
        select 'sections.' || e.section || '.entries.' || e.key || c.suffix, c.message
        from entries as e
        cross join lateral (values
            (e.key !~ '^[A-Za-z0-9_.-]{1,200}$', '', 'entry key must be 1-200 letters, digits, _ . -'),
            (jsonb_typeof(e.value) <> 'object', '', 'an entry must be an object {value, secret?, description?}'),
            (
                e.value ? 'secret' and jsonb_typeof(e.value -> 'secret') <> 'boolean',
                '.secret', 'secret must be true or false'
            ),
            (
                jsonb_typeof(e.value) = 'object' and not e.value ? 'value'
                and (e.value -> 'secret') is distinct from 'true'::jsonb,
                '.value', 'a plain entry needs a value'
            ),
            (octet_length((e.value -> 'value')::text) > 1048576, '.value', 'a value is at most 1 MiB'),
            (
                e.value ? 'description' and (
                    jsonb_typeof(e.value -> 'description') <> 'string' or length(e.value ->> 'description') > 10000
                ),
                '.description', 'description must be a string of at most 10000 characters'
            )
        ) as c (bad, suffix, message)
        where c.bad
        union all
        select 'sections.' || e.section || '.entries.' || e.key || '.' || k.key,
            'unknown entry field (value, secret, description)'
        from entries as e, jsonb_object_keys(case
            when jsonb_typeof(e.value) = 'object' then e.value else '{}'::jsonb
        end) as k (key)
        where k.key not in ('value', 'secret', 'description')
        union all
        select 'sections', 'at most 10000 entries per automation'
        where (select count(*) from entries) > 10000
    )
    select jsonb_agg(jsonb_build_object('path', f.path, 'message', f.message) order by f.path)
    into problems
    from (select * from found limit 100) as f;
    return problems;
end
$$;
revoke execute on function cfg_private.content_problems(jsonb) from public, anon;
grant execute on function cfg_private.content_problems(jsonb) to authenticated, service_role;

-- Raise PT422 with every problem of content, unless it is valid.
create or replace function cfg_private.require_valid_content(content jsonb)
returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    problems jsonb := cfg_private.content_problems(content);
begin
    if problems is not null then
        raise exception 'invalid content: % (%)', problems -> 0 ->> 'message', problems -> 0 ->> 'path'
            using errcode = 'PT422',
                  detail = jsonb_build_object('errors', problems)::text,
                  hint = 'Content is {"sections": {"<name>": {"entries": {"<key>": {"value": ...}}}}}.';
    end if;
end
$$;
revoke execute on function cfg_private.require_valid_content(jsonb) from public, anon;
grant execute on function cfg_private.require_valid_content(jsonb) to authenticated, service_role;

-- Structured diff of two snapshots: entry changes per section and key, section
-- changes, and a summary. Secret entries show as changed, never with a value.
create or replace function cfg_private.diff_contents(old_content jsonb, new_content jsonb)
returns jsonb
language sql immutable
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
    with old_sections as (
        select s.key as section, s.value from jsonb_each(coalesce(old_content -> 'sections', '{}'::jsonb)) as s
    ),
    new_sections as (
        select s.key as section, s.value from jsonb_each(coalesce(new_content -> 'sections', '{}'::jsonb)) as s
    ),
    old_entries as (
        select s.section, e.key, e.value as entry
        from old_sections as s, jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
    ),
    new_entries as (
        select s.section, e.key, e.value as entry
        from new_sections as s, jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
    ),
    entry_changes as (
        select
            coalesce(o.section, n.section) as section,
            coalesce(o.key, n.key) as key,
            case when o.entry is null then 'added' when n.entry is null then 'removed' else 'changed' end as change,
            o.entry as old_entry,
            n.entry as new_entry
        from old_entries as o
        full join new_entries as n on o.section = n.section and o.key = n.key
        where o.entry is distinct from n.entry
    ),
    section_changes as (
        select
            coalesce(o.section, n.section) as section,
            case when o.value is null then 'added' when n.value is null then 'removed' else 'changed' end as change,
            o.value - 'entries' as old_attrs,
            n.value - 'entries' as new_attrs
        from old_sections as o
        full join new_sections as n on o.section = n.section
        where o.value is null or n.value is null or (o.value - 'entries') is distinct from (n.value - 'entries')
    )
    select jsonb_build_object(
        'summary', jsonb_build_object(
            'added', (select count(*) from entry_changes as c where c.change = 'added'),
            'removed', (select count(*) from entry_changes as c where c.change = 'removed'),
            'changed', (select count(*) from entry_changes as c where c.change = 'changed'),
            'sections_changed', (select count(*) from section_changes)
        ),
        'changes', coalesce((
            select jsonb_agg(
                jsonb_build_object(
                    'section', c.section, 'key', c.key, 'change', c.change,
                    'secret', coalesce((c.new_entry -> 'secret')::boolean, (c.old_entry -> 'secret')::boolean, false),
                    'fields', (
                        select coalesce(jsonb_agg(f.name order by f.name), '[]'::jsonb)
                        from unnest(array['value', 'secret', 'description']) as f (name)
                        where c.change = 'changed'
                            and case f.name
                                when 'value' then coalesce(c.old_entry -> 'value', c.old_entry -> 'digest')
                                    is distinct from coalesce(c.new_entry -> 'value', c.new_entry -> 'digest')
                                else (c.old_entry -> f.name) is distinct from (c.new_entry -> f.name)
                            end
                    )
                )
                || case
                    when c.old_entry is not null and not coalesce((c.old_entry -> 'secret')::boolean, false)
                        then jsonb_build_object('old_value', c.old_entry -> 'value')
                    else '{}'::jsonb
                end
                || case
                    when c.new_entry is not null and not coalesce((c.new_entry -> 'secret')::boolean, false)
                        then jsonb_build_object('new_value', c.new_entry -> 'value')
                    else '{}'::jsonb
                end
                || case
                    when c.change = 'changed'
                        and (c.old_entry -> 'description') is distinct from (c.new_entry -> 'description')
                        then jsonb_build_object(
                            'old_description', c.old_entry -> 'description',
                            'new_description', c.new_entry -> 'description'
                        )
                    else '{}'::jsonb
                end
                order by c.section, c.key
            )
            from entry_changes as c
        ), '[]'::jsonb),
        'sections', coalesce((
            select jsonb_agg(jsonb_build_object(
                'section', c.section, 'change', c.change, 'old', c.old_attrs, 'new', c.new_attrs
            ) order by c.section)
            from section_changes as c
        ), '[]'::jsonb)
    )
$$;
revoke execute on function cfg_private.diff_contents(jsonb, jsonb) from public, anon;
grant execute on function cfg_private.diff_contents(jsonb, jsonb) to authenticated, service_role;

-- [{section, key, change}] between two snapshots: what a conflict dialog or a webhook needs.
create or replace function cfg_private.changed_keys(old_content jsonb, new_content jsonb)
returns jsonb
language plpgsql immutable
set jit = off
set search_path = ''
as $$
begin
    return (select coalesce(jsonb_agg(jsonb_build_object(
        'section', coalesce(o.section, n.section),
        'key', coalesce(o.key, n.key),
        'change', case when o.entry is null then 'added' when n.entry is null then 'removed' else 'changed' end,
        'secret', coalesce((n.entry -> 'secret')::boolean, (o.entry -> 'secret')::boolean, false)
    ) order by coalesce(o.section, n.section), coalesce(o.key, n.key)), '[]'::jsonb)
    from (
        select s.key as section, e.key, e.value as entry
        from jsonb_each(coalesce(old_content -> 'sections', '{}'::jsonb)) as s,
            jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
    ) as o
    full join (
        select s.key as section, e.key, e.value as entry
        from jsonb_each(coalesce(new_content -> 'sections', '{}'::jsonb)) as s,
            jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
    ) as n on o.section = n.section and o.key = n.key
    where o.entry is distinct from n.entry);
end
$$;
revoke execute on function cfg_private.changed_keys(jsonb, jsonb) from public, anon;
grant execute on function cfg_private.changed_keys(jsonb, jsonb) to authenticated, service_role;

-- =============================================================================
-- Writing: apply content to the live tables, record a version, deploy it.
-- =============================================================================

-- The automation, after checking the caller's role; locked against concurrent saves
-- when lock is true. PT404 for ids the caller cannot see (other orgs' included).
-- security definer: it locks the row whatever the caller's row-level rights.
create or replace function cfg_private.automation_for(
    automation_id uuid, min_role cfg.org_role, action text, lock boolean default false
)
returns cfg.automations
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.automations;
    caller_role cfg.org_role;
begin
    -- Taking the save lock is an editor's act: a viewer must not be able to hold up saves.
    if lock and min_role < 'editor' then
        min_role := 'editor';
    end if;
    select * into found from cfg.automations as a where a.id = automation_for.automation_id;
    -- The service key passes; anyone else needs a role in the automation's org.
    if found.id is not null and not cfg_private.is_service() then
        caller_role := cfg_private.org_role(found.org_id);
        if caller_role is null then
            found := null;
        elsif caller_role < min_role then
            perform cfg_private.require_role(found.org_id, min_role, action);  -- raises PT403
        end if;
    end if;
    if found.id is null then
        raise exception 'automation not found'
            using errcode = 'PT404',
                  detail = jsonb_build_object('automation_id', automation_id)::text;
    end if;
    if lock then
        -- Serialises saves, rollbacks and promotions of one automation. NO KEY UPDATE
        -- does not block inserts of rows that reference the automation.
        select * into found from cfg.automations as a where a.id = found.id for no key update;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.automation_for(uuid, cfg.org_role, text, boolean) from public, anon;
grant execute on function cfg_private.automation_for(uuid, cfg.org_role, text, boolean) to authenticated, service_role;

-- Makes the live sections and entries equal to content (validated). Only rows that
-- change are written, so realtime carries the real changes. Returns the content as
-- applied (a secret sent without a value has its current value put in) and the
-- changed keys [{section, key, change, secret}] read from the writes themselves:
-- removed, changed, added, each by section and key.
-- Values compare as text: 1.0 and 1 are equal jsonb but not the same content.
-- security definer: direct writes are versioned at commit (version_direct_write);
-- this is the path that versions them up front, after the caller's role was checked.
create or replace function cfg_private.apply_content(
    automation_id uuid, org_id uuid, content jsonb, out applied jsonb, out changes jsonb
)
language plpgsql
security definer
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    kept record;
    problems jsonb := '[]'::jsonb;
begin
    applied := content;
    -- A secret entry without a value keeps the one it has, so it must be a secret
    -- already. (A save usually sends every value: the lookup is skipped then.)
    if jsonb_path_exists(content, '$.sections.*.entries.* ? (!exists(@.value))') then
        for kept in
            select s.key as section, e.key, ce.is_secret, es.value
            from jsonb_each(content -> 'sections') as s
            cross join jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
            left join cfg.config_sections as cs
                on cs.automation_id = apply_content.automation_id and cs.name = s.key
            left join cfg.config_entries as ce on ce.section_id = cs.id and ce.key = e.key and ce.is_secret
            left join cfg.entry_secrets as es on es.id = ce.id
            where not e.value ? 'value'
        loop
            if kept.is_secret is null then
                problems := problems || jsonb_build_object(
                    'path', 'sections.' || kept.section || '.entries.' || kept.key || '.value',
                    'message', 'a new secret entry needs a value'
                );
            elsif kept.value is not null then
                applied := jsonb_set(applied, array['sections', kept.section, 'entries', kept.key, 'value'], kept.value);
            end if;
        end loop;
        if problems <> '[]'::jsonb then
            raise exception 'invalid content: a new secret entry needs a value (%)', problems -> 0 ->> 'path'
                using errcode = 'PT422', detail = jsonb_build_object('errors', problems)::text;
        end if;
    end if;

    -- These writes are versioned by the caller (record_version, which also lands the
    -- version in dev): the per-row audit and direct-write triggers skip them and the
    -- dev deployment they cause (their WHEN clauses read this flag, which the caller
    -- turns off again). The version row and its audit entry are the record instead.
    -- The mark is what makes the flag count (cfg_private.guard_versioned_write): a
    -- client can set the flag, not the mark. write_version removes both.
    insert into cfg_private.transaction_marks (mark, subject_id)
    values ('versioned_write', apply_content.automation_id)
    on conflict do nothing;
    perform set_config('cfgctl.versioned_write', 'on', true);

    -- Sections first, so that new entries have theirs: changed ones and new ones.
    with wanted as (
        select
            n.key as name, coalesce(n.value ->> 'description', '') as description,
            coalesce((n.value ->> 'position')::integer, 0) as position
        from jsonb_each(applied -> 'sections') as n
    ),
    changed as (
        update cfg.config_sections as s
        set description = w.description, position = w.position, updated_at = now()
        from wanted as w
        where s.automation_id = apply_content.automation_id and s.name = w.name
            and (s.description, s.position) is distinct from (w.description, w.position)
    )
    insert into cfg.config_sections (org_id, automation_id, name, description, position)
    select apply_content.org_id, apply_content.automation_id, w.name, w.description, w.position
    from wanted as w
    where not exists (
        select 1 from cfg.config_sections as s
        where s.automation_id = apply_content.automation_id and s.name = w.name
    );

    -- Entries: one pass over the content and one over the live rows; entries of
    -- sections that go are among those removed. The changed keys are aggregated as
    -- json text and parsed once (jsonb_agg re-encodes every object).
    with wanted as (
        select
            s.id as section_id, s.name as section, n.key, n.value -> 'value' as value,
            coalesce((n.value ->> 'secret')::boolean, false) as secret,
            coalesce(n.value ->> 'description', '') as description
        -- Joined by name, not looked up per section: `applied -> 'sections'` copies the
        -- whole sections object each time, which made this quadratic in their number.
        from cfg.config_sections as s
        join jsonb_each(applied -> 'sections') as ws on ws.key = s.name
        cross join jsonb_each(coalesce(ws.value -> 'entries', '{}'::jsonb)) as n
        where s.automation_id = apply_content.automation_id
    ),
    live as (
        select e.id, e.section_id, s.name as section, e.key, e.is_secret
        from cfg.config_entries as e
        join cfg.config_sections as s on s.id = e.section_id
        where e.automation_id = apply_content.automation_id
    ),
    gone as (
        delete from cfg.config_entries as e
        using live as l
        where e.id = l.id
            and not exists (select 1 from wanted as w where w.section_id = l.section_id and w.key = l.key)
        returning l.section, l.key, l.is_secret
    ),
    changed as (
        update cfg.config_entries as e
        set value = w.value, is_secret = w.secret, description = w.description, updated_at = now()
        from wanted as w
        where e.automation_id = apply_content.automation_id and e.section_id = w.section_id and e.key = w.key
            and (
                e.is_secret <> w.secret
                or e.description <> w.description
                or (not w.secret and (e.value is distinct from w.value or e.value::text <> w.value::text))
                or (
                    w.secret and w.value is not null
                    and (select es.value::text from cfg.entry_secrets as es where es.id = e.id)
                    is distinct from w.value::text
                )
            )
        returning w.section, e.key, e.is_secret
    ),
    created as (
        insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret, description)
        select apply_content.org_id, apply_content.automation_id, w.section_id, w.key, w.value, w.secret, w.description
        from wanted as w
        where not exists (select 1 from live as l where l.section_id = w.section_id and l.key = w.key)
        returning section_id, key, is_secret
    )
    select coalesce(json_agg(
        json_build_object('section', c.section, 'key', c.key, 'change', c.change, 'secret', c.secret)
        order by c.rank, c.section, c.key
    )::jsonb, '[]'::jsonb)
    into changes
    from (
        select 1, g.section, g.key, 'removed', g.is_secret from gone as g
        union all
        select 2, c.section, c.key, 'changed', c.is_secret from changed as c
        union all
        select 3, w.section, c.key, 'added', c.is_secret
        from created as c join wanted as w on w.section_id = c.section_id and w.key = c.key
    ) as c (rank, section, key, change, secret);

    -- Now empty: their entries went above.
    delete from cfg.config_sections as s
    where s.automation_id = apply_content.automation_id
        -- A hashed subplan, evaluated once (a per-row `applied -> 'sections' ? name` copies
        -- the sections object for each row).
        and s.name not in (select jsonb_object_keys(applied -> 'sections'));
end
$$;
revoke execute on function cfg_private.apply_content(uuid, uuid, jsonb)
from public, anon, authenticated, service_role;

-- Points environment_id at a version and records how. Returns the previous version.
-- security definer: deployments are written only by the versioning RPCs.
create or replace function cfg_private.deploy(
    target cfg.config_versions,
    environment_id uuid,
    source text,
    from_environment_id uuid default null,
    request_id uuid default null,
    reason text default null
)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    actor record := cfg_private.current_actor();
    previous integer;
begin
    -- One statement: the CTEs read the deployment as it was before the upsert.
    with was as (
        select d.version
        from cfg.deployments as d
        where d.automation_id = target.automation_id and d.environment_id = deploy.environment_id
    ),
    moved as (
        insert into cfg.deployments as d (
            org_id, automation_id, environment_id, version, version_id, deployed_by, deployed_by_email
        )
        values (
            target.org_id, target.automation_id, deploy.environment_id, target.version, target.id,
            actor.actor_id, coalesce(actor.actor_email, actor.actor_role)
        )
        on conflict on constraint deployments_automation_environment_key do update
            set version = excluded.version, version_id = excluded.version_id,
                deployed_by = excluded.deployed_by, deployed_by_email = excluded.deployed_by_email,
                deployed_at = now()
    )
    insert into cfg.deployment_history (
        org_id, automation_id, environment_id, version, version_id, previous_version, source,
        from_environment_id, request_id, reason, actor_id, actor_email
    )
    values (
        target.org_id, target.automation_id, deploy.environment_id, target.version, target.id,
        (select w.version from was as w), deploy.source, deploy.from_environment_id, deploy.request_id,
        deploy.reason, actor.actor_id, coalesce(actor.actor_email, actor.actor_role)
    )
    returning previous_version into previous;
    return previous;
end
$$;
revoke execute on function cfg_private.deploy(cfg.config_versions, uuid, text, uuid, uuid, text)
from public, anon, authenticated, service_role;

-- Serialises the numbering of one automation's versions until the transaction ends.
-- The first key is a constant naming cfgctl's class of advisory locks; the second the automation.
create or replace function cfg_private.lock_version_numbers(automation_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
    perform pg_advisory_xact_lock(-1394087491, hashtext(automation_id::text));
end
$$;
revoke execute on function cfg_private.lock_version_numbers(uuid) from public, anon, authenticated, service_role;

-- Records content (complete: secret values included) as a new version unless it
-- equals the latest one, deploys it to the first environment and appends
-- config.saved (or config.rolled_back). Without content, the live tables are read
-- (direct writes); without changes, they are worked out from the latest version.
-- Version numbers are handed out under a per-automation advisory lock taken here,
-- after the caller's row writes: saves (which also hold the automation row) and direct
-- writes versioned at commit (which hold their rows, not the automation) take it at the
-- same point, so neither waits for the other while holding what the other needs.
-- security definer: it reads secret values and writes versions, which API roles cannot.
create or replace function cfg_private.record_version(
    automation_id uuid, org_id uuid, message text, kind text,
    restored_from integer default null, content jsonb default null, changes jsonb default null
)
returns jsonb
language plpgsql
security definer
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    complete jsonb;
    snapshot jsonb;
    hash text;
    actor record := cfg_private.current_actor();
    latest cfg.config_versions;
    created cfg.config_versions;
    first_env uuid;
begin
    perform cfg_private.lock_version_numbers(record_version.automation_id);
    -- Read after the lock: the previous holder's commit is visible now.
    complete := coalesce(content, cfg_private.live_content(record_version.automation_id));
    snapshot := cfg_private.content_snapshot(record_version.automation_id, complete);
    hash := encode(sha256(convert_to(snapshot::text, 'UTF8')), 'hex');
    select * into latest
    from cfg.config_versions as v
    where v.automation_id = record_version.automation_id
    order by v.version desc
    limit 1;
    if latest.id is not null and latest.content_hash = hash then
        return jsonb_build_object(
            'automation_id', automation_id, 'version', latest.version, 'version_id', latest.id,
            'parent_version', latest.parent_version, 'content_hash', hash, 'created', false
        );
    end if;

    insert into cfg.config_versions (
        org_id, automation_id, version, parent_version, content, content_hash, message, kind,
        restored_from, author_id, author_email, author_role, changes
    )
    values (
        record_version.org_id, record_version.automation_id, coalesce(latest.version, 0) + 1, latest.version,
        snapshot, hash, coalesce(record_version.message, ''), record_version.kind, record_version.restored_from,
        actor.actor_id, actor.actor_email, actor.actor_role,
        coalesce(
            record_version.changes,
            cfg_private.changed_keys(coalesce(latest.content, '{"sections": {}}'::jsonb), snapshot)
        )
    )
    returning * into created;

    insert into cfg_private.version_secrets (version_id, org_id, section, key, value)
    select created.id, created.org_id, s.key, e.key, e.value -> 'value'
    from jsonb_each(complete -> 'sections') as s,
        jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
    where (e.value -> 'secret') = 'true'::jsonb and e.value ? 'value';

    -- A save lands in the first environment of the pipeline (dev).
    select env.id into first_env
    from cfg.environments as env
    where env.org_id = record_version.org_id
    order by env.position
    limit 1;
    if first_env is not null then
        perform cfg_private.deploy(created, first_env, kind);
    end if;

    perform cfg_private.emit_event(
        created.org_id,
        case when kind = 'rollback' then 'config.rolled_back' else 'config.saved' end,
        'config_version', created.id, created.automation_id,
        jsonb_build_object(
            'version', created.version, 'version_id', created.id, 'parent_version', created.parent_version,
            'kind', created.kind, 'restored_from', created.restored_from, 'message', created.message,
            'content_hash', created.content_hash,
            -- Keys only: never a value, so never a secret.
            'changes', created.changes
        ),
        first_env
    );
    return jsonb_build_object(
        'automation_id', automation_id, 'version', created.version, 'version_id', created.id,
        'parent_version', created.parent_version, 'content_hash', hash, 'created', true
    );
end
$$;
revoke execute on function cfg_private.record_version(uuid, uuid, text, text, integer, jsonb, jsonb)
from public, anon, authenticated, service_role;

-- Writes content (validated) to the live tables and records it as a version: the
-- one path of save_config and rollback. The caller checked the role and holds the lock.
create or replace function cfg_private.write_version(
    target cfg.automations, content jsonb, message text, kind text, restored_from integer default null
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    written record;
    result jsonb;
begin
    select * into written from cfg_private.apply_content(target.id, target.org_id, content);
    result := cfg_private.record_version(
        target.id, target.org_id, message, kind, restored_from, written.applied, written.changes
    );
    perform set_config('cfgctl.versioned_write', 'off', true);
    delete from cfg_private.transaction_marks as m
    where m.txid = txid_current() and m.mark = 'versioned_write' and m.subject_id = target.id;
    return result;
end
$$;
revoke execute on function cfg_private.write_version(cfg.automations, jsonb, text, text, integer)
from public, anon, authenticated, service_role;

-- The current version number of an automation (0 before its first version).
create or replace function cfg_private.current_version(automation_id uuid)
returns cfg.config_versions
language plpgsql stable
set search_path = ''
as $$
declare
    found cfg.config_versions;
begin
    select v.* into found
    from cfg.config_versions as v
    where v.automation_id = current_version.automation_id
    order by v.version desc
    limit 1;
    return found;
end
$$;
revoke execute on function cfg_private.current_version(uuid) from public, anon;
grant execute on function cfg_private.current_version(uuid) to authenticated, service_role;

-- PT409 unless expected_version is the automation's current version. The detail
-- is what a conflict dialog needs: the current version, who saved it and when, and
-- the keys changed since expected_version.
create or replace function cfg_private.require_current_version(automation_id uuid, expected_version integer)
returns void
language plpgsql
set search_path = ''
as $$
declare
    head cfg.config_versions := cfg_private.current_version(automation_id);
    base jsonb;
begin
    if expected_version is null or expected_version < 0 then
        raise exception 'expected_version is required: the version your edit started from (0 before the first)'
            using errcode = 'PT422',
                  detail = jsonb_build_object('field', 'expected_version', 'value', expected_version)::text;
    end if;
    if coalesce(head.version, 0) = expected_version then
        return;
    end if;
    if expected_version = 0 then
        base := '{"sections": {}}'::jsonb;
    else
        select v.content into base
        from cfg.config_versions as v
        where v.automation_id = require_current_version.automation_id and v.version = expected_version;
    end if;
    raise exception 'version conflict: you edited version %, but the current version is % (saved by % at %)',
        expected_version, coalesce(head.version, 0), coalesce(head.author_email, head.author_role, 'nobody'),
        head.created_at
        using errcode = 'PT409',
              detail = jsonb_build_object(
                  'automation_id', automation_id,
                  'expected_version', expected_version,
                  'current_version', coalesce(head.version, 0),
                  'current_version_id', head.id,
                  'author_id', head.author_id,
                  'author_email', coalesce(head.author_email, head.author_role),
                  'saved_at', head.created_at,
                  'message', head.message,
                  'changed_keys', case when base is not null then cfg_private.changed_keys(base, head.content) end
              )::text,
              hint = 'Reload, or merge your changes with cfg.merge_config(base_version, theirs_version, mine).';
end
$$;
revoke execute on function cfg_private.require_current_version(uuid, integer) from public, anon;
grant execute on function cfg_private.require_current_version(uuid, integer) to authenticated, service_role;

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

create or replace function cfg.save_config(
    automation_id uuid, expected_version integer, content jsonb, message text default ''
)
returns jsonb
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.save_config(automation_id, expected_version, content, message);
end
$$;
revoke execute on function cfg.save_config(uuid, integer, jsonb, text) from public, anon;
grant execute on function cfg.save_config(uuid, integer, jsonb, text) to authenticated, service_role;

-- Creates a new version whose content equals version to_version (history stays
-- append-only), deploys it to dev and appends config.rolled_back. Pass
-- expected_version to make it fail with PT409 if someone saved meanwhile.
-- security definer: it restores secret values kept in cfg_private; editors only
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
    content := cfg_private.version_content_with_secrets(restored.id);
    perform cfg_private.require_valid_content(content);
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

-- A version's content with its secret values put back, ready for apply_content.
-- security definer: reads cfg_private.version_secrets; never granted to API roles.
create or replace function cfg_private.version_content_with_secrets(version_id uuid)
returns jsonb
language sql stable security definer
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
    select jsonb_build_object('sections', coalesce(jsonb_object_agg(
        s.key,
        (s.value - 'entries') || jsonb_build_object('entries', coalesce((
            select jsonb_object_agg(
                e.key,
                case
                    when (e.value -> 'secret') = 'true'::jsonb then (e.value - 'digest') || coalesce((
                        select jsonb_build_object('value', vs.value)
                        from cfg_private.version_secrets as vs
                        where vs.version_id = version_content_with_secrets.version_id
                            and vs.section = s.key and vs.key = e.key
                    ), '{}'::jsonb)
                    else e.value
                end
            )
            from jsonb_each(s.value -> 'entries') as e
        ), '{}'::jsonb))
    ), '{}'::jsonb))
    from cfg.config_versions as v, jsonb_each(v.content -> 'sections') as s
    where v.id = version_content_with_secrets.version_id
$$;
revoke execute on function cfg_private.version_content_with_secrets(uuid)
from public, anon, authenticated, service_role;

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
create or replace function cfg.diff_versions(from_version uuid, to_version uuid)
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
    select * into a from cfg.config_versions as v where v.id = from_version;
    select * into b from cfg.config_versions as v where v.id = to_version;
    if a.id is null or b.id is null then
        raise exception 'version not found'
            using errcode = 'PT404',
                  detail = jsonb_build_object(
                      'from_version', from_version, 'to_version', to_version,
                      'missing', case when a.id is null then 'from_version' else 'to_version' end
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

-- Three-way merge of mine (content, as save_config takes it) with theirs_version,
-- both descending from base_version. Returns {"merged": content, "conflicts": [...]}
-- where a conflict is a key both sides changed differently; merged keeps mine there.
-- Save merged with expected_version = theirs' number.
-- security invoker: RLS decides which versions the caller sees, so another org's
-- version is "not found" like a missing one, before anything else is said.
create or replace function cfg.merge_config(base_version uuid, theirs_version uuid, mine jsonb)
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
    result jsonb;
begin
    select * into base from cfg.config_versions as v where v.id = base_version;
    select * into theirs from cfg.config_versions as v where v.id = theirs_version;
    if base.id is null or theirs.id is null then
        raise exception 'version not found'
            using errcode = 'PT404',
                  detail = jsonb_build_object('base_version', base_version, 'theirs_version', theirs_version)::text;
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

    with base_e as (
        select s.key as section, e.key, e.value as entry
        from jsonb_each(base.content -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
    ),
    theirs_e as (
        select s.key as section, e.key, e.value as entry
        from jsonb_each(theirs.content -> 'sections') as s, jsonb_each(s.value -> 'entries') as e
    ),
    mine_raw as (
        select s.key as section, e.key, e.value as raw
        from jsonb_each(mine -> 'sections') as s, jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
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
                else mine_snapshot -> 'sections' -> m.section -> 'entries' -> m.key
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
            (base.content -> 'sections' -> s.section) - 'entries' as b,
            (theirs.content -> 'sections' -> s.section) - 'entries' as t,
            case when mine -> 'sections' ? s.section then jsonb_build_object(
                'description', coalesce(mine -> 'sections' -> s.section ->> 'description', ''),
                'position', coalesce((mine -> 'sections' -> s.section ->> 'position')::integer, 0)
            ) end as m
        from (
            select jsonb_object_keys(base.content -> 'sections') as section
            union
            select jsonb_object_keys(theirs.content -> 'sections')
            union
            select jsonb_object_keys(mine -> 'sections')
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
        'base_version', base.version,
        'theirs_version', theirs.version,
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
    into result;
    return result;
end
$$;
revoke execute on function cfg.merge_config(uuid, uuid, jsonb) from public, anon;
grant execute on function cfg.merge_config(uuid, uuid, jsonb) to authenticated, service_role;

-- =============================================================================
-- Direct writes: inserts, updates and deletes on config_sections, config_entries
-- and entry_secrets made outside save_config (editors through PostgREST, the
-- service role, DBAs) are versioned too. A deferred trigger records one version
-- per automation and transaction at commit (none when nothing changed, e.g. after
-- save_config already recorded it). They are not optimistically locked.
-- =============================================================================

-- security definer: writes versions, which API roles cannot.
-- It takes no lock on the automation: a save holding that lock may be waiting for
-- this transaction's rows (see record_version for the one lock both paths take).
create or replace function cfg_private.version_direct_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    row_data jsonb := case when tg_op = 'DELETE' then to_jsonb(old) else to_jsonb(new) end;
    target uuid;
    org uuid;
begin
    if tg_table_name = 'entry_secrets' then
        select e.automation_id into target from cfg.config_entries as e where e.id = (row_data ->> 'id')::uuid;
    else
        target := (row_data ->> 'automation_id')::uuid;
    end if;
    if target is null then
        return null;
    end if;
    -- Once per automation and transaction: the first row's call versions them all.
    insert into cfg_private.transaction_marks (mark, subject_id)
    values ('direct_versioned', target)
    on conflict do nothing;
    if not found then
        return null;
    end if;
    select a.org_id into org from cfg.automations as a where a.id = target;
    if org is null then
        -- The automation was deleted in this transaction.
        return null;
    end if;
    perform cfg_private.record_version(target, org, 'direct edit', 'direct');
    return null;
end
$$;
revoke execute on function cfg_private.version_direct_write() from public, anon, authenticated, service_role;

-- The versioned-write flag (cfgctl.versioned_write) lets the row triggers' WHEN
-- clauses skip rows that save_config/rollback version themselves; a setting is what a
-- WHEN clause can read cheaply. Any client can set it, so before each statement on a
-- table those clauses guard, the flag is switched off unless this transaction holds
-- the mark only apply_content writes (cfg_private.transaction_marks). Cascaded deletes
-- are statements too, so they are audited whatever the client set.
create or replace function cfg_private.guard_versioned_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not exists (
        select 1 from cfg_private.transaction_marks as m
        where m.txid = txid_current() and m.mark = 'versioned_write'
    ) then
        perform set_config('cfgctl.versioned_write', 'off', true);
    end if;
    return null;
end
$$;
revoke execute on function cfg_private.guard_versioned_write() from public, anon, authenticated, service_role;

-- Every table with a trigger that reads the flag (tests/test_write_path_hardening.py
-- checks none is missed).
do $guard$
declare
    guarded regclass;
begin
    foreach guarded in array array[
        'cfg.config_sections', 'cfg.config_entries', 'cfg.entry_secrets', 'cfg.deployments',
        'cfg.deployment_history'
    ]::regclass [] loop
        execute format(
            'create or replace trigger guard_versioned_write before insert or update or delete on %s '
            'for each statement when (current_setting(''cfgctl.versioned_write'', true) = ''on'') '
            'execute function cfg_private.guard_versioned_write()',
            guarded
        );
    end loop;
end
$guard$;

-- Marks of finished transactions are never read again (pg_cron, hourly).
create or replace function cfg_private.purge_transaction_marks()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    purged integer;
begin
    delete from cfg_private.transaction_marks as m
    where m.txid < txid_snapshot_xmin(txid_current_snapshot());
    get diagnostics purged = row_count;
    return purged;
end
$$;
revoke execute on function cfg_private.purge_transaction_marks() from public, anon, authenticated;
grant execute on function cfg_private.purge_transaction_marks() to service_role;

drop trigger if exists version_direct_write on cfg.config_sections;
create constraint trigger version_direct_write after insert or update or delete on cfg.config_sections
deferrable initially deferred
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.version_direct_write();
drop trigger if exists version_direct_write on cfg.config_entries;
create constraint trigger version_direct_write after insert or update or delete on cfg.config_entries
deferrable initially deferred
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.version_direct_write();
drop trigger if exists version_direct_write on cfg.entry_secrets;
create constraint trigger version_direct_write after insert or update or delete on cfg.entry_secrets
deferrable initially deferred
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.version_direct_write();

-- =============================================================================
-- Row stamping, immutability and audit of the versioning tables
-- =============================================================================

create or replace function cfg_private.forbid_version_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception 'config versions are immutable; roll back to create a new one'
        using errcode = 'PT403',
              detail = jsonb_build_object('version_id', old.id, 'version', old.version)::text;
end
$$;
revoke execute on function cfg_private.forbid_version_change() from public, anon, authenticated, service_role;

create or replace trigger immutable before update on cfg.config_versions
for each row execute function cfg_private.forbid_version_change();

create or replace trigger touch_row before insert or update on cfg.config_versions
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg.deployments
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg.deployment_history
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg.promotion_requests
for each row execute function cfg_private.touch_row();
create or replace trigger touch_row before insert or update on cfg_private.version_secrets
for each row execute function cfg_private.touch_row();

-- The version row's audit entry is the audit record of a save, whose section and
-- entry writes are not audited row by row: who, when, which version and the keys it
-- changed. Its snapshot stays in the (immutable) version row, not copied into the log.
create or replace trigger audit after insert or update or delete on cfg.config_versions
for each row execute function cfg_private.audit_row('-content');
create or replace trigger audit after insert or update or delete on cfg.deployments
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.audit_row();
create or replace trigger audit after insert or update or delete on cfg.deployment_history
for each row when (
    current_setting('cfgctl.versioned_write', true) is distinct from 'on'
    or current_user in ('anon', 'authenticated', 'service_role')
)
execute function cfg_private.audit_row();
create or replace trigger audit after insert or update or delete on cfg.promotion_requests
for each row execute function cfg_private.audit_row();
