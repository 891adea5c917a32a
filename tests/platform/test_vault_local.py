"""The embedded stack's Supabase Vault (supabase/local/30_vault.sql, issue 10 item 1).

Same API as supabase/vault (vault.secrets, create_secret, update_secret, decrypted_secrets),
authenticated encryption (AES-256-GCM, the secret id as associated data) under a root key
kept in $PGDATA/cfgctl_vault.key, which SQL never sees and pg_dump never contains.
"""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from sync_service import local_stack as local
from sync_service.db import ANON, SERVICE, CfgError, Identity, acting_as
from tests.support.cluster import free_port


def own_secrets(conn, where: str = "true") -> int:
    """Secrets this test made: every migrated database also holds cfgctl's own (the token key)."""
    return conn.execute(f"select count(*) as n from vault.secrets where description not like 'cfgctl:%%' "  # noqa: S608
                        f"and {where}").fetchone()["n"]


AUTHENTICATED = Identity(role="authenticated", user_id="00000000-0000-4000-8000-000000000001",
                         email="someone@example.test")
# Hosted Supabase's `postgres` is no superuser; the test cluster's is (and, as the bootstrap
# superuser, owns every catalog function, pg_read_binary_file included). This role stands in
# for hosted `postgres`: it gets exactly the privileges the shim granted `postgres` on vault's
# schema, tables and functions (copied from the catalog), and nothing else.
HOSTED_POSTGRES = "cfgctl_hosted_postgres"


def create(conn, secret, name=None, description=None) -> str:
    args = {"new_secret": secret, "new_name": name}
    if description is not None:
        args["new_description"] = description
    named = ", ".join(f"{k} => %({k})s" for k in args)
    row = conn.execute(f"select vault.create_secret({named}) as id", args).fetchone()  # noqa: S608
    conn.commit()
    return row["id"]


def decrypted(conn, secret_id) -> dict:
    return conn.execute("select * from vault.decrypted_secrets where id = %s", (secret_id,)).fetchone()


def stored(conn, secret_id) -> dict:
    return conn.execute("select * from vault.secrets where id = %s", (secret_id,)).fetchone()


def key_bytes(cluster: local.Cluster) -> bytes:
    return cluster.vault_key_file.read_bytes()


@pytest.fixture
def hosted_postgres(conn):
    if conn.execute("select 1 from pg_roles where rolname = %s", (HOSTED_POSTGRES,)).fetchone() is None:
        conn.execute(f"create role {HOSTED_POSTGRES} nologin nosuperuser noinherit")
    grants = conn.execute(
        """
        select format('grant %%s on schema %%I to %%I%%s', a.privilege_type, n.nspname, %(role)s::text,
                      case when a.is_grantable then ' with grant option' else '' end) as sql
        from pg_namespace n, aclexplode(n.nspacl) a
        where n.nspname = 'vault' and a.grantee = 'postgres'::regrole
        union all
        select format('grant %%s on table %%s to %%I%%s', a.privilege_type, c.oid::regclass, %(role)s::text,
                      case when a.is_grantable then ' with grant option' else '' end)
        from pg_class c, aclexplode(c.relacl) a
        where c.relnamespace = 'vault'::regnamespace and a.grantee = 'postgres'::regrole
        union all
        select format('grant execute on function %%s to %%I%%s', p.oid::regprocedure, %(role)s::text,
                      case when a.is_grantable then ' with grant option' else '' end)
        from pg_proc p, aclexplode(p.proacl) a
        where p.pronamespace = 'vault'::regnamespace and a.grantee = 'postgres'::regrole
        """,
        {"role": HOSTED_POSTGRES},
    ).fetchall()
    # usage; select, delete, truncate, references on the table and the view; three functions
    assert len(grants) == 1 + 2 * 4 + 3
    for grant in grants:
        conn.execute(grant["sql"])
    conn.commit()
    return HOSTED_POSTGRES


# =============================================================================
# The API, as Supabase's
# =============================================================================


