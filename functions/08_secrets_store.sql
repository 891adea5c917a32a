-- =============================================================================
-- Secret storage: every secret value lives in Vault (vault.create_secret, read back
-- through vault.decrypted_secrets); cfgctl's tables keep Vault ids and tokens.
-- Hosted projects use Supabase Vault; the embedded stack supabase/local/30_vault.sql.
-- A Vault secret written here is never changed: a new value is a new secret, so the
-- versions that captured an id keep their value without a copy, and a secret nothing
-- refers to any more is deleted (forget_unused_secrets). A save puts all the values it
-- writes into one Vault secret, a JSON object {member: value} (one encryption, not one
-- per value); the rows name the Vault id and the member (secret_member_value).
-- Tables: migrations/20261130010000_secrets_vault.sql. The API: 70_secrets_api.sql.
-- =============================================================================

-- The key of secret tokens (an HMAC key), from Vault. Read once per snapshot or save.
-- security definer: Vault is for cfgctl's definer code only. Never granted to API roles.
create or replace function cfg_private.digest_key()
returns bytea
language plpgsql stable security definer
set search_path = ''
as $$
begin
    return (
        select decode(d.decrypted_secret, 'hex')
        from cfg_private.digest_keys as k
        join vault.decrypted_secrets as d on d.id = k.secret_id
    );
end
$$;
revoke execute on function cfg_private.digest_key() from public, anon, authenticated, service_role;

-- The token a version snapshot shows for a secret value: HMAC(key, automation_id ||
-- ':' || value). Bound to the automation, so equal secrets in other automations or
-- orgs give other tokens, and only a caller who can save in this automation (an
-- editor) can produce one to test a guess against. The same formula re-tokened old
-- snapshots in migrations/20261129090000_hardening_versioned_writes.sql.
create or replace function cfg_private.token_with(key bytea, automation_id uuid, value jsonb)
returns text
language sql immutable
set search_path = ''
as $$
    select encode(extensions.hmac(convert_to(automation_id::text || ':' || value::text, 'UTF8'), key, 'sha256'), 'hex')
$$;
revoke execute on function cfg_private.token_with(bytea, uuid, jsonb) from public, anon, authenticated, service_role;

-- security definer: the key is in Vault. Never granted to API roles (a guessing oracle).
create or replace function cfg_private.secret_token(automation_id uuid, value jsonb)
returns text
language plpgsql stable security definer
set search_path = ''
as $$
begin
    return cfg_private.token_with(cfg_private.digest_key(), automation_id, value);
end
$$;
revoke execute on function cfg_private.secret_token(uuid, jsonb) from public, anon, authenticated, service_role;

-- The secret entries of an automation: where each is, its Vault id, and its rotation
-- state (rotation_due_at: the earlier of expires_at and value_set_at + rotate_every).
-- security invoker: callers read under their own rights (list_secrets under RLS; the
-- definer functions as the owner).
create or replace function cfg_private.secret_entries(of_automation uuid)
returns table (
    entry_id uuid, org_id uuid, section text, key text, secret_id uuid, member text, value_set_at timestamptz,
    rotate_every interval, expires_at timestamptz, rotation_due_at timestamptz
)
language sql stable
set search_path = ''
as $$
    select
        ce.id, ce.org_id, cs.name, ce.key, es.secret_id, es.member, es.value_set_at, es.rotate_every, es.expires_at,
        least(es.expires_at, es.value_set_at + es.rotate_every)
    from cfg.config_entries as ce
    join cfg.config_sections as cs on cs.id = ce.section_id
    join cfg.entry_secrets as es on es.id = ce.id
    where ce.automation_id = of_automation
$$;
revoke execute on function cfg_private.secret_entries(uuid) from public, anon;
grant execute on function cfg_private.secret_entries(uuid) to authenticated, service_role;

