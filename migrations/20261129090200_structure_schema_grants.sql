-- Schema-level grants and drops of replaced functions live only in migrations; the
-- function files define functions (issue 9). These were in function files before.

-- Signed-in users call the access helpers their policies and RPCs use; GoTrue calls
-- the custom access token hook. What each may execute is granted per function.
grant usage on schema cfg_private to authenticated;
grant usage on schema cfg_private to supabase_auth_admin;

-- The six-argument form of an early draft of cfg.promote.
drop function if exists cfg.promote(uuid, text, text, boolean, text, text);
