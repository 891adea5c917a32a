-- A bulk operation's target list (thousands of ids and their positions) leaves the
-- audited progress row (issue 12 (a)). Every batch updates cfg.bulk_operations (cursor,
-- counts, heartbeat) and its audit turned the row, both arrays included, into JSON twice
-- per update before leaving them out: tens of milliseconds a batch for 5,000 targets.
-- Here they are written once, when the operation starts, and read by cfgctl's definer
-- helpers alone (functions/86_bulk.sql). Not in cfg: the API never returned them.
create table cfg_private.bulk_targets (
    operation_id uuid primary key references cfg.bulk_operations (id) on delete cascade,
    -- The automations to act on, in selection order, and their positions in it.
    target_ids uuid [] not null,
    target_positions integer [] not null,
    created_at timestamptz not null default now(),
    constraint bulk_targets_paired check (cardinality(target_ids) = cardinality(target_positions))
);
alter table cfg_private.bulk_targets enable row level security;
revoke all on cfg_private.bulk_targets from public, anon, authenticated, service_role;

insert into cfg_private.bulk_targets (operation_id, target_ids, target_positions)
select o.id, o.target_ids, o.target_positions from cfg.bulk_operations as o;

alter table cfg.bulk_operations drop constraint bulk_operations_targets_paired;
alter table cfg.bulk_operations drop column target_ids, drop column target_positions;
-- How many targets are done (the next batch starts after them): at most all of them.
alter table cfg.bulk_operations add constraint bulk_operations_cursor_range check (cursor between 0 and total);
