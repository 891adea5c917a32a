-- =============================================================================
-- Schedules, the tick: pg_cron calls cfg_private.run_schedules() (every minute with
-- pg_cron 1.4, every 10 seconds with 1.5+; migrations/20261201030100_…). It claims
-- due occurrences (FOR UPDATE SKIP LOCKED: two ticks never take the same one; the
-- unique (schedule, due_at, phase) makes each exist once) and applies each as the
-- schedule's author: role authenticated with the author's claims, exactly as
-- PostgREST would run the author's request, so RLS, role checks, validation rules,
-- versioning and audit apply unchanged. SET ROLE needs no superuser: the tick's
-- login role (postgres, on hosted Supabase a non-superuser) is a member of
-- authenticated. Each occurrence is a subtransaction: a failure is recorded and
-- changes nothing.
-- =============================================================================

-- A random secret value in format (never stored by the schedule; it goes to Vault).
create or replace function cfg_private.random_secret(format text, length integer)
returns text
language plpgsql volatile
set search_path = ''
as $$
begin
    return case format
        when 'hex' then encode(extensions.gen_random_bytes(length), 'hex')
        when 'base64url' then rtrim(translate(encode(extensions.gen_random_bytes(length), 'base64'), E'+/\n', '-_'), '=')
        when 'uuid' then gen_random_uuid()::text
        else (
            select string_agg(substr('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', b % 62 + 1, 1), '')
            -- Bytes 248-255 would favour the first letters: drawn from 2x bytes, keeping those below 248.
            from (
                select get_byte(r.bytes, i) as b
                from (select extensions.gen_random_bytes(length * 2) as bytes) as r, generate_series(0, length * 2 - 1) as i
            ) as x
            where b < 248
        )
    end;
end
$$;
revoke execute on function cfg_private.random_secret(text, integer) from public, anon;
grant execute on function cfg_private.random_secret(text, integer) to authenticated;

-- True inside a tick applying an occurrence (the mark only the tick writes).
create or replace function cfg_private.in_scheduled_run()
returns boolean
language sql stable
security definer
set search_path = ''
as $$
    select exists (
        select 1 from cfg_private.transaction_marks as m where m.txid = txid_current() and m.mark = 'scheduled'
    )
$$;
revoke execute on function cfg_private.in_scheduled_run() from public, anon;
grant execute on function cfg_private.in_scheduled_run() to authenticated;