def test_round_trip_create_update_and_read(conn):
    secret_id = create(conn, "s3kr3t_k3y", "a_name", "the foo key")
    row = decrypted(conn, secret_id)
    assert (row["decrypted_secret"], row["name"], row["description"]) == ("s3kr3t_k3y", "a_name", "the foo key")
    assert row["secret"] != "s3kr3t_k3y" and "s3kr3t" not in row["secret"]

    conn.execute("select vault.update_secret(%s, 'n3w_k3y', 'a_new_name', 'the bar key')", (secret_id,))
    row = decrypted(conn, secret_id)
    assert (row["decrypted_secret"], row["name"], row["description"]) == ("n3w_k3y", "a_new_name", "the bar key")
    assert row["updated_at"] >= row["created_at"]

    # Empty and non-ASCII values survive; description defaults to '' like Supabase's.
    empty = create(conn, "", "empty_secret")
    assert (decrypted(conn, empty)["decrypted_secret"], decrypted(conn, empty)["description"]) == ("", "")
    unicode = create(conn, "pässwörd ✓")
    assert decrypted(conn, unicode)["decrypted_secret"] == "pässwörd ✓"


def test_signatures_defaults_and_view_columns_match_supabase(conn):
    args = {r["proname"]: r["args"] for r in conn.execute(
        "select p.proname, pg_get_function_arguments(p.oid) as args from pg_proc p "
        "where p.pronamespace = 'vault'::regnamespace and p.proname in ('create_secret', 'update_secret')"
    ).fetchall()}
    assert args == {
        "create_secret": "new_secret text, new_name text DEFAULT NULL::text, "
                         "new_description text DEFAULT ''::text, new_key_id uuid DEFAULT NULL::uuid",
        "update_secret": "secret_id uuid, new_secret text DEFAULT NULL::text, new_name text DEFAULT NULL::text, "
                         "new_description text DEFAULT NULL::text, new_key_id uuid DEFAULT NULL::uuid",
    }
    columns = lambda rel: [r["attname"] for r in conn.execute(  # noqa: E731
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped "
        "order by attnum", (rel,)).fetchall()]
    assert columns("vault.secrets") == ["id", "name", "description", "secret", "key_id", "nonce",
                                        "created_at", "updated_at"]
    assert columns("vault.decrypted_secrets") == ["id", "name", "description", "secret", "decrypted_secret",
                                                  "key_id", "nonce", "created_at", "updated_at"]


def test_names_are_unique_and_optional(conn):
    create(conn, "one", "shared_name")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("select vault.create_secret('two', 'shared_name')")
    conn.rollback()
    other = create(conn, "three", "other_name")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("select vault.update_secret(%s, new_name => 'shared_name')", (other,))
    conn.rollback()
    # Bad input changes nothing; unnamed secrets do not collide.
    assert own_secrets(conn) == 2
    create(conn, "a")
    create(conn, "b")
    assert own_secrets(conn, "name is null") == 2


def test_a_null_secret_is_refused_and_stores_nothing(conn):
    with pytest.raises(psycopg.errors.NotNullViolation):
        conn.execute("select vault.create_secret(null, 'nothing')")
    conn.rollback()
    assert own_secrets(conn) == 0


def test_updating_name_or_description_only_keeps_the_secret(conn):
    secret_id = create(conn, "keep-me", "before", "old")
    before = stored(conn, secret_id)
    conn.execute("select vault.update_secret(%s, new_name => 'after')", (secret_id,))
    conn.execute("select vault.update_secret(%s, new_description => 'new')", (secret_id,))
    after = stored(conn, secret_id)
    assert (after["secret"], after["nonce"]) == (before["secret"], before["nonce"])
    row = decrypted(conn, secret_id)
    assert (row["decrypted_secret"], row["name"], row["description"]) == ("keep-me", "after", "new")
    # An unknown id changes nothing, as in Supabase.
    conn.execute("select vault.update_secret(gen_random_uuid(), 'x', 'y', 'z')")
    assert own_secrets(conn) == 1


def test_equal_plaintexts_give_different_ciphertexts_and_each_update_a_fresh_nonce(conn):
    a, b = create(conn, "same value"), create(conn, "same value")
    rows = [stored(conn, a), stored(conn, b)]
    assert rows[0]["secret"] != rows[1]["secret"] and rows[0]["nonce"] != rows[1]["nonce"]
    assert all(len(r["nonce"]) == 12 for r in rows)
    conn.execute("select vault.update_secret(%s, 'same value')", (a,))
    again = stored(conn, a)
    assert again["nonce"] != rows[0]["nonce"] and again["secret"] != rows[0]["secret"]
    assert decrypted(conn, a)["decrypted_secret"] == "same value"


def test_plaintext_never_reaches_a_tuple(conn):
    """create_secret inserts the ciphertext once: no tuple (dead or alive) and no WAL record
    holds the plaintext, unlike an insert of the plaintext followed by an update."""
    conn.commit()
    conn.execute("select vault.create_secret('only-ciphertext')")
    counts = conn.execute(
        "select n_tup_ins as inserted, n_tup_upd as updated from pg_stat_xact_all_tables "
        "where relid = 'vault.secrets'::regclass"
    ).fetchone()
    assert counts == {"inserted": 1, "updated": 0}


