-- =============================================================================
-- Templates, the model: placeholders (typed values), checking a template, filling it
-- with values, the versioning and events of template writes, and content in a form
-- where secrets compare by presence. Tables: migrations/20261130070000_templates.sql.
--
-- A placeholder: {"name", "type": string|number|boolean|enum|url|secret, "default",
-- "description", "required", "options" (enum only)}. In the content, an entry value
-- {"$placeholder": "<name>"} is replaced whole; "${<name>}" inside any string of a
-- value is replaced by the text (string, number and url placeholders only). A secret
-- placeholder fills a secret entry, and a template holds no secret value itself.
-- =============================================================================

-- The value v for placeholder p, of its type, or the problem with it. Numbers and
-- booleans may come as text, as a form field or `--set k=v` sends them.
create or replace function cfg_private.placeholder_value(p jsonb, v jsonb, out value jsonb, out problem text)
language plpgsql immutable
set search_path = ''
as $$
declare
    kind text := jsonb_typeof(v);
    t text := v #>> '{}';
begin
    case p ->> 'type'
        when 'string' then
            if kind = 'string' then value := v; else problem := 'must be a string'; end if;
        when 'number' then
            if kind = 'number' then
                value := v;
            elsif kind = 'string' and t ~ '^-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,3})?$' then
                value := to_jsonb(t::numeric);
            else
                problem := 'must be a number';
            end if;
        when 'boolean' then
            if kind = 'boolean' then
                value := v;
            elsif kind = 'string' and t in ('true', 'false') then
                value := to_jsonb(t::boolean);
            else
                problem := 'must be true or false';
            end if;
        when 'enum' then
            if kind = 'string' and (p -> 'options') ? t then
                value := v;
            else
                problem := 'must be one of ' || (select string_agg(o, ', ') from jsonb_array_elements_text(p -> 'options') as o);
            end if;
        when 'url' then
            if kind = 'string' and length(t) <= 2048 and t ~ '^https?://[^\s/?#@]+(?:[/?#]\S*)?$' then
                value := v;
            else
                problem := 'must be an http:// or https:// URL';
            end if;
        when 'secret' then
            if kind is not null and kind <> 'null' then value := v; else problem := 'must be a value'; end if;
        else
            problem := 'unknown placeholder type';
    end case;
end
$$;
revoke execute on function cfg_private.placeholder_value(jsonb, jsonb) from public, anon;
grant execute on function cfg_private.placeholder_value(jsonb, jsonb) to authenticated, service_role;

-- Every problem of a template, as [{path, message}], or null when it has none:
-- the placeholders' declarations, the content, and every placeholder it uses.
create or replace function cfg_private.template_problems(content jsonb, placeholders jsonb)
returns jsonb
language plpgsql immutable
set jit = off
set search_path = ''
as $$
declare
    problems jsonb := '[]';
    declared jsonb := '{}';  -- name -> placeholder
    p record;
    e record;
    used text;
    placeholder jsonb;
    problem text;
