-- =============================================================================
-- Import (issue 12, item 4): an export document (88_export.sql) into an org, the same
-- one or another. Per automation: create, update (with the diff), unchanged, skipped
-- (on_conflict 'skip') or refused (with errors [{path, message}]). A malformed document
-- is refused whole (PT422) before anything is written. Every item is written through
-- the normal save path (kind 'import'), so the type's rules run and secret values go to
-- Vault; a dry run (the default) does exactly the same writes and undoes each one.
-- =============================================================================

-- Saves content into automation_id as an import: save_config's checks and path, with
-- version kind 'import' (and deployment source 'import').
-- security definer: the version tables accept no writes from API roles; automation_for
-- checks the caller edits the automation.
create or replace function cfg_private.import_config(
    automation_id uuid, expected_version integer, content jsonb, message text
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(import_config.automation_id, 'editor', 'importing config', true);
begin
    perform cfg_private.require_valid_content(content);
    perform cfg_private.require_current_version(target.id, expected_version);
    return cfg_private.write_version(target, content, message, 'import');
end
$$;
revoke execute on function cfg_private.import_config(uuid, integer, jsonb, text) from public, anon;
grant execute on function cfg_private.import_config(uuid, integer, jsonb, text) to authenticated, service_role;

-- The errors of a refused item, [{path, message}], from what was raised: the detail's
-- "errors" where it has them (content and rule problems), else the message. A detail
-- that is not JSON (a built-in error's, which may quote the row) is never shown.
create or replace function cfg_private.import_errors(message text, detail text)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
    parsed jsonb;
begin
    begin
        parsed := detail::jsonb;
    exception when others then
        parsed := null;
    end;
    if jsonb_typeof(parsed -> 'errors') = 'array' then
        return parsed -> 'errors';
    end if;
    return jsonb_build_array(jsonb_build_object('path', coalesce(parsed ->> 'field', ''), 'message', message));
end
$$;
revoke execute on function cfg_private.import_errors(text, text) from public, anon;
grant execute on function cfg_private.import_errors(text, text) to authenticated, service_role;

-- For a dry run, which writes nothing: what the rules of type (a slug of org_id) that
-- apply in its first environment (where a save lands) say about content, raised as
-- cfg_private.enforce_rules raises it (PT422, detail {status, errors, warnings}) when
-- they find errors; else the warnings. cfg_private.validation_report reads the type
-- from an automation, which a new one does not have yet: the same query, by type.
-- security invoker: members read types and rules.
create or replace function cfg_private.import_rule_warnings(org_id uuid, type text, content jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
    found jsonb;
    first_env uuid;
begin
    select e.id into first_env from cfg.environments as e
    where e.org_id = import_rule_warnings.org_id order by e.position limit 1;
    select coalesce(jsonb_agg(jsonb_build_object(
        'severity', r.severity, 'path', f.path, 'message', f.message, 'rule_id', r.id, 'rule_name', r.name
    ) order by f.path, r.name, f.message), '[]')
    into found
    from cfg.automation_types as t
    join cfg.validation_rules as r on r.type_id = t.id
    cross join lateral cfg_private.rule_findings(r, content) as f
    where t.org_id = import_rule_warnings.org_id and t.slug = import_rule_warnings.type and r.enabled
        and (r.environment_ids is null or first_env = any(r.environment_ids));
    if jsonb_path_exists(found, '$[*] ? (@.severity == "error")') then
        raise exception 'invalid content: % validation rule error(s) in %, first: % %',
            jsonb_array_length(jsonb_path_query_array(found, '$[*] ? (@.severity == "error")')),
            (select e.slug from cfg.environments as e where e.id = first_env),
            jsonb_path_query_first(found, '$[*] ? (@.severity == "error")') ->> 'path',
            jsonb_path_query_first(found, '$[*] ? (@.severity == "error")') ->> 'message'
            using errcode = 'PT422', detail = jsonb_build_object(
                'status', 'errors', 'environment_id', first_env,
                'errors', jsonb_path_query_array(found, '$[*] ? (@.severity == "error")'),
                'warnings', jsonb_path_query_array(found, '$[*] ? (@.severity == "warning")')
            )::text;
    end if;
    return found;
end
$$;
revoke execute on function cfg_private.import_rule_warnings(uuid, text, jsonb) from public, anon;
grant execute on function cfg_private.import_rule_warnings(uuid, text, jsonb) to authenticated, service_role;

-- Imports document (an export, 88_export.sql) into org_id (editors), one automation at
-- a time, by slug, in slug order; returns {dry_run, on_conflict, org, summary, items}.
-- A new slug is created with the document's type slug (refused when org_id has no such
-- type: an admin adds types, with their rules); an existing one is updated (name,
-- description, tags, status and content; never its type). Every write is a version of
-- kind 'import' with message, through the normal save path (rules run; secret values go
-- to Vault). When an existing automation would change, on_conflict decides:
--   'overwrite'  update it;
--   'skip'       leave it (item "skipped");
--   'fail'       update it only if it has not changed since the version it is known at:
--                base_versions ->> slug when given, else the document's "version" when
--                the document comes from org_id itself (a re-import into the source
--                org), else its latest version must be an import (nobody saved it since
--                the last import into another org); otherwise refused, PT409.
-- Each item succeeds or is refused alone. A dry run (the default) writes nothing: it
-- compares, runs the rules and the conflict policy as the import would; an item that
-- carries secret values is written and undone instead (only a save can tell whether a
-- value changed without revealing it). A malformed document: PT422, nothing written.
-- security invoker: each step runs with the caller's rights.
create or replace function cfg.import_automations(
    org_id uuid, document jsonb, dry_run boolean default true, on_conflict text default 'fail',
    message text default null, base_versions jsonb default null
)
returns jsonb
language plpgsql
set jit = off
set search_path = ''
as $$
declare
    preview boolean := coalesce(dry_run, true);
    org_slug text;
    problems jsonb;
    note text;
    -- Read once, not per item (RLS costs a role lookup per statement): the org's types
    -- and the types with rules that run where a save lands. Each item comes with the
    -- automation of its slug and its latest version, read by the loop's one query.
    known record;
    source_org text := document ->> 'org';
    type_slugs text [];
    ruled_types text [];
    item jsonb;
    item_slug text;
    existing cfg.automations;
    created cfg.automations;
    current jsonb;
    prepared jsonb;
    proposed jsonb;
    saved jsonb;
    fields text [];
    expected integer;
    latest_kind text;
    result jsonb;
    results jsonb := '[]';
    state text;
    error_message text;
    error_detail text;
begin
    perform cfg_private.require_role(import_automations.org_id, 'editor', 'importing automations');
    if on_conflict is null or on_conflict not in ('skip', 'overwrite', 'fail') then
        raise exception 'on_conflict is skip, overwrite or fail, not %', coalesce(quote_literal(on_conflict), 'null')
            using errcode = 'PT422', detail = jsonb_build_object('field', 'on_conflict')::text;
    end if;
    if base_versions is not null and (jsonb_typeof(base_versions) <> 'object' or exists (
        select 1 from jsonb_each(base_versions) as b
        where jsonb_typeof(b.value) <> 'number' or (b.value #>> '{}') !~ '^[0-9]{1,9}$'
    )) then
        raise exception 'base_versions is {"<slug>": <version number>}'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'base_versions')::text;
    end if;
    if length(message) > 2000 then
        raise exception 'message is at most 2000 characters'
            using errcode = 'PT422', detail = jsonb_build_object('field', 'message')::text;
    end if;
    problems := cfg_private.import_problems(document);
    if problems is not null then
        raise exception 'invalid export document: % (%)', problems -> 0 ->> 'message', problems -> 0 ->> 'path'
            using errcode = 'PT422', detail = jsonb_build_object('errors', problems)::text;
    end if;
    select o.slug into org_slug from cfg.orgs as o where o.id = import_automations.org_id;
    note := coalesce(message, 'import from ' || coalesce(source_org, 'a file'));
    type_slugs := array(
        select t.slug from cfg.automation_types as t where t.org_id = import_automations.org_id
    );
    ruled_types := array(
        select distinct t.slug
        from cfg.automation_types as t
        join cfg.validation_rules as r on r.type_id = t.id
        where t.org_id = import_automations.org_id and r.enabled and (r.environment_ids is null or (
            select e.id from cfg.environments as e where e.org_id = import_automations.org_id
            order by e.position limit 1
        ) = any(r.environment_ids))
    );

    for known in
        select a.item, to_jsonb(x) as automation, coalesce(v.version, 0) as version, v.id as version_id, v.kind,
            coalesce(v.content, '{"sections": {}}') as snapshot
        from jsonb_array_elements(document -> 'automations') as a (item)
        left join cfg.automations as x on x.org_id = import_automations.org_id and x.slug = a.item ->> 'slug'
        left join lateral (
            select y.version, y.id, y.kind, y.content from cfg.config_versions as y
            where y.automation_id = x.id order by y.version desc limit 1
        ) as v on true
        order by a.item ->> 'slug' collate "C"
    loop
        -- Variables, not the record's fields: a jsonb variable is read in place.
        item := known.item;
        item_slug := item ->> 'slug';
        result := jsonb_build_object('slug', item_slug);
        begin
            existing := jsonb_populate_record(null::cfg.automations, known.automation);
            -- As cfg.get_config answers: a snapshot without secrets is its content already.
            current := case when existing.id is not null then jsonb_build_object(
                'version', known.version, 'version_id', known.version_id,
                'content', case when jsonb_path_exists(known.snapshot, '$.sections.*.entries.*.digest')
                    then cfg_private.snapshot_as_content(known.snapshot) else known.snapshot end
            ) end;
            prepared := cfg_private.import_content(item -> 'content', current -> 'content');
            -- Only a save can compare a secret value (by its token): such items are written.
            preview := coalesce(dry_run, true) and not jsonb_path_exists(
                prepared -> 'content', '$.sections.*.entries.* ? (@.secret == true && exists(@.value))'
            );
            if existing.id is null and preview then
                if not (item ->> 'type') = any(type_slugs) then
                    raise exception 'unknown automation type %: an admin adds types (cfg.add_automation_type)',
                        quote_literal(item ->> 'type')
                        using errcode = 'PT422', detail = jsonb_build_object('field', 'type')::text;
                end if;
                result := result || jsonb_build_object('action', 'create', 'version', 1, 'warnings', case
                    when (item ->> 'type') = any(ruled_types) then cfg_private.import_rule_warnings(
                        import_automations.org_id, item ->> 'type', prepared -> 'content'
                    ) else '[]' end);
            elsif existing.id is null then
                created := cfg.create_automation(
                    import_automations.org_id, item ->> 'name', item_slug, item ->> 'type',
                    array(select jsonb_array_elements_text(coalesce(item -> 'tags', '[]'))),
                    coalesce(item ->> 'description', '')
                );
                if coalesce(item ->> 'status', 'active') <> 'active' then
                    update cfg.automations as a set status = (item ->> 'status')::cfg.automation_status
                    where a.id = created.id;
                end if;
                saved := cfg_private.import_config(created.id, 0, prepared -> 'content', note);
                result := result || jsonb_build_object(
                    'action', 'create', 'version', saved -> 'version', 'warnings', coalesce(saved -> 'warnings', '[]')
                );
            else
                if existing.type <> item ->> 'type' then
                    raise exception 'is of type % here, % in the document: an import does not change types',
                        existing.type, item ->> 'type'
                        using errcode = 'PT422', detail = jsonb_build_object('field', 'type')::text;
                end if;
                fields := array(
                    select f from unnest(array['name', 'description', 'tags', 'status']) as f
                    where case f
                        when 'name' then existing.name is distinct from btrim(item ->> 'name')
                        when 'description' then existing.description is distinct from coalesce(item ->> 'description', '')
                        when 'tags' then array(select t from unnest(existing.tags) as t order by t)
                            is distinct from array(
                                select t from jsonb_array_elements_text(coalesce(item -> 'tags', '[]')) as t order by t
                            )
                        else existing.status::text is distinct from coalesce(item ->> 'status', 'active')
                    end
                );
                if preview then
                    -- An export is already in the stored form: equal as it is (nearly always), or normalised.
                    proposed := case when (prepared -> 'content')::text = (current -> 'content')::text
                        then prepared -> 'content' else cfg_private.presence_snapshot(prepared -> 'content') end;
                    if proposed::text <> (current -> 'content')::text then
                        result := result || jsonb_build_object(
                            'version', (current ->> 'version')::integer + 1,
                            'warnings', case when existing.type = any(ruled_types) then cfg_private.import_rule_warnings(
                                import_automations.org_id, existing.type, prepared -> 'content'
                            ) else '[]' end,
                            'diff', cfg_private.diff_contents(current -> 'content', proposed)
                        );
                    end if;
                else
                    if fields <> '{}' then
                        update cfg.automations as a
                        set name = btrim(item ->> 'name'), description = coalesce(item ->> 'description', ''),
                            tags = array(select jsonb_array_elements_text(coalesce(item -> 'tags', '[]'))),
                            status = coalesce(item ->> 'status', 'active')::cfg.automation_status
                        where a.id = existing.id;
                    end if;
                    saved := cfg_private.import_config(
                        existing.id, (current ->> 'version')::integer, prepared -> 'content', note
                    );
                    if (saved ->> 'created')::boolean then
                        result := result || jsonb_build_object(
                            'version', saved -> 'version', 'warnings', coalesce(saved -> 'warnings', '[]'),
                            -- Between the snapshots: a secret whose value changed shows (by its token).
                            'diff', cfg_private.diff_contents(
                                known.snapshot,
                                (select v.content from cfg.config_versions as v where v.id = (saved ->> 'version_id')::uuid)
                            )
                        );
                    end if;
                end if;
                if not result ? 'diff' and fields = '{}' then
                    result := result || jsonb_build_object('action', 'unchanged', 'version', current -> 'version');
                else
                    result := result || jsonb_build_object('action', 'update', 'fields', to_jsonb(fields))
                        || case when result ? 'version' then '{}'::jsonb else jsonb_build_object(
                            'version', current -> 'version', 'warnings', '[]'::jsonb,
                            'diff', cfg_private.diff_contents(current -> 'content', current -> 'content')
                        ) end;
                    if on_conflict = 'skip' then
                        result := jsonb_build_object('slug', item_slug, 'action', 'skipped', 'version', current -> 'version');
                        raise exception 'skipped' using errcode = 'PTDRY';
                    end if;
                    expected := coalesce(
                        (base_versions ->> item_slug)::integer,
                        case when source_org = org_slug then (item ->> 'version')::integer end
                    );
                    latest_kind := known.kind;
                    if on_conflict = 'fail' and (
                        expected is distinct from (current ->> 'version')::integer
                        and not (expected is null and coalesce(latest_kind, 'import') = 'import')
                    ) then
                        raise exception 'changed since version %: it is at version % (on_conflict fail)',
                            coalesce(expected::text, 'the last import'), current ->> 'version'
                            using errcode = 'PT409', detail = jsonb_build_object(
                                'field', 'version', 'expected_version', expected,
                                'current_version', (current ->> 'version')::integer
                            )::text;
                    end if;
                end if;
            end if;
            result := result || jsonb_build_object('secrets_needing_value', prepared -> 'secrets_needing_value');
            if coalesce(dry_run, true) and not preview then
                raise exception 'dry run' using errcode = 'PTDRY';
            end if;
        exception
            -- Undone on purpose (a dry run that wrote, a skip): the result stands.
            when sqlstate 'PTDRY' then null;
            when others then
                get stacked diagnostics state = returned_sqlstate, error_message = message_text,
                    error_detail = pg_exception_detail;
                if state not like 'PT%' and left(state, 2) not in ('22', '23') and state <> '42501' then
                    raise;
                end if;
                result := jsonb_build_object(
                    'slug', item_slug, 'action', 'refused', 'code', state, 'message', error_message,
                    'errors', cfg_private.import_errors(error_message, error_detail)
                );
        end;
        results := results || jsonb_build_array(result);
    end loop;

    return jsonb_build_object(
        'dry_run', coalesce(dry_run, true), 'on_conflict', on_conflict, 'org', org_slug,
        'summary', (
            select jsonb_object_agg(a.action, (
                select count(*) from jsonb_array_elements(results) as r where r ->> 'action' = a.action
            ))
            from unnest(array['create', 'update', 'unchanged', 'skipped', 'refused']) as a (action)
        ),
        'items', results
    );
end
$$;
revoke execute on function cfg.import_automations(uuid, jsonb, boolean, text, text, jsonb) from public, anon;
grant execute on function cfg.import_automations(uuid, jsonb, boolean, text, text, jsonb) to authenticated, service_role;
