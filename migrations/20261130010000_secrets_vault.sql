-- =============================================================================
-- Secrets at rest in Vault (issue 10): entry values, the values versions captured,
-- and the digest key move to Vault (vault.create_secret); the tables keep Vault ids.
-- A Vault secret holds one value and is never changed: a new value is a new secret,
-- so a version that captured an id keeps its value without a copy, and a secret is
-- deleted once nothing refers to it (cfg_private.forget_unused_secrets).
-- =============================================================================

-- Entries: the current value's Vault id, and its token (the HMAC a version snapshot
-- shows), so a save can tell a changed secret from an unchanged one without
-- decrypting anything.
alter table cfg.entry_secrets
add column secret_id uuid,
add column token text;

alter table cfg_private.version_secrets
add column secret_id uuid;

alter table cfg_private.digest_keys
add column secret_id uuid;

-- Webhook signing secrets (the current one and the previous one during rotation).
alter table cfg_private.webhook_secrets
add column secret_id uuid;

-- Move the plaintext. Triggers off: this is a storage change, not an edit (no
-- versions, no audit rows, no events).
alter table cfg.entry_secrets disable trigger user;
alter table cfg_private.version_secrets disable trigger user;
alter table cfg_private.digest_keys disable trigger user;
alter table cfg_private.webhook_secrets disable trigger user;
do $move$
declare
    digest_key bytea := (select k.key from cfg_private.digest_keys as k);
begin
    update cfg_private.digest_keys
    set secret_id = vault.create_secret(encode(key, 'hex'), null, 'cfgctl: the key of secret tokens');
    -- Expired ones are of no use: they go.
    delete from cfg_private.webhook_secrets as w where w.expires_at <= now();
    update cfg_private.webhook_secrets as w
    set secret_id = vault.create_secret(w.secret, null, 'cfgctl: a signing secret of webhook endpoint ' || w.endpoint_id);

    -- One Vault secret per automation and distinct value: entries and the versions
    -- that captured the same value share it.
    create temporary table moved_secrets (
        automation_id uuid, value text, secret_id uuid, primary key (automation_id, value)
    ) on commit drop;
    insert into moved_secrets (automation_id, value)
    select e.automation_id, s.value::text
    from cfg.entry_secrets as s join cfg.config_entries as e on e.id = s.id
    union
    select v.automation_id, vs.value::text
    from cfg_private.version_secrets as vs join cfg.config_versions as v on v.id = vs.version_id;
    update moved_secrets
    set secret_id = vault.create_secret(value, null, 'cfgctl: a config secret of automation ' || automation_id);

    update cfg.entry_secrets as s
    set secret_id = m.secret_id,
        -- cfg_private.secret_token's formula, written out: functions load after migrations.
        token = encode(extensions.hmac(
            convert_to(e.automation_id::text || ':' || s.value::text, 'UTF8'), digest_key, 'sha256'
        ), 'hex')
    from cfg.config_entries as e, moved_secrets as m
    where e.id = s.id and m.automation_id = e.automation_id and m.value = s.value::text;

    update cfg_private.version_secrets as vs
    set secret_id = m.secret_id
    from cfg.config_versions as v, moved_secrets as m
    where v.id = vs.version_id and m.automation_id = v.automation_id and m.value = vs.value::text;
end
$move$;
alter table cfg.entry_secrets enable trigger user;
alter table cfg_private.version_secrets enable trigger user;
alter table cfg_private.digest_keys enable trigger user;
alter table cfg_private.webhook_secrets enable trigger user;

alter table cfg.entry_secrets
drop column value,
alter column secret_id set not null,
alter column token set not null;
alter table cfg_private.version_secrets
drop column value,
alter column secret_id set not null;
alter table cfg_private.digest_keys
drop column key,
alter column secret_id set not null;
alter table cfg_private.webhook_secrets
drop column secret,
alter column secret_id set not null;

-- The dispatcher gets Vault ids with its claims and the secrets themselves from
-- cfg_private.webhook_signing_secrets (cached by id: a Vault secret never changes).
drop function if exists cfg_private.claim_webhook_deliveries(text, integer, interval);
-- Rollback restores the Vault ids versions captured (cfg_private.restorable_content).
drop function if exists cfg_private.version_content_with_secrets(uuid);

-- Finding whether anything still refers to a Vault secret.
create index entry_secrets_secret_idx on cfg.entry_secrets (secret_id);
create index version_secrets_secret_idx on cfg_private.version_secrets (secret_id);
create index webhook_secrets_secret_idx on cfg_private.webhook_secrets (secret_id);

-- Entry secrets are written only by cfgctl's definer code now (the divert trigger
-- on config_entries): an API role that could set secret_id could point it at another
-- org's Vault secret. Editors still read the rows (a Vault id and the token their
-- versions show); values are revealed by cfg.reveal_secret, which checks and audits.
revoke insert, update, delete on cfg.entry_secrets from authenticated, service_role;
drop policy if exists "editors create secret values" on cfg.entry_secrets;
drop policy if exists "editors update secret values" on cfg.entry_secrets;
drop policy if exists "editors delete secret values" on cfg.entry_secrets;
drop policy if exists "editors read secret values" on cfg.entry_secrets;

-- Rotation policy per secret: rotate every so often, or by a date. value_set_at is
-- when the current value was written; a daily job emits secret.rotation_due for
-- secrets past due (cfg_private.flag_due_secret_rotations).
alter table cfg.entry_secrets
add column value_set_at timestamptz not null default now(),
add column rotate_every interval,
add column expires_at timestamptz,
-- A rotation period is at least a day: the check runs daily.
add constraint entry_secrets_rotate_every_a_day_or_more check (rotate_every >= interval '1 day');
create index entry_secrets_rotation_idx on cfg.entry_secrets (org_id)
where rotate_every is not null or expires_at is not null;

do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        perform cron.schedule(
            'cfgctl-secret-rotation-due', '17 6 * * *', 'select cfg_private.flag_due_secret_rotations()'
        );
    end if;
end
$cron$;

-- Who may reveal secret values: editors and admins (the default), or admins only.
alter table cfg.orgs
add column secret_reveal_role cfg.org_role not null default 'editor';
alter table cfg.orgs
add constraint orgs_secret_reveal_role_editor_or_admin check (secret_reveal_role in ('editor', 'admin'));

-- A reveal is audited: who read which entry's value of which version, and when.
alter table cfg.audit_log drop constraint audit_log_operation_known;
alter table cfg.audit_log add constraint audit_log_operation_known
check (operation in ('INSERT', 'UPDATE', 'DELETE', 'REVEAL'));

insert into cfg_private.event_types (type, description) values
('secret.revealed', 'A secret value was revealed to a member (who, which entry, which version)'),
('secret.rotation_due', 'A secret is past its rotation date (rotate_every or expires_at)')
on conflict (type) do nothing;

-- The plaintext is gone from the live rows; rewriting the tables drops the dead
-- tuples that still hold it (VACUUM cannot run in a transaction: the migration
-- runner runs what follows the marker after the migration commits).
-- cfgctl: after commit
vacuum full cfg.entry_secrets;
vacuum full cfg_private.version_secrets;
vacuum full cfg_private.digest_keys;
vacuum full cfg_private.webhook_secrets;
