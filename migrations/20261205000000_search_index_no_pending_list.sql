-- Search (issue 13 (a)): the entries' GIN index without a pending list. With fastupdate
-- (the default) new index entries wait in an unsorted list that every search scans in
-- full until vacuum or a 4 MB overflow merges it: up to about 6 ms more per search on
-- 1M entries. Only the index job (cfg_private.index_search_queue, off the save path)
-- writes this index, so it merges its rows at once instead.
alter index cfg_private.entry_search_tokens_idx set (fastupdate = false);
select gin_clean_pending_list('cfg_private.entry_search_tokens_idx'::regclass);