@pytest.mark.parametrize("tamper", ["flip a ciphertext byte", "change the nonce", "move to another row"])
def test_tampered_secrets_fail_to_decrypt_with_a_clear_error(conn, tamper):
    victim, other = create(conn, "victim-value"), create(conn, "other-value")
    if tamper == "flip a ciphertext byte":
        raw = bytearray(base64.b64decode(stored(conn, victim)["secret"]))
        raw[0] ^= 1
        conn.execute("update vault.secrets set secret = %s where id = %s", (base64.b64encode(raw).decode(), victim))
    elif tamper == "change the nonce":
        conn.execute("update vault.secrets set nonce = %s where id = %s", (os.urandom(12), victim))
    else:
        # The other row's ciphertext and nonce, valid under the key, but bound to the other id.
        conn.execute(
            "update vault.secrets v set secret = o.secret, nonce = o.nonce from vault.secrets o "
            "where v.id = %s and o.id = %s", (victim, other))
    conn.commit()
    with pytest.raises(psycopg.errors.DataCorrupted) as info:
        decrypted(conn, victim)
    conn.rollback()
    assert f"secret {victim} cannot be decrypted" in info.value.diag.message_primary
    assert "victim-value" not in str(info.value) and "other-value" not in str(info.value)
    assert decrypted(conn, other)["decrypted_secret"] == "other-value"


# =============================================================================
# Who may use it: Supabase's grants
# =============================================================================


@pytest.mark.parametrize("identity", [ANON, AUTHENTICATED], ids=["anon", "authenticated"])
@pytest.mark.parametrize("statement", [
    "select * from vault.secrets",
    "select * from vault.decrypted_secrets",
    "select vault.create_secret('x')",
    "select vault.update_secret(gen_random_uuid(), 'x')",
    "delete from vault.secrets",
    "select vault._crypto_aead_decrypt('\\x00', '\\x00', '\\x00')",
])
def test_api_roles_cannot_reach_the_vault(conn, identity, statement):
    create(conn, "not-for-you")
    with pytest.raises(CfgError) as info, acting_as(conn, identity) as cur:
        cur.execute(statement)
    assert info.value.code == "42501", info.value
    assert own_secrets(conn) == 1


def test_service_role_creates_updates_and_reads_secrets(conn):
    with acting_as(conn, SERVICE) as cur:
        secret_id = cur.execute("select vault.create_secret('svc-value', 'svc') as id").fetchone()["id"]
        cur.execute("select vault.update_secret(%s, 'svc-value-2')", (secret_id,))
        assert cur.execute("select decrypted_secret from vault.decrypted_secrets where id = %s",
                           (secret_id,)).fetchone() == {"decrypted_secret": "svc-value-2"}
    with pytest.raises(CfgError) as info, acting_as(conn, SERVICE) as cur:
        # Encrypting is for create_secret and update_secret only.
        cur.execute("select vault._crypto_aead_encrypt('\\x00', '\\x00', '\\x000000000000000000000000')")
    assert info.value.code == "42501"


def test_objects_belong_to_supabase_admin_with_supabases_grants(conn):
    owners = conn.execute(
        "select c.relname as name, c.relowner::regrole::text as owner from pg_class c "
        "where c.relnamespace = 'vault'::regnamespace and c.relkind in ('r', 'v') "
        "union all select p.proname, p.proowner::regrole::text from pg_proc p "
        "where p.pronamespace = 'vault'::regnamespace order by 1"
    ).fetchall()
    assert {r["owner"] for r in owners} == {"supabase_admin"} and len(owners) == 6
    acls = {r["name"]: sorted(r["acl"]) for r in conn.execute(
        "select relname as name, relacl::text[] as acl from pg_class "
        "where relnamespace = 'vault'::regnamespace and relkind in ('r', 'v')").fetchall()}
    # postgres: select, delete, truncate, references with grant option; service_role: select, delete.
    expected = ["postgres=r*d*D*x*/supabase_admin", "service_role=rd/supabase_admin",
                "supabase_admin=arwdDxt/supabase_admin"]
    assert acls == {"secrets": expected, "decrypted_secrets": expected}
    functions = {r["fn"]: sorted(r["acl"]) for r in conn.execute(
        "select oid::regprocedure::text as fn, proacl::text[] as acl from pg_proc "
        "where pronamespace = 'vault'::regnamespace").fetchall()}
    callers = ["postgres=X*/supabase_admin", "service_role=X/supabase_admin", "supabase_admin=X/supabase_admin"]
    assert functions == {
        "vault.create_secret(text,text,text,uuid)": callers,
        "vault.update_secret(uuid,text,text,text,uuid)": callers,
        "vault._crypto_aead_decrypt(bytea,bytea,bytea)": callers,
        "vault._crypto_aead_encrypt(bytea,bytea,bytea)": ["supabase_admin=X/supabase_admin"],
    }