begin
    if octet_length(content::text) > 1048576 then
        return jsonb_build_array(jsonb_build_object('path', 'content', 'message', 'a template is at most 1 MiB'));
    end if;
    if jsonb_typeof(placeholders) is distinct from 'array' or jsonb_array_length(placeholders) > 100 then
        return jsonb_build_array(jsonb_build_object(
            'path', 'placeholders', 'message', 'placeholders is a JSON array of at most 100 objects'
        ));
    end if;
    for p in select x.value, x.ordinality - 1 as i from jsonb_array_elements(placeholders) with ordinality as x loop
        if jsonb_typeof(p.value) <> 'object' then
            problems := problems || jsonb_build_object('path', format('placeholders[%s]', p.i), 'message', 'must be an object');
            continue;
        end if;
        problem := (
            select 'unknown field(s): ' || string_agg(k, ', ') || ' (name, type, default, description, required, options)'
            from jsonb_object_keys(p.value) as k
            where k not in ('name', 'type', 'default', 'description', 'required', 'options')
        );
        if problem is not null then
            problems := problems || jsonb_build_object('path', format('placeholders[%s]', p.i), 'message', problem);
        end if;
        if coalesce(p.value ->> 'name', '') !~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$' then
            problems := problems || jsonb_build_object('path', format('placeholders[%s].name', p.i), 'message',
                'a name is 1-63 letters, digits and underscores, not starting with a digit');
            continue;
        end if;
        if declared ? (p.value ->> 'name') then
            problems := problems || jsonb_build_object('path', format('placeholders[%s].name', p.i), 'message',
                format('placeholder %s is declared twice', p.value ->> 'name'));
        end if;
        declared := declared || jsonb_build_object(p.value ->> 'name', p.value);
        if coalesce(p.value ->> 'type', '') not in ('string', 'number', 'boolean', 'enum', 'url', 'secret') then
            problems := problems || jsonb_build_object('path', format('placeholders[%s].type', p.i), 'message',
                'type is one of string, number, boolean, enum, url, secret');
            continue;
        end if;
        if (p.value ->> 'type' = 'enum') <> (p.value ? 'options') or (p.value ? 'options' and (
            jsonb_typeof(p.value -> 'options') <> 'array' or jsonb_array_length(p.value -> 'options') not between 1 and 100
            or jsonb_path_exists(p.value -> 'options', '$[*] ? (@.type() != "string")')
        )) then
            problems := problems || jsonb_build_object('path', format('placeholders[%s].options', p.i), 'message',
                'an enum has options, 1-100 strings; other types have none');
        end if;
        if jsonb_typeof(p.value -> 'required') not in ('boolean', 'null') then
            problems := problems || jsonb_build_object('path', format('placeholders[%s].required', p.i), 'message',
                'required is true or false');
        end if;
        if jsonb_typeof(p.value -> 'description') not in ('string', 'null') or length(p.value ->> 'description') > 1000 then
            problems := problems || jsonb_build_object('path', format('placeholders[%s].description', p.i), 'message',
                'a description is text of at most 1000 characters');
        end if;
        if p.value -> 'default' is not null and p.value -> 'default' <> 'null' then
            if p.value ->> 'type' = 'secret' then
                problem := 'a secret placeholder has no default: secret values live in Vault, not in templates';
            else
                problem := (cfg_private.placeholder_value(p.value, p.value -> 'default')).problem;
            end if;
            if problem is not null then
                problems := problems || jsonb_build_object('path', format('placeholders[%s].default', p.i), 'message', problem);
            end if;
        end if;
    end loop;
    problems := problems || coalesce((
        select jsonb_agg(c || jsonb_build_object('path', 'content' || coalesce(nullif('.' || (c ->> 'path'), '.'), '')))
        from jsonb_array_elements(cfg_private.content_problems(content)) as c
    ), '[]');
    if jsonb_typeof(content -> 'sections') is distinct from 'object' then
        return problems;
    end if;
    for e in
        select s.key as section, x.key, x.value -> 'value' as value, (x.value -> 'secret') = 'true'::jsonb as secret,
            format('content.sections.%s.entries.%s.value', s.key, x.key) as path
        from jsonb_each(content -> 'sections') as s, jsonb_each(s.value -> 'entries') as x
        where jsonb_typeof(s.value -> 'entries') = 'object' and jsonb_typeof(x.value) = 'object'
    loop
        if jsonb_typeof(e.value) = 'object' and e.value ? '$placeholder' then
            placeholder := declared -> (e.value ->> '$placeholder');
            if (select count(*) from jsonb_object_keys(e.value)) > 1 then
                problems := problems || jsonb_build_object('path', e.path, 'message',
                    '{"$placeholder": "<name>"} takes the whole value: nothing else goes with it');
            elsif placeholder is null then
                problems := problems || jsonb_build_object('path', e.path, 'message',
                    format('placeholder %s is not declared', e.value -> '$placeholder'));
            elsif e.secret <> (placeholder ->> 'type' = 'secret') then
                problems := problems || jsonb_build_object('path', e.path, 'message',
                    'a secret entry takes a placeholder of type secret, and a secret placeholder a secret entry');
            end if;
        elsif e.secret then
            problems := problems || jsonb_build_object('path', e.path, 'message',
                'a template holds no secret value: a secret entry takes a placeholder of type secret');
        end if;
        if e.value is not null and position('${' in e.value::text) > 0 then
            for used in
                select distinct m[1]
                from jsonb_path_query(e.value, 'strict $.**') as s (v),
                    regexp_matches(s.v #>> '{}', '\$\{([^}]*)\}', 'g') as m
                where jsonb_typeof(s.v) = 'string'
            loop
                if not declared ? used then
                    problems := problems || jsonb_build_object('path', e.path, 'message',
                        format('placeholder %s is not declared', to_jsonb(used)));
                elsif declared -> used ->> 'type' not in ('string', 'number', 'url') then
                    problems := problems || jsonb_build_object('path', e.path, 'message',
                        format('${%s} is a %s: only string, number and url placeholders go inside text',
                               used, declared -> used ->> 'type'));
                end if;
            end loop;
        end if;
    end loop;
    return nullif(problems, '[]');
end
$$;
revoke execute on function cfg_private.template_problems(jsonb, jsonb) from public, anon;
grant execute on function cfg_private.template_problems(jsonb, jsonb) to authenticated, service_role;

-- A template version's content filled with values ({"<name>": value}), as save_config
-- takes it. mode 'create': every value is checked (unknown names, types, required
-- ones, secrets included); 'apply': recorded values, secrets by presence, a required
-- value still missing is refused; 'drift': the same, but what is missing or no longer
-- fits is left out instead of refused. PT422 with detail.errors [{path: "values.<name>", message}].
create or replace function cfg_private.fill_template(content jsonb, placeholders jsonb, vals jsonb, mode text)
returns jsonb
language plpgsql immutable
set jit = off
set search_path = ''
as $$
declare
    errors jsonb := '[]';
    filled jsonb := '{}';
    p jsonb;
    given jsonb;
    checked record;
    t text;
begin
    vals := coalesce(vals, '{}');
    if jsonb_typeof(vals) <> 'object' then
        errors := jsonb_build_array(jsonb_build_object('path', 'values', 'message', 'values is a JSON object {"<name>": value}'));
    elsif mode = 'create' then
        errors := coalesce((
            select jsonb_agg(jsonb_build_object('path', 'values.' || k, 'message', 'not a placeholder of this template')
                             order by k)
            from jsonb_object_keys(vals) as k
            where not jsonb_path_exists(placeholders, '$[*] ? (@.name == $n)', jsonb_build_object('n', k))
        ), '[]');
    end if;
    for p in select x from jsonb_array_elements(placeholders) as x loop
        continue when p ->> 'type' = 'secret' and mode <> 'create';
        given := nullif(case when jsonb_typeof(vals) = 'object' then vals -> (p ->> 'name') end, 'null');
        given := coalesce(given, nullif(p -> 'default', 'null'));
        if given is null then
            if coalesce((p ->> 'required')::boolean, false) and mode <> 'drift' then
                errors := errors || jsonb_build_object('path', 'values.' || (p ->> 'name'), 'message',
                    'a value is required' || coalesce(': ' || nullif(p ->> 'description', ''), ''));
            end if;
            continue;
        end if;
        checked := cfg_private.placeholder_value(p, given);
        if checked.problem is not null then
            if mode <> 'drift' then
                errors := errors || jsonb_build_object('path', 'values.' || (p ->> 'name'), 'message', checked.problem);
            end if;
            continue;
        end if;
        filled := filled || jsonb_build_object(p ->> 'name', checked.value);
    end loop;
    if errors <> '[]' then
        raise exception 'invalid template values: % %', errors -> 0 ->> 'path', errors -> 0 ->> 'message'
            using errcode = 'PT422', detail = jsonb_build_object('errors', errors)::text;
    end if;
    -- On the JSON text, in one pass per placeholder: "${name}" inside strings becomes
    -- the value's text (escaped as string content; a placeholder without value: empty),
    -- then {"$placeholder": "name"} the value's JSON (jsonb prints it just so).
    t := content::text;
    if position('${' in t) > 0 then
        for p in select x from jsonb_array_elements(placeholders) as x where x ->> 'type' in ('string', 'number', 'url') loop
            given := to_jsonb(coalesce(filled ->> (p ->> 'name'), ''));
            t := replace(t, '${' || (p ->> 'name') || '}', substr(given::text, 2, length(given::text) - 2));
        end loop;
    end if;
    for p in select x from jsonb_array_elements(placeholders) as x where filled ? (x ->> 'name') loop
        t := replace(t, '{"$placeholder": ' || to_jsonb(p ->> 'name')::text || '}', (filled -> (p ->> 'name'))::text);
    end loop;
    content := t::jsonb;
    if position('{"$placeholder": ' in t) = 0 then
        return content;
    end if;
    -- Placeholders left without a value: the entry is left out, except a secret entry
    -- outside 'create', which stays there without a value (presence: as drift and merges
    -- compare it; a save keeps the value the automation has).
    return jsonb_build_object('sections', coalesce((
        select jsonb_object_agg(s.key, (s.value - 'entries') || jsonb_build_object('entries', coalesce((
            select jsonb_object_agg(e.key, case when jsonb_typeof(e.value -> 'value') = 'object'
                and e.value -> 'value' ? '$placeholder' then e.value - 'value' else e.value end)
            from jsonb_each(s.value -> 'entries') as e
            where not (jsonb_typeof(e.value -> 'value') = 'object' and e.value -> 'value' ? '$placeholder'
                       and ((e.value -> 'secret') is distinct from 'true'::jsonb or mode = 'create'))
        ), '{}')))
        from jsonb_each(content -> 'sections') as s
    ), '{}'));
end
$$;
revoke execute on function cfg_private.fill_template(jsonb, jsonb, jsonb, text) from public, anon;
grant execute on function cfg_private.fill_template(jsonb, jsonb, jsonb, text) to authenticated, service_role;

-- Content (as RPCs take it, or a snapshot) as a snapshot where a secret is only
-- there or not ({"secret": true, "description"}): what template drift and template
-- merges compare, since a template never knows a secret's value.
create or replace function cfg_private.presence_snapshot(content jsonb)
returns jsonb
language sql immutable
set jit = off
set search_path = ''
as $$
    select jsonb_build_object('sections', coalesce(jsonb_object_agg(s.key, jsonb_build_object(
        'description', coalesce(s.value ->> 'description', ''),
        'position', coalesce((s.value ->> 'position')::integer, 0),
        'entries', coalesce((
            select jsonb_object_agg(e.key, case
                when (e.value -> 'secret') = 'true'::jsonb
                    then jsonb_build_object('secret', true, 'description', coalesce(e.value ->> 'description', ''))
                else jsonb_build_object(
                    'secret', false, 'value', e.value -> 'value', 'description', coalesce(e.value ->> 'description', '')
                )
            end)
            from jsonb_each(s.value -> 'entries') as e
        ), '{}')
    )), '{}'))
    from jsonb_each(content -> 'sections') as s
$$;
revoke execute on function cfg_private.presence_snapshot(jsonb) from public, anon;
grant execute on function cfg_private.presence_snapshot(jsonb) to authenticated, service_role;

-- =============================================================================
-- Template writes: every one (an RPC or a direct one) checked, versioned, an event
-- =============================================================================

create or replace function cfg_private.check_template()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
    problems jsonb := cfg_private.template_problems(new.content, new.placeholders);
begin
    if problems is not null then
        raise exception 'invalid template: % %', problems -> 0 ->> 'path', problems -> 0 ->> 'message'
            using errcode = 'PT422', detail = jsonb_build_object('errors', problems)::text;
    end if;
    new.name := btrim(new.name);
    new.description := coalesce(new.description, '');
    new.message := coalesce(new.message, '');
    if tg_op = 'UPDATE' then
        new.version := old.version + 1;
        new.type_id := old.type_id;  -- a template stays with its type: make a new one for another
    else
        new.version := 1;
    end if;
    return new;
end
$$;
revoke execute on function cfg_private.check_template() from public, anon, authenticated, service_role;

-- security definer: template versions and the outbox take no writes from API roles.
create or replace function cfg_private.record_template_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    t cfg.templates := case when tg_op = 'DELETE' then old else new end;
begin
    if tg_op <> 'DELETE' then
        insert into cfg.template_versions (org_id, template_id, version, content, placeholders, message, created_by)
        values (t.org_id, t.id, t.version, t.content, t.placeholders, t.message, (select auth.uid()));
    end if;
    perform cfg_private.emit_event(
        t.org_id, 'template.' || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end,
        'template', t.id, null,
        jsonb_build_object('template_id', t.id, 'slug', t.slug, 'name', t.name, 'type_id', t.type_id,
                           'version', t.version, 'message', t.message)
    );
    return null;
end
$$;
revoke execute on function cfg_private.record_template_change() from public, anon, authenticated, service_role;

create or replace trigger check_template before insert or update on cfg.templates
for each row execute function cfg_private.check_template();
create or replace trigger record_template_change after insert or update or delete on cfg.templates
for each row execute function cfg_private.record_template_change();

select cfg_private.register_table('cfg.templates', stamp_author => true);
select cfg_private.register_table('cfg.template_versions');
select cfg_private.register_table('cfg.automation_origins');
