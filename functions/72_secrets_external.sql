-- =============================================================================
-- External vaults, the API: an org's admins add AWS Secrets Manager or HashiCorp
-- Vault backends (credentials straight into Vault) and bind secret entries to
-- secrets there, by reference or by push. The sync service does every external
-- call (73_secrets_sync.sql is its side, and the conflicts it finds). Tables:
-- migrations/20261130020000_secrets_external_vaults.sql.
-- =============================================================================

-- A backend's settings, checked per kind and normalised; PT422 names what is wrong.
-- Credentials are checked the same way, but never echoed.
create or replace function cfg_private.check_vault_backend(kind text, config jsonb, credentials jsonb)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
    allowed text [];
    required text [];
    secret_keys text [];
    problems jsonb := '[]';
    k text;
begin
    if kind is null or kind not in ('aws_sm', 'hashicorp') then
        raise exception 'kind is aws_sm (AWS Secrets Manager) or hashicorp (HashiCorp Vault KV v2)'
            using errcode = 'PT422', detail = jsonb_build_object('kind', kind)::text;
    end if;
    if jsonb_typeof(config) is distinct from 'object' or jsonb_typeof(credentials) is distinct from 'object' then
        raise exception 'config and credentials are JSON objects' using errcode = 'PT422';
    end if;
    if kind = 'aws_sm' then
        allowed := array['region', 'endpoint_url'];
        required := array['region'];
        secret_keys := array['access_key_id', 'secret_access_key'];
    else
        config := jsonb_build_object('auth', 'token', 'approle_mount', 'approle', 'verify', true) || config;
        allowed := array['address', 'namespace', 'auth', 'approle_mount', 'verify'];
        required := array['address'];
        secret_keys := case config ->> 'auth' when 'approle' then array['role_id', 'secret_id'] else array['token'] end;
        if config ->> 'auth' not in ('token', 'approle') then
            problems := problems || jsonb_build_object('field', 'config.auth', 'message', 'auth is token or approle');
        end if;
        if jsonb_typeof(config -> 'verify') <> 'boolean' then
            problems := problems || jsonb_build_object('field', 'config.verify', 'message', 'verify is true or false');
        end if;
    end if;
    foreach k in array required loop
        if not config ? k then
            problems := problems || jsonb_build_object('field', 'config.' || k, 'message', k || ' is required');
        end if;
    end loop;
    for k in select jsonb_object_keys(config) loop
        if not k = any(allowed) then
            problems := problems || jsonb_build_object(
                'field', 'config.' || k, 'message', 'unknown setting (' || array_to_string(allowed, ', ') || ')'
            );
        elsif k <> 'verify' and (jsonb_typeof(config -> k) <> 'string' or length(config ->> k) not between 1 and 512) then
            problems := problems || jsonb_build_object('field', 'config.' || k, 'message', k || ' is a string of 1 to 512 characters');
        end if;
    end loop;
    foreach k in array coalesce(nullif(config ->> 'endpoint_url', ''), config ->> 'address') || '{}'::text [] loop
        if k !~ '^https?://[^\s/?#]+(:[0-9]{1,5})?(/[^\s]*)?$' then
            problems := problems || jsonb_build_object('field', 'config', 'message', 'an address is an http(s) URL');
        end if;
    end loop;
    foreach k in array secret_keys loop
        if jsonb_typeof(credentials -> k) is distinct from 'string' or length(credentials ->> k) not between 1 and 4096 then
            problems := problems || jsonb_build_object('field', 'credentials.' || k, 'message', k || ' is required (a string)');
        end if;
    end loop;
    for k in select jsonb_object_keys(credentials) loop
        if not k = any(secret_keys || array['session_token']) then
            problems := problems || jsonb_build_object('field', 'credentials.' || k, 'message', 'unknown credential');
        end if;
    end loop;
    if problems <> '[]'::jsonb then
        raise exception 'invalid vault backend: %', problems -> 0 ->> 'message'
            using errcode = 'PT422', detail = jsonb_build_object('errors', problems)::text;
    end if;
    return config;
end
$$;
revoke execute on function cfg_private.check_vault_backend(text, jsonb, jsonb) from public, anon, authenticated, service_role;

