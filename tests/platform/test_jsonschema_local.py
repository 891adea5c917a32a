"""The embedded stack's pg_jsonschema (supabase/local/40_jsonschema.sql, issue 11 item 3).

The same four functions as supabase/pg_jsonschema, in `extensions`, backed by python-jsonschema
through plpython3u. Verdicts come from the JSON-Schema-Test-Suite (tests/platform/data/
jsonschema_cases.json, a file a hosted pg_jsonschema can be held to as well); regular
expressions run under a time bound; huge schemas are refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from sync_service.db import ANON, SERVICE, Identity, acting_as

CASES = json.loads((Path(__file__).parent / "data" / "jsonschema_cases.json").read_text())["cases"]
AUTHENTICATED = Identity(role="authenticated", user_id="00000000-0000-4000-8000-000000000001",
                         email="someone@example.test")
DRAFT7 = "http://json-schema.org/draft-07/schema#"
SIGNATURES = {
    "json_matches_schema": ("schema json, instance json", "boolean"),
    "jsonb_matches_schema": ("schema json, instance jsonb", "boolean"),
    "jsonschema_is_valid": ("schema json", "boolean"),
    "jsonschema_validation_errors": ("schema json, instance json", "text[]"),
}
EVIL = "^(a|a)*$"  # exponential backtracking in Python's re
EVIL_TEXT = "a" * 40 + "!"


def one(cur, sql: str, *args):
    cur.execute(sql, args)
    return next(iter(cur.fetchone().values()))


def matches(cur, schema, instance) -> bool:
    return one(cur, "select extensions.jsonb_matches_schema(%s::json, %s::jsonb)",
               json.dumps(schema), json.dumps(instance))


def errors(cur, schema, instance) -> list[str]:
    return one(cur, "select extensions.jsonschema_validation_errors(%s::json, %s::json)",
               json.dumps(schema), json.dumps(instance))


def is_valid(cur, schema) -> bool:
    return one(cur, "select extensions.jsonschema_is_valid(%s::json)", json.dumps(schema))


# =============================================================================
# Published verdicts
# =============================================================================


def test_suite_cases_get_the_published_verdicts(conn):
    assert len(CASES) >= 36
    wrong = []
    with acting_as(conn, AUTHENTICATED) as cur:
        for case in CASES:
            schema, data = json.dumps(case["schema"]), json.dumps(case["data"])
            cur.execute(
                "select extensions.jsonb_matches_schema(%s::json, %s::jsonb) as b, "
                "extensions.json_matches_schema(%s::json, %s::json) as j, "
                "extensions.jsonschema_validation_errors(%s::json, %s::json) as e",
                (schema, data, schema, data, schema, data),
            )
            got = cur.fetchone()
            # The three functions agree with each other on every case.
            assert got["b"] == got["j"] == (got["e"] == []), case
            # Where the local engine is known to differ, the case says so (and a fix shows up here).
            expected = case["valid"] if "local_differs" not in case else not case["valid"]
            if got["b"] != expected:
                wrong.append(f'{case["source"]}: {case["group"]} / {case["description"]}: {got["b"]}')
    assert wrong == []


def test_case_file_names_its_sources_and_covers_the_keywords_rules_use():
    sources = {c["source"] for c in CASES}
    for keyword in ["type", "required", "enum", "pattern", "minimum", "maximum", "ref", "additionalProperties",
                    "items", "prefixItems", "unevaluatedProperties", "dependentRequired", "if-then-else"]:
        assert f"draft2020-12/{keyword}.json" in sources
    for fmt in ["uri", "hostname", "email"]:
        assert f"draft7/optional/format/{fmt}.json" in sources
    assert all({"source", "group", "description", "schema", "data", "valid"} <= c.keys() for c in CASES)


# =============================================================================
# pg_jsonschema's behaviour
# =============================================================================


def test_draft_defaults_to_2020_12_and_formats_assert_only_in_drafts_4_to_7(conn):
    with acting_as(conn, AUTHENTICATED) as cur:
        # prefixItems is a 2020-12 keyword: applied without $schema, unknown (ignored) in draft 7.
        assert matches(cur, {"prefixItems": [{"type": "integer"}]}, ["x"]) is False
        assert matches(cur, {"$schema": DRAFT7, "prefixItems": [{"type": "integer"}]}, ["x"]) is True
        # format is an annotation in 2020-12 (the crate's default), an assertion in draft 7.
        for fmt, bad, good in [("email", "no-at-sign", "joe.bloggs@example.com"),
                               ("hostname", "-bad-.example", "www.example.com"),
                               ("uri", "//no-scheme", "https://example.com/a?b=c")]:
            assert matches(cur, {"format": fmt}, bad) is True, fmt
            assert matches(cur, {"$schema": "https://json-schema.org/draft/2020-12/schema", "format": fmt}, bad)
            assert matches(cur, {"$schema": DRAFT7, "format": fmt}, bad) is False, fmt
            assert matches(cur, {"$schema": DRAFT7, "format": fmt}, good) is True, fmt
        # Unknown formats are ignored.
        assert matches(cur, {"$schema": DRAFT7, "format": "no-such-format"}, "x") is True


def test_is_valid_on_good_and_broken_schemas(conn):
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
    with acting_as(conn, AUTHENTICATED) as cur:
        for good in [{"type": "object"}, True, {}, {"$schema": DRAFT7, "type": "string"},
                     {"$schema": "https://json-schema.org/draft/2020-12/schema#", "pattern": "^a+$"},
                     {"properties": {"port": {"type": "integer", "minimum": 1}}, "required": ["port"]}]:
            assert is_valid(cur, good) is True, good
        for bad in [{"type": "obj"}, {"$schema": "invalid-uri", "type": "string"}, {"enum": 1},
                    {"pattern": "("}, {"patternProperties": {"[": {}}}, {"minimum": "1"},
                    {"properties": {"port": {"type": "int"}}}, 1, "a string", []]:
            assert is_valid(cur, bad) is False, bad
    # Like pg_jsonschema, a NOTICE says where the schema is wrong.
    assert "invalid schema at /type: 'obj' is not valid under any of the given schemas" in notices
    assert any(n.startswith("invalid schema at /properties/port/type") for n in notices)
    assert "unknown specification 'invalid-uri'" in notices


def test_validation_errors_name_the_path(conn):
    schema = {"type": "object",
              "properties": {"http": {"type": "object",
                                      "properties": {"port": {"type": "integer", "maximum": 65535},
                                                     "base_url": {"type": "string", "pattern": "^https://"}},
                                      "required": ["port"]},
                             "tags": {"type": "array", "items": {"type": "string"}}}}
    with acting_as(conn, AUTHENTICATED) as cur:
        assert errors(cur, schema, {"http": {"port": 8080, "base_url": "https://x"}, "tags": ["a"]}) == []
        got = errors(cur, schema, {"http": {"port": 70000, "base_url": "http://x"}, "tags": ["a", 2]})
        assert sorted(got) == sorted([
            "/http/port: 70000 is greater than the maximum of 65535",
            "/http/base_url: 'http://x' does not match '^https://'",
            "/tags/1: 2 is not of type 'string'",
        ])
        # At the root there is no path; a pointer escapes '/' and '~'.
        assert errors(cur, schema, {"http": {}}) == ["/http: 'port' is a required property"]
        assert errors(cur, {"type": "object"}, 1) == ["1 is not of type 'object'"]
        assert errors(cur, {"properties": {"a/b~c": {"type": "string"}}}, {"a/b~c": 1}) == \
            ["/a~1b~0c: 1 is not of type 'string'"]


def test_invalid_schema_is_an_error_for_matches_and_one_message_for_validation_errors(conn):
    with acting_as(conn, AUTHENTICATED) as cur:
        # pg_jsonschema's jsonschema_validation_errors returns what is wrong with the schema.
        assert errors(cur, {"enum": 1}, "anything") == ["invalid schema at /enum: 1 is not of type 'array'"]
        # A $ref cycle is reported, not a crash.
        loop = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
        assert errors(cur, loop, 1) == ["schema references loop without end (a $ref cycle)"]
    # ... and json(b)_matches_schema fails (the crate panics "Invalid schema", pgrx says XX000).
    for fn, cast in [("json_matches_schema", "json"), ("jsonb_matches_schema", "jsonb")]:
        with pytest.raises(psycopg.errors.InternalError_) as caught, conn.transaction():
            conn.execute(f"select extensions.{fn}('{{\"type\": \"obj\"}}', '1'::{cast})")
        assert "Invalid schema: invalid schema at /type" in caught.value.diag.message_primary


def test_remote_references_are_never_fetched(conn):
    with acting_as(conn, AUTHENTICATED) as cur:
        for uri in ["file:///etc/passwd", "http://127.0.0.1:9/schema.json"]:
            assert errors(cur, {"$ref": uri}, 1) == [f"remote reference '{uri}' is not supported"]
        # The meta-schemas are known without fetching them.
        assert matches(cur, {"$ref": "https://json-schema.org/draft/2020-12/schema"}, {"type": "object"})


def test_multiple_of_is_exact_on_decimals(conn):
    # pg_jsonschema enables the crate's arbitrary precision: its own test cases.
    with acting_as(conn, AUTHENTICATED) as cur:
        assert matches(cur, {"type": "number", "multipleOf": 0.1}, 17.2) is True
        assert matches(cur, {"type": "number", "multipleOf": 0.2}, 17.2) is True
        assert matches(cur, {"type": "number", "multipleOf": 0.3}, 17.2) is False
        assert matches(cur, {"multipleOf": 0.5}, 1e308) is True


# =============================================================================
# Bounds: regular expressions, schema size
# =============================================================================


def warm_up(cur) -> None:
    # A session's first call loads Python and python-jsonschema (hundreds of ms): not what is timed.
    assert matches(cur, {"type": "object"}, {}) is True


@pytest.mark.parametrize("schema, instance", [
    ({"pattern": EVIL}, EVIL_TEXT),
    ({"properties": {"k": {"pattern": EVIL}}}, {"k": EVIL_TEXT}),
    ({"patternProperties": {EVIL: {"type": "string"}}}, {EVIL_TEXT: 1}),
    ({"patternProperties": {EVIL: {}}, "additionalProperties": False}, {EVIL_TEXT: 1}),
    ({"patternProperties": {EVIL: {}}, "unevaluatedProperties": False}, {EVIL_TEXT: 1}),
], ids=["pattern", "nested-pattern", "patternProperties", "additionalProperties", "unevaluatedProperties"])
def test_a_backtracking_pattern_is_a_validation_error_within_a_second(conn, schema, instance):
    with acting_as(conn, AUTHENTICATED) as cur:
        warm_up(cur)
        started = time.monotonic()
        got = errors(cur, schema, instance)
        assert time.monotonic() - started < 1.0
        assert any(f"pattern '{EVIL}' took too long" in e for e in got), got
        started = time.monotonic()
        assert matches(cur, schema, instance) is False
        assert time.monotonic() - started < 1.0
        # The session is fine afterwards, and a harmless pattern still works.
        assert matches(cur, {"pattern": "^a+!$"}, EVIL_TEXT) is True


def test_many_patterns_share_one_time_budget(conn):
    # 20 evil properties: the whole call is bounded, not each pattern.
    schema = {"properties": {f"k{i}": {"pattern": EVIL} for i in range(20)}}
    with acting_as(conn, AUTHENTICATED) as cur:
        warm_up(cur)
        started = time.monotonic()
        got = errors(cur, schema, {f"k{i}": EVIL_TEXT for i in range(20)})
        assert time.monotonic() - started < 1.5
        assert len(got) == 20 and all("took too long" in e for e in got)


def test_a_huge_schema_is_refused(conn):
    huge = {"enum": [f"value-{i:07d}" for i in range(20000)]}  # ~320 KiB
    assert len(json.dumps(huge)) > 256 * 1024
    with acting_as(conn, AUTHENTICATED) as cur:
        assert is_valid(cur, huge) is False
        (message,) = errors(cur, huge, "value-0000001")
        assert message.startswith("schema is too large:") and "the limit is 262144" in message
    with pytest.raises(psycopg.errors.InternalError_, match="schema is too large"), conn.transaction():
        conn.execute("select extensions.jsonb_matches_schema(%s::json, '1')", (json.dumps(huge),))
    # Below the limit, a big schema is fine.
    with acting_as(conn, AUTHENTICATED) as cur:
        assert matches(cur, {"enum": huge["enum"][:10000]}, "value-0000001") is True


# =============================================================================
# Names, signatures, owner, grants: as Supabase ships pg_jsonschema
# =============================================================================


def test_signatures_volatility_and_search_path_match_pg_jsonschema(conn):
    rows = conn.execute(
        """
        select p.proname, pg_get_function_arguments(p.oid) as args,
               format_type(p.prorettype, null) as returns, p.provolatile, p.proisstrict, p.proparallel,
               p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) as owner
        from pg_proc p
        where p.pronamespace = 'extensions'::regnamespace and p.proname = any(%s)
        """,
        (list(SIGNATURES),),
    ).fetchall()
    assert {r["proname"]: (r["args"], r["returns"]) for r in rows} == SIGNATURES
    for r in rows:
        assert (r["provolatile"], r["proisstrict"], r["proparallel"]) == ("i", True, "s"), r
        assert r["prosecdef"] is False and r["proconfig"] == ['search_path=""'] and r["owner"] == "supabase_admin"


def test_granted_as_supabase_grants_them(conn):
    for name, (args, _) in SIGNATURES.items():
        sig = f"extensions.{name}({', '.join(a.split()[1] for a in args.split(', '))})"
        for role in ["anon", "authenticated", "service_role", "postgres"]:
            assert conn.execute("select has_function_privilege(%s, %s, 'execute') as ok",
                                (role, sig)).fetchone()["ok"], (role, sig)
        acl = conn.execute("select proacl::text[] as acl from pg_proc where oid = %s::regprocedure",
                           (sig,)).fetchone()["acl"]
        # Extension functions keep PUBLIC's EXECUTE; `postgres` holds it with grant option.
        assert any(a.startswith("=X/") for a in acl) and any(a.startswith("postgres=X*/") for a in acl), acl
    # Every API role calls them the way PostgREST would.
    for identity in [ANON, AUTHENTICATED, SERVICE]:
        with acting_as(conn, identity) as cur:
            assert matches(cur, {"type": "object"}, {}) is True
            assert is_valid(cur, {"type": "object"}) is True
