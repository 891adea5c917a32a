-- =============================================================================
-- Writing: apply content to the live tables, record a version, deploy it.
-- =============================================================================

-- Makes the live sections and entries equal to content (validated). Only rows that
-- change are written, so realtime carries the real changes. A secret entry comes with
-- its value, with nothing (keep the value it has), or, from a rollback, with the Vault
-- id and token its version captured. Returns the content as applied (each secret with
-- its token, "digest") and the
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
    -- Only read (decrypted) when a secret value is sent: it tells changed secrets.
    token_key bytea;
begin
    applied := content;
    -- Each secret value sent is replaced by its token ("digest") here, once: the token
    -- tells whether the secret changed and stands for it in the snapshot, and the
    -- plaintext stays in `content`, read only to store it in Vault below.
    if jsonb_path_exists(content, '$.sections.*.entries.* ? (@.secret == true && exists(@.value))') then
        token_key := cfg_private.digest_key();
        -- One pass that rebuilds the sections (a jsonb_set per secret copied the whole
        -- content each time). The content is valid: sections and entries are objects.
        applied := jsonb_set(content, '{sections}', coalesce((
            select jsonb_object_agg(s.key, case when s.value ? 'entries' then jsonb_set(s.value, '{entries}', coalesce((
                select jsonb_object_agg(e.key, case
                    when (e.value -> 'secret') = 'true'::jsonb and e.value ? 'value' then
                        (e.value - 'value') || jsonb_build_object(
                            'digest', cfg_private.token_with(token_key, apply_content.automation_id, e.value -> 'value')
                        )
                    else e.value
                end)
                from jsonb_each(s.value -> 'entries') as e
            ), '{}'::jsonb)) else s.value end)
            from jsonb_each(content -> 'sections') as s
        ), '{}'::jsonb));
    end if;
    -- A secret entry without a value keeps the one it has, so it must be a secret
    -- already. (A save usually sends every value: the lookup is skipped then.)
    if jsonb_path_exists(content, '$.sections.*.entries.* ? (!exists(@.value) && !exists(@.secret_id))') then
        for kept in
            select s.key as section, e.key, ce.is_secret, es.token
            from jsonb_each(content -> 'sections') as s
            cross join jsonb_each(coalesce(s.value -> 'entries', '{}'::jsonb)) as e
            left join cfg.config_sections as cs
                on cs.automation_id = apply_content.automation_id and cs.name = s.key
            left join cfg.config_entries as ce on ce.section_id = cs.id and ce.key = e.key and ce.is_secret
            left join cfg.entry_secrets as es on es.id = ce.id
            where not e.value ? 'value' and not e.value ? 'secret_id'
        loop
            if kept.is_secret is null then
                problems := problems || jsonb_build_object(
                    'path', 'sections.' || kept.section || '.entries.' || kept.key || '.value',
                    'message', 'a new secret entry needs a value'
                );
            elsif kept.token is not null then
                -- Its token stands for it in the snapshot: the value stays in Vault.
                applied := jsonb_set(applied, array['sections', kept.section, 'entries', kept.key, 'digest'],
                                     to_jsonb(kept.token));
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
            coalesce(n.value ->> 'description', '') as description,
            -- A secret's token (null for a plain entry).
            n.value ->> 'digest' as token
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
        set value = case when w.secret then null else w.value end, is_secret = w.secret,
            description = w.description, updated_at = now()
        from wanted as w
        where e.automation_id = apply_content.automation_id and e.section_id = w.section_id and e.key = w.key
            and (
                e.is_secret <> w.secret
                or e.description <> w.description
                or (not w.secret and (e.value is distinct from w.value or e.value::text <> w.value::text))
                or (
                    w.secret and w.token is not null
                    and (select es.token from cfg.entry_secrets as es where es.id = e.id) is distinct from w.token
                )
            )
        returning w.section, e.key, e.is_secret
    ),
    created as (
        insert into cfg.config_entries (org_id, automation_id, section_id, key, value, is_secret, description)
        select apply_content.org_id, apply_content.automation_id, w.section_id, w.key,
            case when w.secret then null else w.value end, w.secret, w.description
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

    -- Secret values, in one statement after the entries exist, when a secret was added or
    -- changed: the new values become one Vault secret together, {entry id: value}; a
    -- restored one (rollback) gets its captured Vault id and member back; one the entry
    -- already holds (same token) writes nothing.
    if jsonb_path_exists(changes, '$[*] ? (@.secret == true && @.change != "removed")') then
        with incoming as (
            select
                ce.id, ce.org_id, content #> array['sections', cs.name, 'entries', ce.key, 'value'] as value,
                (e.value ->> 'secret_id')::uuid as secret_id, e.value ->> 'member' as member,
                e.value ->> 'digest' as token
            from cfg.config_sections as cs
            join jsonb_each(applied -> 'sections') as ws on ws.key = cs.name
            cross join jsonb_each(coalesce(ws.value -> 'entries', '{}'::jsonb)) as e
            join cfg.config_entries as ce on ce.section_id = cs.id and ce.key = e.key
            where cs.automation_id = apply_content.automation_id and ce.is_secret
                and (e.value ? 'digest' or e.value ? 'secret_id')
                and not exists (
                    select 1 from cfg.entry_secrets as s where s.id = ce.id and s.token = e.value ->> 'digest'
                )
        ),
        bundle as (
            select vault.create_secret(
                jsonb_object_agg(i.id, i.value)::text, null,
                'cfgctl: config secrets of automation ' || apply_content.automation_id
            ) as secret_id
            from incoming as i
            where i.secret_id is null
            having count(*) > 0
        )
        insert into cfg.entry_secrets as es (id, org_id, secret_id, member, token)
        select
            i.id, i.org_id, coalesce(i.secret_id, b.secret_id),
            case when i.secret_id is null then i.id::text else i.member end, i.token
        from incoming as i
        left join bundle as b on i.secret_id is null
        on conflict (id) do update
            set secret_id = excluded.secret_id, member = excluded.member, token = excluded.token,
                value_set_at = now();
    end if;

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
    -- The environment's validation rules first: what fails them does not land (PT422).
    perform cfg_private.enforce_rules(target, deploy.environment_id);
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

-- Records content (complete: secret values or their tokens) as a new version unless it
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
    scheduled boolean := exists (
        select 1 from cfg_private.transaction_marks as m where m.txid = txid_current() and m.mark = 'scheduled'
    );
begin
    -- The schedules tick marks its transaction (functions/92): a save it makes is a
    -- version of kind scheduled (a rollback stays one); both deploy with source scheduled.
    if scheduled and kind = 'save' then
        kind := 'scheduled';
    end if;
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

    -- The version keeps the Vault secrets the entries hold now (the content just
    -- applied, or the live rows): their ids, not copies of the values. (A secret bound
    -- by reference has none: its value is the external vault's.)
    insert into cfg_private.version_secrets (version_id, org_id, section, key, secret_id, member)
    select created.id, created.org_id, e.section, e.key, e.secret_id, e.member
    from cfg_private.secret_entries(record_version.automation_id) as e
    where e.secret_id is not null;

    -- A save lands in the first environment of the pipeline (dev).
    select env.id into first_env
    from cfg.environments as env
    where env.org_id = record_version.org_id
    order by env.position
    limit 1;
    if first_env is not null then
        perform cfg_private.deploy(created, first_env, case when scheduled then 'scheduled' else kind end);
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
        'parent_version', created.parent_version, 'content_hash', hash, 'created', true,
        -- What warning rules said (errors would have refused the deployment).
        'warnings', coalesce((
            select vs.warnings from cfg.validation_status as vs
            where vs.automation_id = created.automation_id and vs.environment_id = first_env
        ), '[]'::jsonb)
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
              hint = 'Reload, or merge your changes with cfg.merge_config(base_version_id, theirs_version_id, mine).';
end
$$;
revoke execute on function cfg_private.require_current_version(uuid, integer) from public, anon;
grant execute on function cfg_private.require_current_version(uuid, integer) to authenticated, service_role;