-- A binding address, checked against its backend's kind: aws-sm://<name>[#field]
-- (a name or an ARN), vault://<mount>/<path>#<field>. The same forms as
-- sync_service/vaults.parse_ref, which the sync service uses.
create or replace function cfg_private.check_secret_ref(ref text, kind text)
returns void
language plpgsql immutable
set search_path = ''
as $$
declare
    form text := case kind
        when 'aws_sm' then '^aws-sm://[A-Za-z0-9/_+=.@:-]+(#[A-Za-z0-9_+=.@:/-]+)?$'
        when 'hashicorp' then '^vault://[A-Za-z0-9_+=.@-]+/[A-Za-z0-9_+=.@/-]+#[A-Za-z0-9_+=.@:/-]+$'
    end;
    location text := split_part(split_part(ref, '://', 2), '#', 1);
begin
    if ref is null or length(ref) > 512 or ref !~ form
        -- No '.' or '..' segments (a path that climbs out), no empty vault segments.
        or location ~ '(^|/)\.\.?(/|$)' or (kind = 'hashicorp' and location ~ '//|/$')
    then
        raise exception 'a % binding is %', kind,
            case kind when 'aws_sm' then 'aws-sm://<secret name>[#<json field>]' else 'vault://<mount>/<path>#<field>' end
            using errcode = 'PT422', detail = jsonb_build_object('ref', left(ref, 600), 'kind', kind)::text;
    end if;
end
$$;
revoke execute on function cfg_private.check_secret_ref(text, text) from public, anon, authenticated, service_role;

-- security definer: the credentials go to Vault, which API roles cannot write.
create or replace function cfg_private.add_vault_backend(
    org_id uuid, name text, kind text, config jsonb, credentials jsonb
)
returns cfg.vault_backends
language plpgsql
security definer
set search_path = ''
as $$
declare
    created cfg.vault_backends;
begin
    perform cfg_private.require_role(add_vault_backend.org_id, 'admin', 'adding a vault backend');
    config := cfg_private.check_vault_backend(kind, config, credentials);
    if exists (select 1 from cfg.vault_backends as b where b.org_id = add_vault_backend.org_id and b.name = add_vault_backend.name) then
        raise exception 'a vault backend named % exists in this organisation', name
            using errcode = 'PT409', detail = jsonb_build_object('name', name)::text;
    end if;
    insert into cfg.vault_backends (org_id, name, kind, config, credentials_secret_id, test_requested_at)
    values (
        add_vault_backend.org_id, add_vault_backend.name, kind, config,
        vault.create_secret(credentials::text, null, 'cfgctl: credentials of a vault backend of org ' || add_vault_backend.org_id),
        now()
    )
    returning * into created;
    perform pg_notify('cfgctl_vault_sync', '');
    return created;
end
$$;
revoke execute on function cfg_private.add_vault_backend(uuid, text, text, jsonb, jsonb) from public, anon;
grant execute on function cfg_private.add_vault_backend(uuid, text, text, jsonb, jsonb) to authenticated, service_role;

-- Adds a backend of kind 'aws_sm' or 'hashicorp' to org_id (admins). The sync
-- service tests it at once (see cfg.test_vault_backend). Credentials are stored in
-- Vault and never shown again.
-- security invoker: the definer half checks the caller.
create or replace function cfg.add_vault_backend(
    org_id uuid, name text, kind text, config jsonb, credentials jsonb
)
returns cfg.vault_backends
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.add_vault_backend(org_id, name, kind, config, credentials);
end
$$;
revoke execute on function cfg.add_vault_backend(uuid, text, text, jsonb, jsonb) from public, anon;
grant execute on function cfg.add_vault_backend(uuid, text, text, jsonb, jsonb) to authenticated, service_role;

-- The backend of backend_id for an admin of its org; PT404 otherwise (as for an id
-- that does not exist). security definer: it must see the row to say which.
create or replace function cfg_private.vault_backend_for(backend_id uuid, action text)
returns cfg.vault_backends
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    found cfg.vault_backends;
begin
    select * into found from cfg.vault_backends as b where b.id = backend_id;
    perform cfg_private.require_role_on(found.org_id, 'admin', action, 'vault backend', 'backend_id', backend_id);
    return found;
