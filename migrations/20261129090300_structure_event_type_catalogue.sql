-- The outbox references the event type catalogue (issue 9): an event whose type no
-- migration registered cannot be emitted. Each area registers its types in its own
-- migration (`insert into cfg_private.event_types … on conflict do nothing`).

-- Types already in the outbox of an upgraded database, registered so the key holds.
insert into cfg_private.event_types (type, description)
select distinct
    e.type,
    'registered when the outbox started referencing the catalogue' as description
from cfg_private.events as e
on conflict (type) do nothing;

alter table cfg_private.events
add constraint events_type_fkey foreign key (type) references cfg_private.event_types (type);
-- Deleting a type from the catalogue checks the outbox through this index.
create index events_type_idx on cfg_private.events (type);
