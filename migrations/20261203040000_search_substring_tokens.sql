-- Search (issue 13): exact substrings (URLs, hosts, identifiers) are found through tokens
-- of the entry's own org, no longer through a trigram index over whole values.
-- A trigram's posting list is every org's: `internal.example.com/v1` read ~100k postings
-- per trigram to find one org's 1,000 rows, and keeping trigrams of every key and string
-- value current cost a save more than the words did. The tokens are the tails of each
-- identifier-like word (a word with punctuation) from each place where a run of letters
-- and digits or a punctuation character starts, up to 100 characters, prefixed with the
-- first 8 hex digits of the org id: a substring query is a prefix query on the caller's
-- orgs' tokens, so it reads its own orgs' postings only. A query therefore matches from
-- the start of a word or at punctuation (`internal.example.com/v1` in
-- `https://api.internal.example.com/v1/users`; not `ternal.example`). Words and ranks
-- are unchanged (search_vector, org-leading GIN).

-- The tokens of an entry: its key and, for a string value, the value (lower case, the
-- first 2,000 characters, at most 200 tokens). Words without punctuation have none: the
-- word index finds them. Every other entry pays one regular-expression test.
create function cfg_private.entry_search_tokens(org_id uuid, key text, value jsonb)
returns tsvector
language plpgsql immutable parallel safe
set search_path = ''
as $$
declare
    t text := lower(left(key || ' ' || case when jsonb_typeof(value) = 'string' then value #>> '{}' else '' end, 2000));
    tag text := left(org_id::text, 8);
    tokens text [] := '{}';
    word text;
    pieces text [];
    tail text;
begin
    if t !~ '[^[:alnum:][:space:]]' then
        return '';
    end if;
    foreach word in array regexp_split_to_array(t, '\s+') loop
        continue when length(word) < 3 or word !~ '[^[:alnum:]]';
        -- Runs of letters and digits, and single punctuation characters (empty pieces
        -- between two punctuation characters are skipped).
        pieces := string_to_array(regexp_replace(word, '[^[:alnum:]]', E'\x01\\&\x01', 'g'), E'\x01');
        tail := '';
        for i in reverse cardinality(pieces)..1 loop
            continue when pieces[i] = '';
            tail := pieces[i] || tail;
            tokens := tokens || (tag || left(tail, 100));
        end loop;
        exit when cardinality(tokens) >= 200;
    end loop;
    return array_to_tsvector(tokens[1:200]);
end
$$;
revoke execute on function cfg_private.entry_search_tokens(uuid, text, jsonb) from public, anon;
grant execute on function cfg_private.entry_search_tokens(uuid, text, jsonb) to authenticated, service_role;

-- search_text and its trigram index give way to search_tokens. The API returns
-- search_tokens with entries instead of search_text (README, Upgrading).
alter table cfg.config_entries drop column search_text;
alter table cfg.config_entries
add column search_tokens tsvector
generated always as (cfg_private.entry_search_tokens(org_id, key, value)) stored;
create index config_entries_tokens_idx on cfg.config_entries using gin (search_tokens);

alter table cfg_private.deployed_entries drop column search_text;
alter table cfg_private.deployed_entries
add column search_tokens tsvector
generated always as (cfg_private.entry_search_tokens(org_id, key, value)) stored;
create index deployed_entries_tokens_idx on cfg_private.deployed_entries using gin (search_tokens);

-- Replaced by versions that take the substring query (functions/94_search.sql).
drop function if exists cfg_private.search_hits(uuid [], uuid [], tsquery, text);
drop function if exists cfg_private.entry_matches(text, text, jsonb, tsquery, text);
