-- =============================================================================
-- Hardening of the write path (issue 8): what a transaction may skip is recorded
-- where only definer code can write it, and secret tokens are per automation.
-- =============================================================================

-- Facts about the running transaction that only cfgctl's definer functions assert:
--   'versioned_write'  save_config/rollback are writing this automation's rows and
--                      version them themselves (the per-row audit, touch_row and
--                      direct-write versioning skip those rows);
--   'direct_versioned' this automation's direct writes were versioned at commit;
--   'audit_retention'  purge_audit_log is deleting expired audit rows.
-- A client can set any setting (set_config) but cannot write here, so none of these
-- can be forged. Unlogged: the rows only matter while their transaction runs.
create unlogged table cfg_private.transaction_marks (
    txid bigint not null default txid_current(),
    mark text not null,
    -- The automation a mark is about; the nil uuid for a mark about the transaction.
    subject_id uuid not null default '00000000-0000-0000-0000-000000000000',
    created_at timestamptz not null default now(),
    primary key (txid, mark, subject_id),
    constraint transaction_marks_mark_known check (
        mark in ('versioned_write', 'direct_versioned', 'audit_retention')
    )
);
alter table cfg_private.transaction_marks enable row level security;
revoke all on cfg_private.transaction_marks from public, anon, authenticated, service_role;

-- Marks of finished transactions are never read again: the cleanup runs hourly.
do $cron$
begin
    if current_database() = current_setting('cron.database_name', true) then
        perform cron.schedule(
            'cfgctl-transaction-marks', '41 * * * *',
            'select cfg_private.purge_transaction_marks()'
        );
    end if;
end
$cron$;

-- Secret tokens in version snapshots were HMAC(one key, value): equal secrets gave
-- equal tokens in every org, and a viewer could test guesses by saving candidates
-- in an org of their own. A token now also binds the automation:
-- HMAC(key, automation_id || ':' || value), which only that automation's editors
-- (who may read its secrets anyway) can produce. Existing snapshots are re-tokened
-- from the values each version captured; the same formula as
-- cfg_private.secret_token(), written out here because migrations run before the
-- function files. A secret whose value was not captured gets a random token.
alter table cfg.config_versions disable trigger user;
with retokened as (
    select
        v.id,
        jsonb_build_object('sections', coalesce(jsonb_object_agg(
            s.key,
            (s.value - 'entries') || jsonb_build_object('entries', coalesce((
                select jsonb_object_agg(
                    e.key,
                    case when (e.value -> 'secret') = 'true'::jsonb then e.value || jsonb_build_object(
                        'digest', coalesce(
                            (
                                select encode(extensions.hmac(
                                    convert_to(v.automation_id::text || ':' || vs.value::text, 'UTF8'),
                                    k.key, 'sha256'
                                ), 'hex')
                                from cfg_private.version_secrets as vs, cfg_private.digest_keys as k
                                where vs.version_id = v.id and vs.section = s.key and vs.key = e.key
                            ),
                            encode(extensions.gen_random_bytes(32), 'hex')
                        )
                    ) else e.value end
                )
                from jsonb_each(s.value -> 'entries') as e
            ), '{}'::jsonb))
        ), '{}'::jsonb)) as content
    from cfg.config_versions as v
    cross join jsonb_each(v.content -> 'sections') as s
    where jsonb_path_exists(v.content, '$.sections.*.entries.* ? (@.secret == true)')
    group by v.id
)
update cfg.config_versions as v
set content = r.content,
    content_hash = encode(sha256(convert_to(r.content::text, 'UTF8')), 'hex')
from retokened as r
where r.id = v.id;
alter table cfg.config_versions enable trigger user;

-- Replaced: the token now needs the automation (functions/versioning.sql).
drop function if exists cfg_private.secret_digest(jsonb);
drop function if exists cfg_private.content_snapshot(jsonb);
