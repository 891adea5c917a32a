-- Section names and entry keys: the same formats, checked without a counted repetition
-- in the regex ({1,100}, {1,200}), which made each check several times slower; a save
-- rewrites every changed entry, and each write runs the check (bench/bench_versioning.py).
alter table cfg.config_sections
drop constraint config_sections_name_format,
add constraint config_sections_name_format check (name ~ '^[A-Za-z0-9_.-]+$' and length(name) <= 100);

alter table cfg.config_entries
drop constraint config_entries_key_format,
add constraint config_entries_key_format check (key ~ '^[A-Za-z0-9_.-]+$' and length(key) <= 200);
