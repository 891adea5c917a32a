-- One Vault secret per save. The secret values a save writes go into one Vault secret
-- holding a JSON object {member: value}; each entry, and each version that captured
-- its value, keeps that Vault id and its member. A save of ten secrets encrypts and
-- stores once, not ten times. A Vault secret that holds one value (member null) still
-- serves as before: values written one at a time (direct writes, external imports) and
-- every secret written before this migration.
alter table cfg.entry_secrets add column member text;
alter table cfg_private.version_secrets add column member text;
comment on column cfg.entry_secrets.member is
'The value''s key inside its Vault secret (a save''s values share one); null: the Vault secret is the value.';
comment on column cfg_private.version_secrets.member is
'The value''s key inside its Vault secret (as cfg.entry_secrets.member).';

-- Return types that now carry the member (the function files create the new ones).
drop function if exists cfg_private.secret_entries(uuid);
drop function if exists cfg_private.vault_sync_secrets(uuid []);
drop function if exists cfg_private.claim_secret_bindings(integer, interval);
drop function if exists cfg_private.binding_wanted_secret(cfg.secret_bindings);

-- Whether a member is still held is looked up by Vault id and member.
drop index if exists cfg.entry_secrets_secret_idx;
drop index if exists cfg_private.version_secrets_secret_idx;
create index entry_secrets_secret_member_idx on cfg.entry_secrets (secret_id, member);
create index version_secrets_secret_member_idx on cfg_private.version_secrets (secret_id, member);
