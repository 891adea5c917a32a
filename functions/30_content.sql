-- =============================================================================
-- The content model: snapshots and secret tokens, validation, diff and changed keys.
-- Tables: migrations/20261125200000_versioning.sql.
--
-- Content, as RPCs take and return it:
--   {"sections": {"<name>": {"description": "", "position": 0,
--       "entries": {"<key>": {"value": <json>, "secret": false, "description": ""}}}}}
-- A secret entry sent without "value" keeps the secret value it has now.
-- A version snapshot has the same shape, except that a secret entry is
--   {"secret": true, "digest": "<hmac>", "description": ""}: never its value. The
-- values themselves are kept in cfg_private.version_secrets for rollback and promotion.
-- =============================================================================

-- The live sections and entries of an automation as content, a secret as its token
-- ("digest", as in a snapshot): never decrypted. The direct-write path versions this;
-- saves version what they wrote instead.
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
            -- A secret without a stored value has neither (as when it is kept).
            || case when not e.is_secret then jsonb_build_object('value', e.value)
                when es.token is not null then jsonb_build_object('digest', es.token)
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
-- A secret entry carrying its token ("digest": a kept secret, or live content) keeps it;
-- one carrying its value gets the value's token.
-- security definer: tokens need the key in Vault. Not granted to API roles: it would
-- be an oracle to guess secrets with.
create or replace function cfg_private.content_snapshot(automation_id uuid, content jsonb)
returns jsonb
language plpgsql stable security definer
-- JIT compiling these jsonb queries costs far more than running them.
set jit = off
set search_path = ''
as $$
declare
    token_key bytea;
begin
    -- The key is read (decrypted) once, and only when a value needs a token.
    if jsonb_path_exists(content, '$.sections.*.entries.* ? (@.secret == true && exists(@.value))') then
        token_key := cfg_private.digest_key();
    end if;
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
                            'secret', true,
                            'digest', coalesce(e.value ->> 'digest', cfg_private.token_with(token_key, automation_id, e.value -> 'value')),
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

-- A version's content ready for apply_content: each secret with the Vault id, member and
-- token the version captured (restored as they are: nothing is decrypted), except
-- secrets bound by reference, which keep what the external vault holds.
-- security definer: reads cfg_private.version_secrets; never granted to API roles.
create or replace function cfg_private.restorable_content(version_id uuid)
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
                    when (e.value -> 'secret') = 'true'::jsonb then e.value || coalesce((
                        select jsonb_build_object('secret_id', vs.secret_id, 'member', vs.member)
                        from cfg_private.version_secrets as vs
                        where vs.version_id = restorable_content.version_id
                            and vs.section = s.key and vs.key = e.key
                            -- A secret bound by reference keeps its external value.
                            and not exists (
                                select 1
                                from cfg.secret_bindings as sb
                                join cfg.config_entries as ce on ce.id = sb.entry_id
                                join cfg.config_sections as cs on cs.id = ce.section_id
                                where sb.automation_id = v.automation_id and sb.mode = 'reference'
                                    and cs.name = s.key and ce.key = e.key
                            )
                    ), '{}'::jsonb)
                    else e.value
                end
            )
            from jsonb_each(s.value -> 'entries') as e
        ), '{}'::jsonb))
    ), '{}'::jsonb))
    from cfg.config_versions as v, jsonb_each(v.content -> 'sections') as s
    where v.id = restorable_content.version_id
$$;
revoke execute on function cfg_private.restorable_content(uuid)
from public, anon, authenticated, service_role;