-- Makes value the secret value of entry_id: a new Vault secret unless the entry
-- already holds this value (same token), in which case nothing is written.
-- security definer: entry_secrets and Vault take no writes from API roles. Called
-- by divert_secret_value, a trigger of a write row-level security already allowed.
create or replace function cfg_private.put_entry_secret(entry_id uuid, org_id uuid, automation_id uuid, value jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    new_token text := cfg_private.secret_token(automation_id, value);
begin
    -- As config_entries_value_max_1mib for plain values (save_config checks it earlier).
    if octet_length(value::text) > 1048576 then
        raise exception 'a secret value is at most 1 MiB'
            using errcode = '23514', constraint = 'entry_secrets_value_max_1mib',
                  detail = jsonb_build_object('entry_id', entry_id, 'bytes', octet_length(value::text))::text;
    end if;
    if exists (select 1 from cfg.entry_secrets as s where s.id = entry_id and s.token = new_token) then
        return;
    end if;
    insert into cfg.entry_secrets as s (id, org_id, secret_id, token)
    values (
        entry_id, org_id,
        vault.create_secret(value::text, null, 'cfgctl: a config secret of automation ' || automation_id),
        new_token
    )
    on conflict (id) do update
        set secret_id = excluded.secret_id, member = null, token = excluded.token, value_set_at = now();
end
$$;
revoke execute on function cfg_private.put_entry_secret(uuid, uuid, uuid, jsonb)
from public, anon, authenticated, service_role;

-- The plaintext of Vault secrets, by id (entry values are JSON text). For definer
-- code that checked the caller.
create or replace function cfg_private.secret_values(secret_ids uuid [])
returns table (secret_id uuid, value text)
language sql stable security definer
set search_path = ''
as $$
    select d.id, d.decrypted_secret
    from vault.decrypted_secrets as d
    where d.id = any(secret_ids)
$$;
revoke execute on function cfg_private.secret_values(uuid []) from public, anon, authenticated, service_role;

-- One value of a Vault secret's plaintext: the member of a save's bundle, or the whole
-- plaintext when member is null.
create or replace function cfg_private.secret_member_value(plaintext text, member text)
returns text
language sql immutable
set search_path = ''
as $$
    select case when member is null then plaintext else (plaintext::jsonb -> member)::text end
$$;
revoke execute on function cfg_private.secret_member_value(text, text) from public, anon, authenticated, service_role;

-- Deletes the Vault secrets an update or delete let go of, unless a row still refers
-- to them (an entry and the versions that captured its value share one). A save's
-- Vault secret that other rows still hold loses just the values let go of: it is
-- rewritten without them, so a removed value is gone as if it had its own.
-- One statement-level call per write.
-- security definer: Vault takes no writes from API roles.
create or replace function cfg_private.forget_unused_secrets()
returns trigger
language plpgsql
security definer
-- Index lookups whatever the statistics say: the plan is cached on the first call, often
-- while version_secrets is still small, and kept (a seq scan) as it grows.
set enable_seqscan = off
set search_path = ''
as $$
declare
    thinned record;
begin
    -- The checks stay correlated subqueries (OFFSET 0 keeps the planner from turning
    -- them into joins): an index lookup per released id, whatever it would guess about
    -- a transition table (it has no statistics). A save releases ten ids its versions
    -- still hold.
    delete from vault.secrets as v
    where v.id in (select r.secret_id from released as r)
        -- Versions first: a value an entry let go of is usually one a version keeps.
        and not exists (select 1 from cfg_private.version_secrets as vs where vs.secret_id = v.id offset 0)
        and not exists (select 1 from cfg.entry_secrets as s where s.secret_id = v.id offset 0)
        and not exists (select 1 from cfg_private.webhook_secrets as w where w.secret_id = v.id offset 0);
    -- Members no row holds any more, of Vault secrets still held (webhook_secrets has
    -- no members: read the column generically).
    for thinned in
        select r.secret_id, array_agg(r.member) as members
        from (select distinct x.secret_id, to_jsonb(x) ->> 'member' as member from released as x) as r
        where r.member is not null
            and exists (select 1 from vault.secrets as v where v.id = r.secret_id offset 0)
            and not exists (
                select 1 from cfg_private.version_secrets as vs
                where vs.secret_id = r.secret_id and vs.member = r.member offset 0
            )
            and not exists (
                select 1 from cfg.entry_secrets as s where s.secret_id = r.secret_id and s.member = r.member offset 0
            )
        group by r.secret_id
    loop
        perform vault.update_secret(thinned.secret_id, (
            select (d.decrypted_secret::jsonb - thinned.members)::text
            from vault.decrypted_secrets as d
            where d.id = thinned.secret_id
        ));
    end loop;
    return null;
end
$$;
revoke execute on function cfg_private.forget_unused_secrets() from public, anon, authenticated, service_role;

-- A trigger with transition tables has one event: one per event and table.
do $forget$
declare
    tbl regclass;
    op text;
begin
    foreach tbl in array array['cfg.entry_secrets', 'cfg_private.version_secrets', 'cfg_private.webhook_secrets']::regclass []
    loop
        foreach op in array array['update', 'delete']
        loop
            execute format('drop trigger if exists forget_unused_secrets_%s on %s', op, tbl);
            execute format(
                'create trigger forget_unused_secrets_%s after %s on %s '
                'referencing old table as released for each statement '
                'execute function cfg_private.forget_unused_secrets()',
                op, op, tbl
            );
        end loop;
    end loop;
end
$forget$;