def test_a_non_superuser_postgres_creates_and_reads_secrets_through_its_definer_functions(conn, hosted_postgres):
    """The lead's pattern: a cfg_private-style definer function owned by the migrating role
    (hosted `postgres`, no superuser) calls create_secret and reads decrypted_secrets."""
    conn.execute(f"set role {hosted_postgres}")
    secret_id = conn.execute("select vault.create_secret('hosted-value', 'hosted') as id").fetchone()["id"]
    assert decrypted(conn, secret_id)["decrypted_secret"] == "hosted-value"
    conn.execute("select vault.update_secret(%s, new_description => 'changed')", (secret_id,))
    conn.execute("reset role")
    conn.execute(
        """
        create schema if not exists vault_probe;
        create function vault_probe.store_and_read(value text) returns text
        language plpgsql security definer set search_path = '' as $$
        declare
            new_id uuid := vault.create_secret(value);
        begin
            return (select d.decrypted_secret from vault.decrypted_secrets d where d.id = new_id);
        end $$;
        revoke execute on function vault_probe.store_and_read(text) from public;
        grant usage on schema vault_probe to authenticated;
        grant execute on function vault_probe.store_and_read(text) to authenticated;
        """
    )
    conn.execute(f"alter schema vault_probe owner to {hosted_postgres}")
    conn.execute(f"alter function vault_probe.store_and_read(text) owner to {hosted_postgres}")
    conn.commit()
    with acting_as(conn, AUTHENTICATED) as cur:
        assert cur.execute("select vault_probe.store_and_read('via-definer') as v").fetchone() == {"v": "via-definer"}


# =============================================================================
# The root key: a file only the server reads
# =============================================================================


def test_the_key_file_is_32_bytes_mode_0600_owned_by_the_server(pg_cluster):
    info = pg_cluster.vault_key_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == pg_cluster.data_dir.stat().st_uid
    if os.geteuid() == 0:
        assert pwd.getpwuid(info.st_uid).pw_name == "postgres"
    assert len(key_bytes(pg_cluster)) == 32