-- A scheduled promotion: the target moves to the version the source runs, recorded
-- with source 'scheduled'. Where the target requires approval, the schedule's approval
-- (an admin's, bound to this exact change, checked by the tick) stands for the request.
-- security definer: deployments take no writes from API roles; only inside a tick.
create or replace function cfg_private.promote_scheduled(automation_id uuid, from_env text, to_env text, message text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    plan record;
    deployment_id uuid;
begin
    if not cfg_private.in_scheduled_run() then
        raise exception 'only the schedules tick promotes this way; use cfg.promote'
            using errcode = 'PT403', detail = jsonb_build_object('automation_id', automation_id)::text;
    end if;
    select * into plan from cfg_private.promotion_plan(
        promote_scheduled.automation_id, from_env, to_env, null, message, null, true
    );
    if (plan.dst_version).id is not distinct from (plan.src_version).id then
        raise exception '% already runs version %', (plan.dst).slug, (plan.src_version).version
            using errcode = 'PT409', detail = jsonb_build_object('environment', (plan.dst).slug)::text;
    end if;
    perform cfg_private.deploy(plan.src_version, (plan.dst).id, 'scheduled', (plan.src).id);
    select d.id into deployment_id from cfg.deployments as d
    where d.automation_id = (plan.target).id and d.environment_id = (plan.dst).id;
    perform cfg_private.emit_event(
        (plan.target).org_id, 'promotion.applied', 'deployment', deployment_id, (plan.target).id,
        jsonb_build_object(
            'request_id', null, 'version', (plan.src_version).version, 'version_id', (plan.src_version).id,
            'previous_version', (plan.dst_version).version, 'from_environment', (plan.src).slug,
            'to_environment', (plan.dst).slug, 'skipped', '[]'::jsonb, 'reason', null, 'message', coalesce(message, '')
        ),
        (plan.dst).id
    );
    return jsonb_build_object(
        'environment_id', (plan.dst).id, 'version', (plan.src_version).version,
        'version_id', (plan.src_version).id, 'previous_version', (plan.dst_version).version,
        'previous_version_id', (plan.dst_version).id
    );
end
$$;
revoke execute on function cfg_private.promote_scheduled(uuid, text, text, text) from public, anon;
grant execute on function cfg_private.promote_scheduled(uuid, text, text, text) to authenticated;

-- The end of a promotion's window: to_env goes back to the version it ran before the
-- start (done: the apply's outcome), unless its deployment moved since the apply (then
-- PT409, unless force). The version is checked against to_env's rules as they are now.
-- The schedule's approval covers it (one approval, apply and revert). Recorded with
-- source 'scheduled', as a promotion.applied with no source environment.
-- security definer: deployments take no writes from API roles; only inside a tick.
create or replace function cfg_private.revert_scheduled_promotion(
    automation_id uuid, to_env text, done jsonb, force boolean, message text
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations;
    dst cfg.environments;
    now_version cfg.config_versions;
    restore cfg.config_versions;
    deployment_id uuid;
begin
    if not cfg_private.in_scheduled_run() then
        raise exception 'only the schedules tick reverts a scheduled promotion'
            using errcode = 'PT403', detail = jsonb_build_object('automation_id', automation_id)::text;
    end if;
    target := cfg_private.automation_for(revert_scheduled_promotion.automation_id, 'editor', 'reverting a promotion', true);
    dst := cfg_private.environment_by_slug(target.org_id, to_env);
    select d.id into deployment_id from cfg.deployments as d
    where d.automation_id = target.id and d.environment_id = dst.id;
    select v.* into now_version from cfg.deployments as d join cfg.config_versions as v on v.id = d.version_id
    where d.id = deployment_id;
    if not force and now_version.id is distinct from (done ->> 'version_id')::uuid then
        raise exception 'conflict: % was deployed again during the window (now version %); not restoring version %',
            dst.slug, now_version.version, done ->> 'previous_version'
            using errcode = 'PT409', detail = jsonb_build_object(
                'environment', dst.slug, 'expected', done -> 'version', 'found', now_version.version
            )::text;
    end if;
    select * into restore from cfg.config_versions as v where v.id = (done ->> 'previous_version_id')::uuid;
    if restore.id is null then
        raise exception '% ran no version before the window: there is nothing to restore', dst.slug
            using errcode = 'PT409', detail = jsonb_build_object('environment', dst.slug)::text;
    end if;
    if restore.id = now_version.id then
        return jsonb_build_object('environment_id', dst.id, 'version', restore.version, 'version_id', restore.id,
                                  'previous_version', now_version.version);
    end if;
    perform cfg_private.deploy(restore, dst.id, 'scheduled');
    perform cfg_private.emit_event(
        target.org_id, 'promotion.applied', 'deployment', deployment_id, target.id,
        jsonb_build_object(
            'request_id', null, 'version', restore.version, 'version_id', restore.id,
            'previous_version', now_version.version, 'from_environment', null, 'to_environment', dst.slug,
            'skipped', '[]'::jsonb, 'reason', 'the end of a scheduled window', 'message', coalesce(message, '')
        ),
        dst.id
    );
    return jsonb_build_object('environment_id', dst.id, 'version', restore.version, 'version_id', restore.id,
                              'previous_version', now_version.version);
end
$$;
revoke execute on function cfg_private.revert_scheduled_promotion(uuid, text, jsonb, boolean, text) from public, anon;
grant execute on function cfg_private.revert_scheduled_promotion(uuid, text, jsonb, boolean, text) to authenticated;

-- The rotation of a secret an external vault keeps (bound by reference): handed to the
-- sync service, which has the vault make the new value (functions/93_schedules_timeline.sql
-- and sync_service/workers/vaults.py). Null when the key is not bound by reference.
-- security definer: the queue is cfg_private's; only inside a tick.
create or replace function cfg_private.dispatch_rotation(s cfg.schedules, occ cfg.schedule_occurrences)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    binding cfg.secret_bindings;
begin
    if not cfg_private.in_scheduled_run() then
        raise exception 'only the schedules tick dispatches rotations'
            using errcode = 'PT403', detail = jsonb_build_object('schedule_id', s.id)::text;
    end if;
    select sb.* into binding
    from cfg.secret_bindings as sb
    join cfg.config_entries as ce on ce.id = sb.entry_id
    join cfg.config_sections as cs on cs.id = ce.section_id
    where sb.automation_id = s.automation_id and sb.mode = 'reference'
        and cs.name = s.change ->> 'section' and ce.key = s.change ->> 'key';
    if binding.id is null then
        return null;
    end if;
    insert into cfg_private.schedule_dispatches (occurrence_id, org_id, binding_id, format, length)
    values (occ.id, s.org_id, binding.id, s.change ->> 'format', (s.change ->> 'length')::integer);
    perform pg_notify('cfgctl_vault_sync', '');
    return jsonb_build_object('dispatched', true, 'binding_id', binding.id, 'ref', binding.ref,
                              'rotated', (s.change ->> 'section') || '.' || (s.change ->> 'key'));
end
$$;
revoke execute on function cfg_private.dispatch_rotation(cfg.schedules, cfg.schedule_occurrences) from public, anon;
grant execute on function cfg_private.dispatch_rotation(cfg.schedules, cfg.schedule_occurrences) to authenticated;

-- Applies (or reverts) one occurrence as the current user: the tick calls it acting as
-- the schedule's author, so it does only what the author could do through the RPCs.
-- Returns the outcome {version, version_id, before, after, …}; raises on a conflict
-- (PT409), a refused role or an invalid change (PT422), changing nothing.
create or replace function cfg_private.apply_occurrence(s cfg.schedules, occ cfg.schedule_occurrences, done jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    head jsonb := cfg.get_config(s.automation_id);
    keys jsonb;
    now_values jsonb;
    restore jsonb;
    result jsonb;
    status_now text;
begin
    if s.action = 'patch' then
        keys := cfg_private.patch_keys(s.change);
        now_values := cfg_private.key_values(head -> 'content', keys);
        if occ.phase = 'apply' then
            restore := cfg_private.patch_result(s.change);
            -- What unset removes reads as null, as a key that does not exist.
            if not s.force and now_values <> s.change -> 'before' and now_values <> restore then
                raise exception 'conflict: the keys this patch touches changed since it was scheduled'
                    using errcode = 'PT409', detail = jsonb_build_object('expected', s.change -> 'before', 'found', now_values)::text;
            end if;
            result := cfg.patch_config(s.automation_id, (head ->> 'version')::integer, s.change -> 'set',
                                       (select coalesce(jsonb_object_agg(u.key, (
                                           select coalesce(jsonb_agg(k), '[]') from jsonb_array_elements_text(u.value) as k
                                           where head -> 'content' -> 'sections' -> u.key -> 'entries' ? k
                                       )), '{}') from jsonb_each(s.change -> 'unset') as u), s.message);
            return result || jsonb_build_object('before', now_values, 'after', restore);
        end if;
        if not s.force and now_values <> done -> 'after' then
            raise exception 'conflict: the keys changed during the window; not restoring them'
                using errcode = 'PT409', detail = jsonb_build_object('expected', done -> 'after', 'found', now_values)::text;
        end if;
        -- Back to the values before the start: set those that had one, unset the others.
        restore := done -> 'before';
        result := cfg.patch_config(
            s.automation_id, (head ->> 'version')::integer,
            (select coalesce(jsonb_object_agg(x.section, x.entries), '{}') from (
                select sec.key as section, jsonb_object_agg(k.key, jsonb_build_object('value', k.value)) as entries
                from jsonb_each(restore) as sec, jsonb_each(sec.value) as k where k.value <> 'null' group by sec.key
            ) as x),
            (select coalesce(jsonb_object_agg(x.section, x.gone), '{}') from (
                select sec.key as section, jsonb_agg(k.key) as gone
                from jsonb_each(restore) as sec, jsonb_each(sec.value) as k
                where k.value = 'null' and head -> 'content' -> 'sections' -> sec.key -> 'entries' ? k.key
                group by sec.key
            ) as x),
            'revert: ' || s.message
        );
        return result || jsonb_build_object('before', now_values, 'after', restore);
    elsif s.action = 'status' then
        select a.status::text into status_now from cfg.automations as a where a.id = s.automation_id;
        if occ.phase = 'revert' and not s.force and status_now is distinct from done ->> 'after' then
            raise exception 'conflict: the status changed during the window (now %); not restoring it', status_now
                using errcode = 'PT409', detail = jsonb_build_object('expected', done -> 'after', 'found', status_now)::text;
        end if;
        restore := case when occ.phase = 'apply' then s.change -> 'status' else done -> 'before' end;
        update cfg.automations as a set status = (restore #>> '{}')::cfg.automation_status where a.id = s.automation_id;
        if not found then
            raise exception 'you may not change this automation''s status' using errcode = 'PT403';
        end if;
        return jsonb_build_object('before', status_now, 'after', restore);
    elsif s.action = 'promote' then
        if occ.phase = 'apply' then
            return cfg_private.promote_scheduled(s.automation_id, s.change ->> 'from', s.change ->> 'to', s.message);
        end if;
        return cfg_private.revert_scheduled_promotion(s.automation_id, s.change ->> 'to', done, s.force, s.message);
    elsif occ.phase = 'revert' then
        -- A window over a content or rollback: back to the version before the start,
        -- unless a version was saved since (then PT409, unless force).
        return cfg.rollback(
            s.automation_id, (done ->> 'before_version')::integer, 'revert: ' || s.message,
            case when not s.force then (done ->> 'version')::integer end
        );
    elsif s.action = 'content' then
        result := cfg.save_config(s.automation_id, (head ->> 'version')::integer, s.change -> 'content', s.message);
    elsif s.action = 'rollback' then
        result := cfg.rollback(s.automation_id, (s.change ->> 'version')::integer, nullif(s.message, ''));
    else
        -- A secret an external vault keeps is rotated there, by the sync service.
        result := cfg_private.dispatch_rotation(s, occ);
        if result is not null then
            return result;
        end if;
        result := cfg.patch_config(s.automation_id, (head ->> 'version')::integer, jsonb_build_object(
            s.change ->> 'section', jsonb_build_object(s.change ->> 'key', jsonb_build_object(
                'value', cfg_private.random_secret(s.change ->> 'format', (s.change ->> 'length')::integer), 'secret', true
            ))
        ), '{}', coalesce(nullif(s.message, ''), 'scheduled rotation'));
        return result - 'content' || jsonb_build_object('rotated', s.change ->> 'section' || '.' || (s.change ->> 'key'));
    end if;
    return result || jsonb_build_object('before_version', (head ->> 'version')::integer);
end
$$;
revoke execute on function cfg_private.apply_occurrence(cfg.schedules, cfg.schedule_occurrences, jsonb) from public, anon;
grant execute on function cfg_private.apply_occurrence(cfg.schedules, cfg.schedule_occurrences, jsonb) to authenticated;

-- Records how an occurrence ended (or that it was dispatched) and emits schedule.<status>,
-- as the schedule's author (the actor of the audit row and the event); completes a
-- schedule whose last occurrence this was. The tick and the sync service's report call it.
create or replace function cfg_private.finish_occurrence(
    s cfg.schedules, occ cfg.schedule_occurrences, status text, at timestamptz, outcome jsonb, error text
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    own_claims text := current_setting('request.jwt.claims', true);
begin
    perform set_config('request.jwt.claims', jsonb_build_object(
        'sub', s.author_id, 'email', s.author_email, 'role', 'authenticated'
    )::text, true);
    update cfg.schedule_occurrences as o set
        status = finish_occurrence.status, applied_at = at, lateness = at - o.due_at,
        outcome = finish_occurrence.outcome - 'content' - 'warnings', error = finish_occurrence.error,
        version = (finish_occurrence.outcome ->> 'version')::integer,
        version_id = (finish_occurrence.outcome ->> 'version_id')::uuid,
        environment_id = (finish_occurrence.outcome ->> 'environment_id')::uuid
    where o.id = occ.id;
    perform cfg_private.emit_event(
        occ.org_id, 'schedule.' || status, 'schedule_occurrence', occ.id, occ.automation_id,
        jsonb_build_object(
            'schedule_id', occ.schedule_id, 'occurrence_id', occ.id, 'phase', occ.phase, 'due_at', occ.due_at,
            'lateness', (at - occ.due_at)::text, 'version', outcome ->> 'version',
            'external_version', outcome ->> 'external_version', 'error', error
        ),
        (outcome ->> 'environment_id')::uuid
    );
    update cfg.schedules as x set state = 'completed'
    where x.id = s.id and x.state = 'active' and x.materialised_until = 'infinity'
        and not exists (
            select 1 from cfg.schedule_occurrences as o
            where o.schedule_id = x.id and o.status in ('pending', 'dispatched')
        );
    perform set_config('request.jwt.claims', coalesce(own_claims, ''), true);
end
$$;
revoke execute on function cfg_private.finish_occurrence(
    cfg.schedules, cfg.schedule_occurrences, text, timestamptz, jsonb, text
) from public, anon, authenticated, service_role;

-- The tick: applies the occurrences due at "now" (the clock; tests pass their own),
-- at most batch of them, oldest first, each exactly once. Missed ones (more than two
-- minutes late: the database was down) follow the schedule's policy: the latest runs
-- once if at most max_lateness late, the others are skipped; recorded either way.
-- Not security definer (SET ROLE is refused there): run by pg_cron as the owner.
create or replace function cfg_private.run_schedules(now timestamptz default now(), batch integer default 1000)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    occ cfg.schedule_occurrences;
    s cfg.schedules;
    done jsonb;
    outcome jsonb;
    problem text;
    author_role cfg.org_role;
    env cfg.environments;
    own_role text := current_setting('role');
    own_claims text := current_setting('request.jwt.claims', true);
    counts jsonb := '{"applied": 0, "failed": 0, "skipped": 0}';
    result text;
begin
    for occ in
        -- In the order of the partial index on pending rows: nothing due reads nothing.
        select o.* from cfg.schedule_occurrences as o
        where o.status = 'pending' and o.due_at <= run_schedules.now
            and exists (select 1 from cfg.schedules as x where x.id = o.schedule_id and x.state = 'active')
        order by o.due_at, o.phase
        limit batch
        for update of o skip locked
    loop
        select * into s from cfg.schedules as x where x.id = occ.schedule_id;
        select o.outcome into done from cfg.schedule_occurrences as o where o.id = occ.apply_id;
        problem := null;
        result := 'skipped';
        outcome := null;
        if run_schedules.now - occ.due_at > interval '2 minutes' and s.missed = 'skip' then
            problem := 'missed while cfgctl was down; this schedule skips missed runs';
        elsif run_schedules.now - occ.due_at > s.max_lateness + interval '2 minutes' then
            problem := format('missed by more than its max_lateness (%s)', s.max_lateness);
        elsif exists (
            select 1 from cfg.schedule_occurrences as o
            where o.schedule_id = occ.schedule_id and o.phase = occ.phase and o.status = 'pending'
                and o.due_at > occ.due_at and o.due_at <= run_schedules.now
        ) then
            problem := 'missed; a later run of this schedule is due too and runs instead';
        elsif occ.phase = 'revert' and (select o.status from cfg.schedule_occurrences as o where o.id = occ.apply_id) <> 'applied' then
            problem := 'nothing to revert: the start of this window did not apply';
        else
            result := 'failed';
            env := cfg_private.schedule_environment(s);
            select m.role into author_role from cfg.org_members as m where m.org_id = s.org_id and m.user_id = s.author_id;
            if coalesce(author_role < 'editor', true) then
                problem := format('the author %s is no longer an editor of this organisation (now: %s)',
                                  coalesce(s.author_email, s.author_id::text), coalesce(author_role::text, 'not a member'));
            elsif env.requires_approval and s.approved_hash is distinct from s.change_hash then
                problem := format('not approved: %s requires an admin''s approval of this exact change', env.slug);
            end if;
        end if;
        if problem is null then
            begin
                insert into cfg_private.transaction_marks (mark, subject_id) values ('scheduled', s.automation_id)
                on conflict do nothing;
                perform set_config('request.jwt.claims', jsonb_build_object(
                    'sub', s.author_id, 'email', s.author_email, 'role', 'authenticated', 'aud', 'authenticated'
                )::text, true);
                perform set_config('role', 'authenticated', true);
                outcome := cfg_private.apply_occurrence(s, occ, done);
                perform set_config('role', own_role, true);
                delete from cfg_private.transaction_marks as m where m.txid = txid_current() and m.mark = 'scheduled';
                result := case when outcome ? 'dispatched' then 'dispatched' else 'applied' end;
            exception when others then
                -- The subtransaction is gone, and with it the role, claims and mark.
                problem := sqlerrm;
                outcome := jsonb_build_object('sqlstate', sqlstate);
            end;
        end if;
        perform set_config('request.jwt.claims', coalesce(own_claims, ''), true);
        perform cfg_private.finish_occurrence(s, occ, result, run_schedules.now, outcome, problem);
        counts := jsonb_set(counts, array[result], to_jsonb(coalesce((counts ->> result)::integer, 0) + 1));
    end loop;
    return counts;
end
$$;
revoke execute on function cfg_private.run_schedules(timestamptz, integer) from public, anon, authenticated, service_role;
