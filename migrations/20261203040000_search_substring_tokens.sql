-- Search (issue 13): an entry's words and substrings are indexed as terms of its own org.
-- With `gin (org_id, search_vector)` and a trigram index over values, a word or trigram
-- common to every org read every org's postings to find one org's rows (`bravo`: 210k
-- postings intersected with the org's 10k; `internal.example.com/v1`: ~100k per trigram),
-- and a save kept two GIN indexes and an org key per row current. Now one stored
-- tsvector, search_tokens, holds:
--   - the words of search_vector (same positions and weights), each prefixed with the
--     first 8 hex digits of the org id and '#': a query is rewritten per org
--     (cfg_private.tagged_query) and ranks exactly as before;
--   - substring tokens, prefixed with the tag and '~': the tails of each identifier-like
--     word (one with punctuation) of the key and a string value, from each place where a
--     run of letters and digits or a punctuation character starts, up to 100 characters.
--     A substring query is a prefix query on them: it matches from the start of a word or
--     at punctuation (`internal.example.com/v1` in `https://api.internal.example.com/v1/x`;
--     not `ternal.example`).
-- A tag shared by two orgs costs only reading a few more postings: rows are filtered by
-- org_id as well.

-- An entry's search terms (see above): lower case, from the first 2,000 characters of the
-- key and a string value, at most 200 substring tokens. Words without punctuation have
-- no substring tokens (the words find them).
create function cfg_private.entry_search_document(org_id uuid, key text, description text, value jsonb)
returns tsvector
language plpgsql immutable parallel safe
set search_path = ''
as $$
declare
    tag text := left(org_id::text, 8);
    words tsvector := cfg_private.entry_search_vector(key, description, value);
    t text := lower(left(key || ' ' || case when jsonb_typeof(value) = 'string' then value #>> '{}' else '' end, 2000));
    tokens text [] := '{}';
    word text;
    pieces text [];
    tail text;
    w text := words::text;
begin
    if octet_length(w) > 2000 then
        -- A word that the tag would make longer than a term may be (2 kB) is left out.
        w := ts_delete(words, array(select l from unnest(tsvector_to_array(words)) as l where octet_length(l) > 2030))::text;
    end if;
    if w <> '' then
        -- Terms contain no space: in the text form each quoted term opens the string or
        -- follows a space.
        words := ('''' || tag || '#' || substr(replace(w, ' ''', ' ''' || tag || '#'), 2))::tsvector;
    end if;
    if t !~ '[^[:alnum:][:space:]]' then
        return words;
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
            tokens := tokens || (tag || '~' || left(tail, 100));
        end loop;
        exit when cardinality(tokens) >= 200;
    end loop;
    return words || array_to_tsvector(tokens[1:200]);
end
$$;
revoke execute on function cfg_private.entry_search_document(uuid, text, text, jsonb) from public, anon;
grant execute on function cfg_private.entry_search_document(uuid, text, text, jsonb) to authenticated, service_role;

-- search_vector, search_text and their indexes give way to search_tokens. The API returns
-- search_tokens with entries instead of those two (README, Upgrading).
alter table cfg.config_entries drop column search_vector, drop column search_text;
alter table cfg.config_entries
add column search_tokens tsvector
generated always as (cfg_private.entry_search_document(org_id, key, description, value)) stored;
create index config_entries_tokens_idx on cfg.config_entries using gin (search_tokens);

alter table cfg_private.deployed_entries drop column search_vector, drop column search_text;
alter table cfg_private.deployed_entries
add column search_tokens tsvector
generated always as (cfg_private.entry_search_document(org_id, key, description, value)) stored;
create index deployed_entries_tokens_idx on cfg_private.deployed_entries using gin (search_tokens);

-- Replaced by versions that take the org's queries (functions/94_search.sql).
drop function if exists cfg_private.search_hits(uuid [], uuid [], tsquery, text);
drop function if exists cfg_private.entry_matches(text, text, jsonb, tsquery, text);
