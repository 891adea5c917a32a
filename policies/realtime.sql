-- =============================================================================
-- Row-level security on realtime.messages: who may join the private channels
-- `org:<org_id>` and `automation:<automation_id>`. Supabase Realtime checks a joining
-- client by inserting probe rows (topic, extension) and selecting them back as the
-- client, with realtime.topic set to the channel (read), and by inserting one as the
-- client (write), each in a transaction it rolls back. Both checks run once per join:
-- the policies compare the row's topic to realtime.topic() and ask
-- cfg_private.realtime_may_join once per statement (an init plan).
--
-- What clients may send: presence on automation topics, nothing else. A broadcast
-- sent by a client reaches the same subscribers as the database's own, and Realtime's
-- write check sees only (topic, extension), not the event name: allowing client
-- broadcasts at all would let any member forge "config.saved" for everyone. Changes
-- are made through the API, which broadcasts them itself.
-- Anon, strangers and other orgs' members match no policy: they get nothing.
-- =============================================================================

drop policy if exists "members receive their orgs' changes and presence" on realtime.messages;
create policy "members receive their orgs' changes and presence" on realtime.messages
for select to authenticated
using (
    topic = (select realtime.topic())
    and extension in ('broadcast', 'presence')
    and (select cfg_private.realtime_may_join(realtime.topic()))
);

drop policy if exists "members track presence on their automations" on realtime.messages;
create policy "members track presence on their automations" on realtime.messages
for insert to authenticated
with check (
    extension = 'presence'
    and topic like 'automation:%'
    and topic = (select realtime.topic())
    and (select cfg_private.realtime_may_join(realtime.topic()))
);