def test_ensure_vault_key_writes_once_and_never_replaces(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cluster = local.Cluster(data_dir=data_dir, port=1)
    assert cluster.ensure_vault_key() is True
    first = cluster.vault_key_file.read_bytes()
    assert len(first) == 32 and stat.S_IMODE(cluster.vault_key_file.stat().st_mode) == 0o600
    assert cluster.ensure_vault_key() is False and cluster.vault_key_file.read_bytes() == first


def test_start_refuses_to_replace_a_lost_key_while_secrets_exist(conn, pg_cluster):
    """`cfgctl local start` writes a key for a cluster that has none (one created by an older
    cfgctl), but not over secrets encrypted with a key that went missing."""
    create(conn, "encrypted-with-the-old-key")
    moved = pg_cluster.vault_key_file.with_name("cfgctl_vault.key.moved")
    os.rename(pg_cluster.vault_key_file, moved)
    try:
        with pytest.raises(CfgError, match="cfgctl_vault.key is missing, and the secrets in "):
            pg_cluster.start()
        assert not pg_cluster.vault_key_file.exists()
    finally:
        os.rename(moved, pg_cluster.vault_key_file)
    assert pg_cluster.start() is None


def test_start_writes_a_key_for_a_cluster_without_one_and_without_secrets():
    # A cluster of its own: every migrated database holds a secret (cfgctl's token key).
    # /var/tmp: the postgres OS user must reach it when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="cfgctl-test-vault-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    cluster = local.Cluster(data_dir=base / "pg" / "data", port=free_port(), fast=True)
    cluster.init()
    cluster.start()
    try:
        original = key_bytes(cluster)
        moved = cluster.vault_key_file.with_name("cfgctl_vault.key.moved")
        os.rename(cluster.vault_key_file, moved)
        assert cluster.start() is None
        new = cluster.vault_key_file.stat()
        assert stat.S_IMODE(new.st_mode) == 0o600 and new.st_uid == cluster.data_dir.stat().st_uid
        assert len(key_bytes(cluster)) == 32 and key_bytes(cluster) != original
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def test_pg_dump_contains_neither_the_key_nor_a_plaintext(conn, db_url, pg_cluster):
    create(conn, "plaintext-that-must-not-leak", "dumped")
    dump = subprocess.run(
        [str(local.PG_BIN / "pg_dump"), "--dbname", db_url], check=True, capture_output=True
    ).stdout
    assert b"vault.secrets" in dump and b"dumped" in dump  # the row is dumped, encrypted
    key = key_bytes(pg_cluster)
    for form in (key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
                 base64.b64encode(key).rstrip(b"=")):
        assert form not in dump
    assert b"plaintext-that-must-not-leak" not in dump


@pytest.mark.parametrize("read", [
    "select pg_read_binary_file('cfgctl_vault.key')",
    "select pg_read_file('cfgctl_vault.key')",
    "select pg_read_binary_file(current_setting('data_directory') || '/cfgctl_vault.key')",
    "select * from pg_ls_dir('.')",
])
@pytest.mark.parametrize("who", ["anon", "authenticated", "service_role", "hosted postgres"])
def test_no_api_role_nor_a_non_superuser_postgres_reads_the_key_file(conn, hosted_postgres, read, who):
    conn.commit()
    if who == "hosted postgres":
        conn.execute(f"set role {hosted_postgres}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(read)
        conn.rollback()
        return
    identity = {"anon": ANON, "authenticated": AUTHENTICATED, "service_role": SERVICE}[who]
    with pytest.raises(CfgError) as info, acting_as(conn, identity) as cur:
        cur.execute(read)
    assert info.value.code == "42501"


def test_only_superusers_may_read_server_files(conn):
    """No grant opens the data directory to a non-superuser (pg_read_server_files, or
    EXECUTE on the file functions), whatever roles the cluster has."""
    readers = conn.execute(
        """
        select r.rolname, f.fn from pg_roles r
        cross join unnest(array['pg_read_file(text)', 'pg_read_file(text,bigint,bigint,boolean)',
                                'pg_read_binary_file(text)', 'pg_read_binary_file(text,bigint,bigint,boolean)',
                                'pg_ls_dir(text)', 'pg_stat_file(text)']) as f(fn)
        where not r.rolsuper and r.rolname not like 'pg\\_%%'
          and (has_function_privilege(r.oid, f.fn::regprocedure, 'execute')
               or pg_has_role(r.oid, 'pg_read_server_files', 'usage'))
        """
    ).fetchall()
    assert readers == []


def test_no_setting_shows_the_key(conn, pg_cluster):
    key = key_bytes(pg_cluster)
    settings = " ".join(r["s"] or "" for r in conn.execute(
        "select name || '=' || coalesce(setting, '') || coalesce(reset_val, '') as s from pg_settings").fetchall())
    for form in (key.hex(), base64.b64encode(key).decode()):
        assert form not in settings and form.upper() not in settings


def test_a_missing_key_is_a_clear_error_not_a_new_key(conn, db_url, pg_cluster):
    secret_id = create(conn, "needs-the-key")
    moved = pg_cluster.vault_key_file.with_name("cfgctl_vault.key.moved")
    os.rename(pg_cluster.vault_key_file, moved)
    try:
        with psycopg.connect(db_url) as fresh:  # a new session: nothing cached
            with pytest.raises(psycopg.errors.UndefinedFile) as info:
                fresh.execute("select decrypted_secret from vault.decrypted_secrets where id = %s", (secret_id,))
        assert "cfgctl_vault.key is missing" in info.value.diag.message_primary
        assert not pg_cluster.vault_key_file.exists()
    finally:
        os.rename(moved, pg_cluster.vault_key_file)
    assert decrypted(conn, secret_id)["decrypted_secret"] == "needs-the-key"


def test_a_key_file_others_can_read_is_refused(conn, db_url, pg_cluster):
    secret_id = create(conn, "guarded")
    os.chmod(pg_cluster.vault_key_file, 0o640)
    try:
        with psycopg.connect(db_url) as fresh, pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            fresh.execute("select decrypted_secret from vault.decrypted_secrets where id = %s", (secret_id,))
        assert "readable by others than the server" in info.value.diag.message_primary
    finally:
        os.chmod(pg_cluster.vault_key_file, 0o600)
    assert decrypted(conn, secret_id)["decrypted_secret"] == "guarded"