end
$$;
revoke execute on function cfg_private.vault_backend_for(uuid, text) from public, anon;
grant execute on function cfg_private.vault_backend_for(uuid, text) to authenticated, service_role;

-- Asks the sync service to test backend_id's credentials; it answers in
-- tested_at/test_result. Admins. security definer: API roles do not write backends.
create or replace function cfg_private.test_vault_backend(backend_id uuid)
returns cfg.vault_backends
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.vault_backends := cfg_private.vault_backend_for(backend_id, 'testing a vault backend');
begin
    update cfg.vault_backends as b set test_requested_at = clock_timestamp() where b.id = found.id
    returning * into found;
    perform pg_notify('cfgctl_vault_sync', '');
    return found;
end
$$;
revoke execute on function cfg_private.test_vault_backend(uuid) from public, anon;
grant execute on function cfg_private.test_vault_backend(uuid) to authenticated, service_role;

-- security invoker: the definer half checks the caller.
create or replace function cfg.test_vault_backend(backend_id uuid)
returns cfg.vault_backends
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.test_vault_backend(backend_id);
end
$$;
revoke execute on function cfg.test_vault_backend(uuid) from public, anon;
grant execute on function cfg.test_vault_backend(uuid) to authenticated, service_role;

-- Removes a backend no binding uses (PT409 lists how many do) and its credentials.
-- security definer: API roles do not write backends or Vault.
create or replace function cfg_private.remove_vault_backend(backend_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.vault_backends := cfg_private.vault_backend_for(backend_id, 'removing a vault backend');
    bound integer := (select count(*) from cfg.secret_bindings as sb where sb.backend_id = found.id);
begin
    if bound > 0 then
        raise exception 'vault backend % has % binding(s): unbind them first', found.name, bound
            using errcode = 'PT409', detail = jsonb_build_object('backend_id', found.id, 'bindings', bound)::text;
    end if;
    delete from cfg.vault_backends as b where b.id = found.id;
end
$$;
revoke execute on function cfg_private.remove_vault_backend(uuid) from public, anon;
grant execute on function cfg_private.remove_vault_backend(uuid) to authenticated, service_role;

-- security invoker: the definer half checks the caller.
create or replace function cfg.remove_vault_backend(backend_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
    perform cfg_private.remove_vault_backend(backend_id);
end
$$;
revoke execute on function cfg.remove_vault_backend(uuid) from public, anon;
grant execute on function cfg.remove_vault_backend(uuid) to authenticated, service_role;

-- The backends of org_id (admins). security invoker: reads under RLS.
create or replace function cfg.list_vault_backends(org_id uuid)
returns setof cfg.vault_backends
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.require_role(list_vault_backends.org_id, 'admin', 'managing vault backends');
    return query select * from cfg.vault_backends as b where b.org_id = list_vault_backends.org_id order by b.name;
end
$$;
revoke execute on function cfg.list_vault_backends(uuid) from public, anon;
grant execute on function cfg.list_vault_backends(uuid) to authenticated, service_role;

-- Binds section.key of automation_id (a secret entry) to ref in backend_id (admins).
-- mode 'reference': the value lives only there (environment_id must be null);
-- 'push': cfgctl writes it there on each save (environment_id null) or on each
-- deployment to environment_id. The sync service acts on it at once.
-- security definer: bindings take no writes from API roles (the sync state is the
-- service's, and a binding decides where secret values go).
create or replace function cfg_private.bind_secret(
    automation_id uuid, section text, key text, backend_id uuid, ref text, mode text, environment_id uuid
)
returns cfg.secret_bindings
language plpgsql
security definer
set search_path = ''
as $$
declare
    target cfg.automations := cfg_private.automation_for(bind_secret.automation_id, 'admin', 'binding a secret');
    backend cfg.vault_backends;
    bound_entry uuid;
    created cfg.secret_bindings;
begin
    select b.* into backend from cfg.vault_backends as b where b.id = bind_secret.backend_id and b.org_id = target.org_id;
    if backend.id is null then
        raise exception 'vault backend not found'
            using errcode = 'PT404', detail = jsonb_build_object('backend_id', backend_id)::text;
    end if;
    if environment_id is not null
        and not exists (select 1 from cfg.environments as e where e.id = bind_secret.environment_id and e.org_id = target.org_id)
    then
        raise exception 'environment not found'
            using errcode = 'PT404', detail = jsonb_build_object('environment_id', environment_id)::text;
    end if;
    if mode is null or mode not in ('reference', 'push') then
        raise exception 'mode is reference or push' using errcode = 'PT422', detail = jsonb_build_object('mode', mode)::text;
    end if;
    if mode = 'reference' and environment_id is not null then
        raise exception 'a reference binding holds for every environment: leave the environment out'
            using errcode = 'PT422', detail = jsonb_build_object('mode', mode, 'environment_id', environment_id)::text;
    end if;
    perform cfg_private.check_secret_ref(ref, backend.kind);
    select e.entry_id into bound_entry
    from cfg_private.secret_entries(target.id) as e
    where e.section = bind_secret.section and e.key = bind_secret.key;
    if bound_entry is null then
        raise exception '%.% is not a secret of this automation', section, key
            using errcode = 'PT404',
                  detail = jsonb_build_object('automation_id', target.id, 'section', section, 'key', key)::text;
    end if;
    if exists (
        select 1 from cfg.secret_bindings as sb
        where sb.entry_id = bound_entry
            and (sb.mode = 'reference' or bind_secret.mode = 'reference'
                 or sb.environment_id is not distinct from bind_secret.environment_id)
    ) then
        raise exception '%.% is bound there already: unbind it first', section, key
            using errcode = 'PT409',
                  detail = jsonb_build_object('automation_id', target.id, 'section', section, 'key', key)::text;
    end if;
    insert into cfg.secret_bindings (org_id, automation_id, entry_id, environment_id, backend_id, ref, mode, created_by)
    values (target.org_id, target.id, bound_entry, environment_id, backend.id, ref, mode, (select auth.uid()))
    returning * into created;
    perform pg_notify('cfgctl_vault_sync', '');
    return created;
end
$$;
revoke execute on function cfg_private.bind_secret(uuid, text, text, uuid, text, text, uuid) from public, anon;
grant execute on function cfg_private.bind_secret(uuid, text, text, uuid, text, text, uuid) to authenticated, service_role;

-- security invoker: the definer half checks the caller.
create or replace function cfg.bind_secret(
    automation_id uuid, section text, key text, backend_id uuid, ref text,
    mode text default 'reference', environment_id uuid default null
)
returns cfg.secret_bindings
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.bind_secret(automation_id, section, key, backend_id, ref, mode, environment_id);
end
$$;
revoke execute on function cfg.bind_secret(uuid, text, text, uuid, text, text, uuid) from public, anon;
grant execute on function cfg.bind_secret(uuid, text, text, uuid, text, text, uuid) to authenticated, service_role;

-- The binding of binding_id for a caller with min_role in its org; PT404 otherwise.
-- security definer: it must see the row to say which.
create or replace function cfg_private.secret_binding_for(binding_id uuid, min_role cfg.org_role, action text)
returns cfg.secret_bindings
language plpgsql stable
security definer
set search_path = ''
as $$
declare
    found cfg.secret_bindings;
begin
    select * into found from cfg.secret_bindings as sb where sb.id = binding_id;
    perform cfg_private.require_role_on(found.org_id, min_role, action, 'secret binding', 'binding_id', binding_id);
    return found;
end
$$;
revoke execute on function cfg_private.secret_binding_for(uuid, cfg.org_role, text) from public, anon;
grant execute on function cfg_private.secret_binding_for(uuid, cfg.org_role, text) to authenticated, service_role;

-- Ends a binding (admins). The external secret is left as it is. An entry that was
-- bound by reference holds no value afterwards: its next save must give one.
-- security definer: bindings take no writes from API roles.
create or replace function cfg_private.unbind_secret(binding_id uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.secret_bindings := cfg_private.secret_binding_for(binding_id, 'admin', 'unbinding a secret');
begin
    delete from cfg.secret_bindings as sb where sb.id = found.id;
end
$$;
revoke execute on function cfg_private.unbind_secret(uuid) from public, anon;
grant execute on function cfg_private.unbind_secret(uuid) to authenticated, service_role;

-- security invoker: the definer half checks the caller.
create or replace function cfg.unbind_secret(binding_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
    perform cfg_private.unbind_secret(binding_id);
end
$$;
revoke execute on function cfg.unbind_secret(uuid) from public, anon;
grant execute on function cfg.unbind_secret(uuid) to authenticated, service_role;

-- Asks the sync service to look at a binding now (editors), failed or not: it is
-- 'pending' until the answer shows in its status, last_success_at and last_error.
-- (A binding in conflict waits for an admin: cfg.resolve_secret_conflict.)
-- security definer: bindings take no writes from API roles.
create or replace function cfg_private.sync_secret_binding(binding_id uuid)
returns cfg.secret_bindings
language plpgsql
security definer
set search_path = ''
as $$
declare
    found cfg.secret_bindings := cfg_private.secret_binding_for(binding_id, 'editor', 'syncing a secret');
begin
    update cfg.secret_bindings as sb set next_check_at = now(), attempts = 0,
        status = case when sb.status = 'conflict' then sb.status else 'pending' end
    where sb.id = found.id
    returning * into found;
    perform pg_notify('cfgctl_vault_sync', '');
    return found;
end
$$;
revoke execute on function cfg_private.sync_secret_binding(uuid) from public, anon;
grant execute on function cfg_private.sync_secret_binding(uuid) to authenticated, service_role;

-- security invoker: the definer half checks the caller.
create or replace function cfg.sync_secret_binding(binding_id uuid)
returns cfg.secret_bindings
language plpgsql
set search_path = ''
as $$
begin
    return cfg_private.sync_secret_binding(binding_id);
end
$$;
revoke execute on function cfg.sync_secret_binding(uuid) from public, anon;
grant execute on function cfg.sync_secret_binding(uuid) to authenticated, service_role;

-- The bindings of automation_id with their entries and state (editors).
-- security invoker: reads under RLS.
create or replace function cfg.list_secret_bindings(automation_id uuid)
returns table (
    id uuid, section text, key text, mode text, backend text, ref text, environment text,
    fingerprint text, external_version text, status text, error_kind text, last_error text,
    last_success_at timestamptz, next_check_at timestamptz
)
language plpgsql stable
set search_path = ''
as $$
begin
    perform cfg_private.automation_for(list_secret_bindings.automation_id, 'editor', 'listing secret bindings');
    return query
    select
        sb.id, cs.name, ce.key, sb.mode, b.name, sb.ref, env.slug, sb.fingerprint, sb.external_version,
        sb.status, sb.error_kind, sb.last_error, sb.last_success_at, sb.next_check_at
    from cfg.secret_bindings as sb
    join cfg.config_entries as ce on ce.id = sb.entry_id
    join cfg.config_sections as cs on cs.id = ce.section_id
    -- Backends are admins' to read: editors see the binding without its backend's name.
    left join cfg.vault_backends as b on b.id = sb.backend_id
    left join cfg.environments as env on env.id = sb.environment_id
    where sb.automation_id = list_secret_bindings.automation_id
    order by cs.name, ce.key, env.position nulls first;
end
$$;
revoke execute on function cfg.list_secret_bindings(uuid) from public, anon;
grant execute on function cfg.list_secret_bindings(uuid) to authenticated, service_role;

select cfg_private.register_table('cfg.vault_backends', audit_arguments => '{@admin}', stamp_author => true);
-- Audited when a binding is made, changed or ended ('+': an update of these columns):
-- not each time the sync service records a check (status, versions, next_check_at),
-- every few minutes per binding.
select cfg_private.register_table(
    'cfg.secret_bindings', audit_arguments => '{@admin,+entry_id,+environment_id,+backend_id,+ref,+mode}',
    stamp_author => true
);
select cfg_private.register_table('cfg.secret_conflicts', audit_arguments => '{@admin}');
