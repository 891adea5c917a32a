-- Supabase Vault (supabase/vault 0.3.x) recreated for the embedded cluster: the same
-- vault.secrets table, vault.create_secret / vault.update_secret and the
-- vault.decrypted_secrets view, by the same names, signatures, defaults, owner and grants.
-- Written after reading supabase/vault's sql/ and tests; the crypto is our own:
--   - AES-256-GCM (authenticated) from python3-cryptography through plpython3u, a random
--     12-byte nonce per encryption, the secret's id as associated data (a ciphertext copied
--     to another row does not decrypt there);
--   - the root key is $PGDATA/cfgctl_vault.key (32 bytes, mode 0600, owned by the server),
--     written by sync_service/local_stack.py when the cluster is created. SQL never sees it:
--     it is no setting, no table row and no function result, so pg_dump cannot contain it.
-- A hosted Supabase project has the real extension; this file is never applied there.

-- Like Supabase, everything belongs to supabase_admin (a superuser, as on the platform);
-- `postgres` and service_role get grants, so a non-superuser `postgres` works here too.
set role supabase_admin;

create extension if not exists plpython3u;

create schema if not exists vault;
revoke all on schema vault from public;

create table if not exists vault.secrets (
    id uuid primary key default gen_random_uuid(),
    name text,
    description text not null default '',
    -- base64 of the AES-GCM ciphertext and its tag; never plaintext
    secret text not null,
    -- unused, as in Supabase's 0.3 (one root key)
    key_id uuid,
    nonce bytea,
    created_at timestamptz not null default current_timestamp,
    updated_at timestamptz not null default current_timestamp
);
comment on table vault.secrets is
'Table with encrypted `secret` column for storing sensitive information on disk (cfgctl embedded Vault).';
-- Names are optional and unique when given.
create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null;

