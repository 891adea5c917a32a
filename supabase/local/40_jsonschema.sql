-- pg_jsonschema (supabase/pg_jsonschema 0.3.4) recreated for the embedded cluster: the same
-- four functions in schema `extensions`, by the same names, argument names and types, return
-- types, volatility (immutable strict parallel safe), owner and grants. Written after reading
-- pg_jsonschema's src/lib.rs and the `jsonschema` crate (0.37) it wraps; the engine is
-- Debian's python3-jsonschema (4.10.3) through plpython3u, never a hand-written subset.
-- A hosted Supabase project has the real extension (`create extension pg_jsonschema with
-- schema extensions`); this file is never applied there.
--
-- What pg_jsonschema does, and so what these do:
--   - The draft comes from `$schema` (draft 4, 6, 7, 2019-09, 2020-12; http or https, with or
--     without a trailing '#'); without `$schema` it is draft 2020-12 (the crate's default).
--     Any other `$schema` makes the schema invalid (the crate cannot fetch meta-schemas).
--   - `format` asserts for drafts 4, 6 and 7 only; in 2019-09 and 2020-12 it is an annotation
--     (the crate's default, which pg_jsonschema keeps). Unknown formats are ignored.
--   - An invalid schema: json(b)_matches_schema raise (the crate panics: "Invalid schema"),
--     jsonschema_is_valid returns false with a NOTICE naming the path,
--     jsonschema_validation_errors returns one message saying what is wrong with the schema.
--   - Remote `$ref`s are never fetched (the crate is built without HTTP or file resolving).
--   - Numbers: multipleOf is exact on decimals (pg_jsonschema enables arbitrary precision).
-- Where we differ, on purpose (docs/local-stack.md "pg_jsonschema (local)"):
--   - Messages are python-jsonschema's wording ("42 is not of type 'string'"), prefixed with
--     the JSON pointer of the failing value when it is not the root ("/http/port: ...").
--     The crate's messages carry no path.
--   - Time bound on regular expressions. Python's `re` backtracks and cannot be interrupted
--     (not even by statement_timeout), so `pattern`, `patternProperties` and the
--     additional/unevaluated property checks that use them run on the `regex` module
--     (Debian's python3-regex) with a timeout, all of one call sharing PATTERN_BUDGET seconds.
--     A pattern that runs out of time is a validation error ("pattern ... took too long"),
--     never a hang. (The crate matches with Rust's `regex`, linear time, falling back to
--     fancy-regex with a backtrack limit for look-around and back-references.)
--     Pattern syntax is Python's, not ECMA-262's (`\d` also matches non-ASCII digits).
--   - A schema text over 256 KiB is refused like an invalid schema.
--   - jsonschema_is_valid also compiles every `pattern` and `patternProperties` key: a
--     pattern that does not compile makes the schema invalid (the crate's is_valid only checks
--     the meta-schema, and its matches_schema then fails on every call).
--   - Formats whose checker needs a package Debian 12 lacks are not asserted (date-time, time,
--     duration, uri-template). `hostname` (python-jsonschema's needs `fqdn`, not in Debian 12)
--     and `email` (python-jsonschema 4.10 only looks for an '@') are our own small checkers
--     plugged into its FormatChecker; enum and const compare JSON values strictly (4.10 took
--     a nested 0 for false).
-- Compiled validators are cached per schema text in the session (GD, 256 entries, LRU),
-- because rules run on every save.

set role supabase_admin;

create extension if not exists plpython3u;

-- =============================================================================
-- The engine. One function does the work for the four API functions below, so the Python
-- lives in one place; it is not part of pg_jsonschema's API: call the four instead.
--   mode 'match'  -> '{}' when instance is valid, one message otherwise; invalid schema raises
--   mode 'errors' -> every message; an invalid schema gives one message about the schema
--   mode 'schema' -> '{}' when the schema is valid, one message (and a NOTICE) otherwise
-- =============================================================================

create or replace function extensions._cfgctl_jsonschema_check(schema text, instance text, mode text)
returns text []
language plpython3u
immutable strict parallel safe
set search_path = ''
as $py$
E = GD.get("cfgctl_jsonschema/2")
if E is None:
    import collections
    import decimal
    import ipaddress
    import json
    import re
    import time

    import jsonschema
    import jsonschema._utils
    import jsonschema._validators
    import idna
    import regex
    from jsonschema import _format, exceptions, validators

    PATTERN_BUDGET = 0.2       # seconds of regular-expression matching per call
    MAX_SCHEMA_BYTES = 262144  # 256 KiB
    CACHE_SIZE = 256

    class PatternTimeout(Exception):
        def __init__(self, pattern, text):
            short = text if len(text) <= 40 else text[:40] + "..."
            super().__init__(f"pattern {pattern!r} took too long (over {int(PATTERN_BUDGET * 1000)} ms) "
                             f"on {short!r}; use a simpler pattern")

    class InvalidSchema(Exception):
        pass

    class Clock:
        deadline = 0.0

    def bounded_search(pattern, text):
        left = Clock.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            return regex.search(pattern, text, timeout=left)
        except TimeoutError:
            raise PatternTimeout(pattern, text) from None

    class BoundedRe:
        """`re` for python-jsonschema's modules, with a search that cannot hang."""
        search = staticmethod(bounded_search)

        def __getattr__(self, name):
            return getattr(re, name)

    # python-jsonschema calls re.search in these two modules only (patternProperties, pattern,
    # additional/unevaluated properties). This interpreter serves this session only.
    jsonschema._validators.re = BoundedRe()
    jsonschema._utils.re = BoundedRe()

    def pattern_keyword(validator, patrn, instance, schema):
        if validator.is_type(instance, "string"):
            try:
                found = bounded_search(patrn, instance)
            except PatternTimeout as timeout:
                yield exceptions.ValidationError(str(timeout))
                return
            if not found:
                yield exceptions.ValidationError(f"{instance!r} does not match {patrn!r}")

    def multiple_of(validator, db, instance, schema):
        # Exact on decimals, like the crate with arbitrary precision: 17.2 is a multiple of 0.1.
        if not validator.is_type(instance, "number"):
            return
        try:
            a, b = decimal.Decimal(repr(instance)), decimal.Decimal(repr(db))
            # Enough digits for the integer quotient (1e308 / 0.5 has 309).
            ctx = decimal.Context(prec=max(28, a.adjusted() - b.adjusted() + 30), Emax=decimal.MAX_EMAX)
            multiple = ctx.remainder(a, b) == 0
        except decimal.InvalidOperation:  # infinities: not a multiple
            multiple = False
        if not multiple:
            yield exceptions.ValidationError(f"{instance!r} is not a multiple of {db}")

    LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")

    def is_hostname(instance):
        # RFC 1123 labels (letters, digits, inner hyphens; 1-63 each, 253 in all), no trailing
        # dot, and "--" in 3rd-4th position only in a valid IDNA A-label (RFC 5891 4.2.3.1).
        if not isinstance(instance, str):
            return True
        if not instance or len(instance) > 253:
            return False
        for label in instance.split("."):
            if not (0 < len(label) <= 63 and set(label) <= LDH and label[0] != "-" and label[-1] != "-"):
                return False
            if label[2:4] == "--":
                if label[:2].lower() != "xn":
                    return False
                try:
                    idna.ulabel(label)
                except (idna.IDNAError, UnicodeError):
                    return False
        return True

    ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")

    def is_email(instance):
        # RFC 5321 mailbox: dot-atom or quoted local part, then a host name or an address literal.
        # (python-jsonschema 4.10's own check is only "contains an @".)
        if not isinstance(instance, str):
            return True
        local, at, domain = instance.rpartition("@")
        if not at or not local or not domain:
            return False
        if len(local) >= 2 and local[0] == local[-1] == '"':
            quoted = local[1:-1].replace('\\\\', "").replace('\\"', "")
            if '"' in quoted or "\\" in quoted:
                return False
        elif not all(part and set(part) <= ATEXT for part in local.split(".")):
            return False
        if domain[0] == "[" and domain[-1] == "]":
            literal = domain[1:-1]
            try:
                if literal[:5].lower() == "ipv6:":
                    ipaddress.IPv6Address(literal[5:])
                else:
                    ipaddress.IPv4Address(literal)
            except ValueError:
                return False
            return True
        return is_hostname(domain)

    def same(a, b):
        # JSON equality: false is not 0, true is not 1, at any depth (4.10's enum/const miss nested ones).
        if isinstance(a, bool) or isinstance(b, bool):
            return isinstance(a, bool) and isinstance(b, bool) and a == b
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, (dict, list, str)) or isinstance(b, (dict, list, str)):
            return type(a) is type(b) and a == b
        return a == b

    def enum_keyword(validator, enums, instance, schema):
        if not any(same(instance, e) for e in enums):
            yield exceptions.ValidationError(f"{instance!r} is not one of {enums!r}")

    def const_keyword(validator, const, instance, schema):
        if not same(instance, const):
            yield exceptions.ValidationError(f"{const!r} was expected")

    def with_our_formats(checker):
        fc = jsonschema.FormatChecker(formats=())
        fc.checkers = dict(checker.checkers)
        fc.checks("hostname")(is_hostname)
        fc.checks("email")(is_email)
        return fc

    # The pattern compiler python-jsonschema would use, for meta-validation of `pattern`.
    def is_regex(instance):
        if not isinstance(instance, str):
            return True
        regex.compile(instance)
        return True

    REGEX_ONLY = jsonschema.FormatChecker(formats=())
    REGEX_ONLY.checks("regex", raises=regex.error)(is_regex)

    class NoRemoteRefs(validators.RefResolver):
        def resolve_remote(self, uri):
            raise exceptions.RefResolutionError(f"remote reference {uri!r} is not supported")

    def bounded(cls):
        ours = {"pattern": pattern_keyword, "multipleOf": multiple_of, "enum": enum_keyword, "const": const_keyword}
        extended = validators.extend(cls, {k: v for k, v in ours.items() if k in cls.VALIDATORS})
        # The draft's own type checks, looked up in a dict: 4.10 looks each one up in a
        # persistent map, about a fifth of the time a save spends validating.
        checks, looked_up = dict(cls.TYPE_CHECKER._type_checkers), extended.is_type

        def is_type(self, instance, type):
            check = checks.get(type)
            if check is None:
                return looked_up(self, instance, type)  # an unknown type: the engine's error
            return check(self.TYPE_CHECKER, instance)

        extended.is_type = is_type
        return extended

    D4, D6, D7 = jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator
    D2019, D2020 = jsonschema.Draft201909Validator, jsonschema.Draft202012Validator
    # $schema -> (meta-schema validator, bounded validator, format checker or None)
    DRAFTS = {}
    for cls, uri, checker in [
        (D4, "json-schema.org/draft-04/schema", _format.draft4_format_checker),
        (D6, "json-schema.org/draft-06/schema", _format.draft6_format_checker),
        (D7, "json-schema.org/draft-07/schema", _format.draft7_format_checker),
        (D2019, "json-schema.org/draft/2019-09/schema", None),
        (D2020, "json-schema.org/draft/2020-12/schema", None),
    ]:
        entry = (cls, bounded(cls), with_our_formats(checker) if checker else None)
        DRAFTS["http://" + uri] = DRAFTS["https://" + uri] = entry
    DEFAULT = DRAFTS["https://json-schema.org/draft/2020-12/schema"]

    def pointer(path):
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)

    def compile_schema(text):
        """(validator, None) or (None, what is wrong with the schema)."""
        if len(text.encode()) > MAX_SCHEMA_BYTES:
            return None, f"schema is too large: {len(text.encode())} bytes, the limit is {MAX_SCHEMA_BYTES}"
        try:
            doc = json.loads(text)
        except ValueError as e:
            return None, f"schema is not JSON: {e}"
        if not isinstance(doc, (dict, bool)):
            return None, f"schema must be an object or a boolean, not {doc!r}"
        draft = DEFAULT
        if isinstance(doc, dict) and isinstance(doc.get("$schema"), str):
            draft = DRAFTS.get(doc["$schema"].rstrip("#"))
            if draft is None:
                return None, f"unknown specification {doc['$schema']!r}"
        meta, cls, checker = draft
        Clock.deadline = time.monotonic() + PATTERN_BUDGET
        try:
            problem = exceptions.best_match(meta(meta.META_SCHEMA, format_checker=REGEX_ONLY).iter_errors(doc))
        except (PatternTimeout, RecursionError) as e:
            return None, f"schema cannot be checked: {e}"
        if problem is not None:
            return None, f"invalid schema at {pointer(problem.absolute_path) or '/'}: {problem.message}"
        resolver = NoRemoteRefs.from_schema(doc, id_of=cls.ID_OF)
        return cls(doc, resolver=resolver, format_checker=checker), None

    CACHE = collections.OrderedDict()

    def validator_for(text):
        hit = CACHE.get(text)
        if hit is not None:
            CACHE.move_to_end(text)
            return hit
        hit = CACHE[text] = compile_schema(text)
        if len(CACHE) > CACHE_SIZE:
            CACHE.popitem(last=False)
        return hit

    def messages(v, doc, first_only):
        out = []
        Clock.deadline = time.monotonic() + PATTERN_BUDGET
        try:
            for err in v.iter_errors(doc):
                where = pointer(err.absolute_path)
                out.append(f"{where}: {err.message}" if where else err.message)
                if first_only:
                    break
        except PatternTimeout as e:
            out.append(str(e))
        except (exceptions.RefResolutionError, regex.error) as e:
            # The crate resolves references and compiles patterns up front: an invalid schema.
            raise InvalidSchema(str(e)) from None
        except RecursionError:
            raise InvalidSchema("schema references loop without end (a $ref cycle)") from None
        return out

    def check(schema_text, instance_text, mode):
        v, problem = validator_for(schema_text)
        if mode == "schema":
            if problem is None:
                return []
            plpy.notice(problem)
            return [problem]
        try:
            if problem is not None:
                raise InvalidSchema(problem)
            return messages(v, json.loads(instance_text), first_only=(mode == "match"))
        except InvalidSchema as e:
            if mode == "match":
                # pgrx turns the crate's panic into an internal error; so do we.
                plpy.error(f"Invalid schema: {e}", sqlstate="XX000")
            return [str(e)]

    # The key carries a version: a session that saw an older definition builds the new one.
    E = GD["cfgctl_jsonschema/2"] = check

if mode not in ("match", "errors", "schema"):
    plpy.error(f"unknown mode {mode!r}", sqlstate="22023")
return E(schema, instance, mode)
$py$;

-- Needed by whoever calls the four functions below (they are security invoker, like the
-- extension's). It is pure: it reads nothing and writes nothing but its own session cache.
grant execute on function extensions._cfgctl_jsonschema_check(text, text, text) to postgres with grant option;

-- =============================================================================
-- pg_jsonschema's API. Extension functions keep PUBLIC's EXECUTE on Supabase (anon,
-- authenticated and service_role call them through it) and `postgres` has them with grant
-- option (supabase/postgres: grant_extensions_perms_for_postgres).
-- =============================================================================

create or replace function extensions.json_matches_schema(schema json, instance json)
returns boolean
language sql
immutable strict parallel safe
set search_path = ''
as $$
    select cardinality(extensions._cfgctl_jsonschema_check(schema::text, instance::text, 'match')) = 0
$$;

grant execute on function extensions.json_matches_schema(json, json) to postgres with grant option;

create or replace function extensions.jsonb_matches_schema(schema json, instance jsonb)
returns boolean
language sql
immutable strict parallel safe
set search_path = ''
as $$
    select cardinality(extensions._cfgctl_jsonschema_check(schema::text, instance::text, 'match')) = 0
$$;

grant execute on function extensions.jsonb_matches_schema(json, jsonb) to postgres with grant option;

create or replace function extensions.jsonschema_is_valid(schema json)
returns boolean
language sql
immutable strict parallel safe
set search_path = ''
as $$
    select cardinality(extensions._cfgctl_jsonschema_check(schema::text, 'null', 'schema')) = 0
$$;

grant execute on function extensions.jsonschema_is_valid(json) to postgres with grant option;

create or replace function extensions.jsonschema_validation_errors(schema json, instance json)
returns text []
language sql
immutable strict parallel safe
set search_path = ''
as $$
    select extensions._cfgctl_jsonschema_check(schema::text, instance::text, 'errors')
$$;

grant execute on function extensions.jsonschema_validation_errors(json, json) to postgres with grant option;

reset role;
