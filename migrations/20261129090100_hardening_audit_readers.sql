-- Audit rows of tables only admins may read are readable by admins only (issue 8):
-- editors read webhook endpoints' filters and allowlisted hosts through the log before.
-- Tables register as admin-only with the audit trigger argument '@admin'
-- (cfg_private.audit_row); the policy is in policies/audit.sql.
alter table cfg.audit_log add column readable_by cfg.org_role not null default 'editor';
comment on column cfg.audit_log.readable_by is
'The least org role that may read this row: the audited table''s own read role.';

-- Rows already written about admin-only tables. The log is append-only for everyone;
-- this one-time correction of who may read it runs with its guard off.
alter table cfg.audit_log disable trigger user;
update cfg.audit_log set readable_by = 'admin'
where table_name in ('webhook_endpoints', 'webhook_allowed_hosts');
alter table cfg.audit_log enable trigger user;