-- =============================================================================
-- Encryption with the root key. The two functions read the key file themselves
-- (a backend's working directory is the data directory) and keep it per session.
-- =============================================================================

create or replace function vault._crypto_aead_encrypt(message bytea, additional bytea, nonce bytea)
returns bytea
language plpython3u
strict
set search_path = ''
as $py$
import os
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "cfgctl_vault.key"
try:
    st = os.stat(KEY_FILE)
except FileNotFoundError:
    plpy.error("vault: the root key file $PGDATA/cfgctl_vault.key is missing",
               hint="`cfgctl local start` creates it for a new cluster; restore it from your backup "
                    "if secrets were encrypted with it", sqlstate="58P01")
if st.st_mode & 0o077:
    plpy.error("vault: the root key file $PGDATA/cfgctl_vault.key is readable by others than the server",
               hint="chmod 600 it", sqlstate="42501")
if SD.get("stamp") != (st.st_ino, st.st_mtime_ns):
    with open(KEY_FILE, "rb") as f:
        key = f.read()
    if len(key) != 32:
        plpy.error("vault: the root key file $PGDATA/cfgctl_vault.key does not hold 32 bytes", sqlstate="XX001")
    SD["aead"], SD["stamp"] = AESGCM(key), (st.st_ino, st.st_mtime_ns)
    del key
return SD["aead"].encrypt(nonce, message, additional)
$py$;

revoke execute on function vault._crypto_aead_encrypt(bytea, bytea, bytea)
from public, anon, authenticated, service_role;
-- Called only inside create_secret and update_secret (definer, owned by supabase_admin).

create or replace function vault._crypto_aead_decrypt(message bytea, additional bytea, nonce bytea)
returns bytea
language plpython3u
stable strict
set search_path = ''
as $py$
import json
import os
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "cfgctl_vault.key"
try:
    st = os.stat(KEY_FILE)
except FileNotFoundError:
    plpy.error("vault: the root key file $PGDATA/cfgctl_vault.key is missing",
               hint="`cfgctl local start` creates it for a new cluster; restore it from your backup "
                    "if secrets were encrypted with it", sqlstate="58P01")
if st.st_mode & 0o077:
    plpy.error("vault: the root key file $PGDATA/cfgctl_vault.key is readable by others than the server",
               hint="chmod 600 it", sqlstate="42501")
if SD.get("stamp") != (st.st_ino, st.st_mtime_ns):
    with open(KEY_FILE, "rb") as f:
        key = f.read()
    if len(key) != 32:
        plpy.error("vault: the root key file $PGDATA/cfgctl_vault.key does not hold 32 bytes", sqlstate="XX001")
    SD["aead"], SD["stamp"] = AESGCM(key), (st.st_ino, st.st_mtime_ns)
    del key
try:
    return SD["aead"].decrypt(nonce, message, additional)
except (InvalidTag, ValueError):
    # Never garbage: a changed ciphertext, nonce or id, or another key, fails the tag check.
    secret_id = additional.decode("utf-8", "replace")
    plpy.error(f"vault: secret {secret_id} cannot be decrypted: its ciphertext, nonce or id was altered, "
               "or it was encrypted with another root key",
               detail=json.dumps({"secret_id": secret_id}), sqlstate="XX001")
$py$;

revoke execute on function vault._crypto_aead_decrypt(bytea, bytea, bytea)
from public, anon, authenticated, service_role;
-- The view calls it with the privileges of whoever selects from the view, so those who may
-- read decrypted_secrets need it (Supabase grants its _crypto_aead_det_decrypt the same way).
grant execute on function vault._crypto_aead_decrypt(bytea, bytea, bytea) to postgres with grant option;
grant execute on function vault._crypto_aead_decrypt(bytea, bytea, bytea) to service_role;

-- =============================================================================
-- The API
-- =============================================================================

create or replace view vault.decrypted_secrets as
select
    s.id,
    s.name,
    s.description,
    s.secret,
    convert_from(
        vault._crypto_aead_decrypt(decode(s.secret, 'base64'), convert_to(s.id::text, 'utf8'), s.nonce), 'utf8'
    ) as decrypted_secret,
    s.key_id,
    s.nonce,
    s.created_at,
    s.updated_at
from vault.secrets as s;

create or replace function vault.create_secret(
    new_secret text,
    new_name text default null,
    new_description text default '',
    -- unused, as in Supabase
    new_key_id uuid default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    secret_id uuid := gen_random_uuid();
    secret_nonce bytea := extensions.gen_random_bytes(12);
begin
    -- One insert of the ciphertext: the plaintext never reaches a heap tuple or the WAL
    -- (Supabase's version inserts the plaintext first, then updates it).
    insert into vault.secrets (id, name, description, secret, nonce)
    values (
        secret_id, new_name, new_description,
        encode(vault._crypto_aead_encrypt(convert_to(new_secret, 'utf8'), convert_to(secret_id::text, 'utf8'),
                                          secret_nonce), 'base64'),
        secret_nonce
    );
    return secret_id;
end
$$;

revoke execute on function vault.create_secret(text, text, text, uuid) from public, anon, authenticated, service_role;
grant execute on function vault.create_secret(text, text, text, uuid) to postgres with grant option;
grant execute on function vault.create_secret(text, text, text, uuid) to service_role;

create or replace function vault.update_secret(
    secret_id uuid,
    new_secret text default null,
    new_name text default null,
    new_description text default null,
    -- unused, as in Supabase
    new_key_id uuid default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    -- A fresh nonce for each new value: GCM must never reuse one under the same key.
    fresh_nonce bytea := extensions.gen_random_bytes(12);
begin
    -- As in Supabase: null arguments keep what is there; an unknown id changes nothing.
    update vault.secrets as s
    set
        secret = case
            when new_secret is null then s.secret
            else encode(vault._crypto_aead_encrypt(convert_to(new_secret, 'utf8'), convert_to(s.id::text, 'utf8'),
                                                   fresh_nonce), 'base64')
        end,
        nonce = case when new_secret is null then s.nonce else fresh_nonce end,
        name = coalesce(new_name, s.name),
        description = coalesce(new_description, s.description),
        updated_at = now()
    where s.id = secret_id;
end
$$;

revoke execute on function vault.update_secret(uuid, text, text, text, uuid)
from public, anon, authenticated, service_role;
grant execute on function vault.update_secret(uuid, text, text, text, uuid) to postgres with grant option;
grant execute on function vault.update_secret(uuid, text, text, text, uuid) to service_role;

-- =============================================================================
-- Supabase's grants: the project's `postgres` (with grant option) and service_role;
-- never anon or authenticated.
-- =============================================================================

revoke all on vault.secrets, vault.decrypted_secrets from public, anon, authenticated, service_role;
grant usage on schema vault to postgres with grant option;
grant select, delete, truncate, references on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant usage on schema vault to service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;

reset role;
