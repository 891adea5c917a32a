-- =============================================================================
-- Webhook secrets are shown once: when the endpoint is created (cfg.create_webhook_endpoint)
-- and after each rotation. revealed_at records that hand-out, so the security definer
-- helper that reads a secret back (cfg_private.reveal_webhook_secret) can never hand
-- the same secret out twice. Secrets that exist already were shown when they were made.
-- =============================================================================

-- The default fills existing rows without firing their audit trigger; new secrets start unrevealed.
alter table cfg_private.webhook_secrets add column revealed_at timestamptz default now();
alter table cfg_private.webhook_secrets alter column revealed_at drop default;
