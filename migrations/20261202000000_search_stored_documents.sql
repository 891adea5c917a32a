-- Search (issue 13): the entries' search documents become stored generated columns.
-- With expression indexes, every candidate row of a search recomputed its document to
-- check and rank it (~10 us a row: 100 ms for an org of 10,000 entries, against a 30 ms
-- target). Stored, they are computed once per write, exactly as the expression index
-- computed them, and read back by searches. Generated columns are computed after BEFORE
-- triggers, so a secret's value (diverted to Vault by one) is never in them.
-- The indexes lead with org_id (btree_gin): a search reads the posting lists of its
-- own orgs, not every org's matches for a common word (GIN intersects the keys).
-- The API now returns these two columns with entries; clients that list columns are
-- unaffected (README, Upgrading).

create extension if not exists btree_gin with schema extensions;

drop index cfg.config_entries_search_idx;
drop index cfg.config_entries_substring_idx;
alter table cfg.config_entries
add column search_vector tsvector
generated always as (cfg_private.entry_search_vector(key, description, value)) stored,
add column search_text text
generated always as (cfg_private.entry_search_text(key, value)) stored;
create index config_entries_search_idx on cfg.config_entries using gin (org_id, search_vector);
create index config_entries_substring_idx on cfg.config_entries
using gin (org_id, search_text extensions.gin_trgm_ops);

drop index cfg_private.deployed_entries_search_idx;
drop index cfg_private.deployed_entries_substring_idx;
alter table cfg_private.deployed_entries
add column search_vector tsvector
generated always as (cfg_private.entry_search_vector(key, description, value)) stored,
add column search_text text
generated always as (cfg_private.entry_search_text(key, value)) stored;
create index deployed_entries_search_idx on cfg_private.deployed_entries using gin (org_id, search_vector);
create index deployed_entries_substring_idx on cfg_private.deployed_entries
using gin (org_id, search_text extensions.gin_trgm_ops);

-- The automations' and sections' documents stay expressions (few rows per org, short
-- texts); their indexes lead with org_id too.
drop index cfg.automations_search_idx;
create index automations_search_idx on cfg.automations
using gin (org_id, cfg_private.automation_search_vector(name, slug, tags, description));
drop index cfg.config_sections_search_idx;
create index config_sections_search_idx on cfg.config_sections
using gin (org_id, to_tsvector('simple', name || ' ' || description));

-- Quick find over 100k automations: the nearest names by trigram word distance, read in
-- distance order from GiST indexes (GIN cannot order), instead of scoring every name.
-- GiST also serves the LIKE '%…%' of cfg.search, so each replaces its GIN index. Long
-- signatures (256 bytes, default 12): with short ones the distance bounds of 100k names
-- are too loose to prune, and a typo walked most of the tree.
drop index cfg.automations_quick_find_idx;
create index automations_quick_find_idx on cfg.automations
using gist ((slug || ' ' || lower(name)) extensions.gist_trgm_ops (siglen = 256));
drop index cfg.config_sections_quick_find_idx;
create index config_sections_quick_find_idx on cfg.config_sections
using gist (name extensions.gist_trgm_ops (siglen = 256));

-- Quick find's keys by prefix: a btree (cheap to keep on every save), per org.
create index config_entries_key_prefix_idx on cfg.config_entries (org_id, lower(key) text_pattern_ops);
