-- The outbox's event types are checked once per statement instead of by a foreign key.
-- A foreign key runs a query of its own for each inserted row: 5,000 for the events of a
-- bulk batch, about a tenth of that batch's cost, and its index (events_type_idx)
-- existed only so that deleting a type could check the outbox. Now:
-- - an insert into cfg_private.events whose type the catalogue lacks fails as before
--   (SQLSTATE 23503, the foreign key's), checked by cfg_private.check_event_types over the
--   statement's rows at once (functions/15_events.sql);
-- - a type once registered stays: it cannot be deleted or renamed (webhook endpoints'
--   filters and the outbox name it), which the foreign key enforced while a type was used.
alter table cfg_private.events drop constraint events_type_fkey;
drop index cfg_private.events_type_idx;
