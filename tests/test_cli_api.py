"""One API for the dashboard (issue 9, item 3): the CLI parses, calls one cfg.* RPC and
renders, so everything it shows a dashboard can show too. This file holds the check that
cli/ contains no other SQL, the RPC matrix of the RPCs that replaced its hand-written
queries (tests/test_rls_matrix.py checks that every RPC in cfg is in some matrix), their
bad-input cases, and the webhook host allowlist RPCs with their commands."""

from __future__ import annotations

import ast
import json
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner
from conftest import build_world, create_database, drop_database
from psycopg.rows import dict_row

from cli.main import main
from sync_service.db import CfgError, act_as, acting_as
from sync_service.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent

# =============================================================================
# cli/ holds no SQL beyond one RPC call per statement
# =============================================================================

# `select cfg.fn(...) [as x]` or `select * from cfg.fn(...)`, arguments being placeholders
# (optionally cast) or constants: no table, no join, no where, no second statement.
_ARG = r"(?:%s(?:::[a-z_.]+(?:\[\])?)?|[0-9]+|true|false|null)"
ONE_CALL = re.compile(
    rf"select (?:\* from )?cfg\.[a-z_]+\((?:{_ARG}(?:, {_ARG})*)?\)(?: as [a-z_]+)?"  # noqa: S608
)
# A statement (not help text that happens to start with "Delete"), or a name in cfg.
LOOKS_LIKE_SQL = re.compile(
    r"^\s*(?:select\b|with\s+\w+\s+as\b|insert\s+into\b|update\s+\S+\s+set\b|delete\s+from\b|merge\s+into\b"
    r"|truncate\b|copy\b)|\bcfg\.[a-z_]+\b(?!\()",
    re.IGNORECASE,
)


def _sql_problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    problems = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        # Every string that reads like SQL (or names something in cfg) is exactly one RPC call.
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = " ".join(node.value.split())
            if LOOKS_LIKE_SQL.search(text) and not ONE_CALL.fullmatch(text):
                problems.append(f"{where}: {text!r}")
        # SQL is never built at run time: execute() takes a literal (or a parameter holding one).
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "execute"
                and node.args and not isinstance(node.args[0], ast.Constant | ast.Name)):
            problems.append(f"{where}: execute() of a built string")
    return problems


def test_the_cli_holds_no_sql_beyond_one_rpc_call():
    files = sorted((ROOT / "cli").glob("*.py"))
    assert files
    assert [p for f in files for p in _sql_problems(f)] == []


def test_the_sql_check_catches_what_the_cli_used_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    bad = tmp_path / "bad.py"
    bad.write_text(
        'cur.execute("select * from cfg.orgs where slug = %s", (ref,))\n'
        'cur.execute("select id from cfg.environments where org_id = %s and slug = %s", (a, b))\n'
        'cur.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, lower(%s))", (a, b))\n'
        'cur.execute("select user_id from cfg.list_members(%s) where lower(email) = lower(%s)", (a, b))\n'
        'cur.execute("select d.version from cfg.deployments d join cfg.environments e on e.id = d.environment_id")\n'
        'cur.execute(f"select * from cfg.{name}(%s)", (a,))\n'
        'cur.execute("select cfg.get_config(%s) as c", (a,))\n'
    )
    flagged = {int(problem.split(':')[1]) for problem in _sql_problems(bad)}
    assert flagged == {1, 2, 3, 4, 5, 6}  # not line 7, the one RPC call


# =============================================================================
# The RPC matrix: anon, viewer, editor, admin, another org's admin, a user of no org,
# the service key. Each call runs in its own rolled-back transaction.
# =============================================================================

IDENTITIES = ("anon", "viewer", "editor", "admin", "other_admin", "outsider", "service")
# Every RPC this module's matrix exercises (tests/test_rls_matrix.py checks coverage).
RPCS = ("find_org", "find_automation", "find_environment", "list_automations", "list_environments",
        "list_environment_changes", "my_invitations", "list_webhook_endpoints", "list_webhook_allowed_hosts",
        "allow_webhook_host", "disallow_webhook_host")

MEMBERS = dict(zip(IDENTITIES, ("42501", "ok", "ok", "ok", "PT404", "PT404", "ok"), strict=True))
ADMINS = dict(zip(IDENTITIES, ("42501", "PT403", "PT403", "ok", "PT404", "PT404", "ok"), strict=True))
OPERATOR = dict(zip(IDENTITIES, ("42501", "PT403", "PT403", "PT403", "PT404", "PT404", "ok"), strict=True))
SIGNED_IN_USERS = dict(zip(IDENTITIES, ("42501", "ok", "ok", "ok", "ok", "ok", "42501"), strict=True))


@pytest.fixture(scope="module")
def shared(pg_cluster, template_url):
    """One world for the module: org A with an allowlisted host and a pipeline change (applied at
    once: org A has one admin), which moved staging to the end."""
    name = f"cli_api_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_cluster, name)
    conn = psycopg.connect(url, row_factory=dict_row)
    world = build_world(conn)
    with acting_as(conn, world["service"]) as cur:
        cur.execute("select cfg.allow_webhook_host(%s, '10.1.2.3')", (world.org_a,))
    with acting_as(conn, world["admin"]) as cur:
        env = cur.execute("select id from cfg.find_environment(%s, 'staging')", (world.org_a,)).fetchone()["id"]
        cur.execute("select cfg.request_environment_change(%s, '{\"position\": 7}')", (env,))
    conn.commit()
    yield conn, world
    conn.close()
    drop_database(pg_cluster, name)


def outcome(conn, who, sql, params=()) -> tuple[str, list]:
    """('ok', rows) or (SQLSTATE, []); the transaction is always rolled back."""
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            act_as(cur, who)
            cur.execute(sql, params)
            return "ok", cur.fetchall()
    except psycopg.Error as exc:
        return exc.sqlstate, []


CASES = {
    "find_org": ("select * from cfg.find_org('org-a')", (), MEMBERS),
    "find_automation": ("select * from cfg.find_automation('org-a/billing')", (), MEMBERS),
    "find_environment": ("select * from cfg.find_environment(%s, 'dev')", ("org_a",), MEMBERS),
    "list_automations": ("select * from cfg.list_automations(%s)", ("org_a",), MEMBERS),
    "list_environments": ("select * from cfg.list_environments(%s)", ("org_a",), MEMBERS),
    "list_environment_changes": ("select * from cfg.list_environment_changes(%s)", ("org_a",), MEMBERS),
    "my_invitations": ("select * from cfg.my_invitations()", (), SIGNED_IN_USERS),
    "list_webhook_endpoints": ("select * from cfg.list_webhook_endpoints(%s)", ("org_a",), ADMINS),
    "list_webhook_allowed_hosts": ("select * from cfg.list_webhook_allowed_hosts(%s)", ("org_a",), ADMINS),
    "allow_webhook_host": ("select * from cfg.allow_webhook_host(%s, 'hooks.internal')", ("org_a",), OPERATOR),
    "disallow_webhook_host": ("select * from cfg.disallow_webhook_host(%s, '10.1.2.3')", ("org_a",), OPERATOR),
}


def test_the_matrix_covers_this_modules_rpcs():
    assert sorted(CASES) == sorted(RPCS)


@pytest.mark.parametrize("rpc", RPCS)
def test_rpc_matrix(shared, rpc):
    conn, world = shared
    sql, args, expected = CASES[rpc]
    params = tuple(getattr(world, a) for a in args)
    hosts = "select count(*) as n from cfg.webhook_allowed_hosts"
    before = conn.execute(hosts).fetchone()["n"]
    got = {who: outcome(conn, world[who], sql, params)[0] for who in IDENTITIES}
    assert got == expected
    assert conn.execute(hosts).fetchone()["n"] == before  # every call was rolled back
    conn.rollback()


def test_lists_show_the_org_they_are_asked_about_only(shared):
    conn, world = shared
    viewer, admin, service = world["viewer"], world["admin"], world["service"]
    _, automations = outcome(conn, viewer, "select * from cfg.list_automations(%s)", (world.org_a,))
    assert [a["slug"] for a in automations] == ["billing"]
    _, envs = outcome(conn, viewer, "select * from cfg.list_environments(%s)", (world.org_a,))
    assert [(e["slug"], e["position"]) for e in envs] == [("dev", 0), ("prod", 2), ("staging", 7)]
    _, changes = outcome(conn, viewer, "select * from cfg.list_environment_changes(%s, null)", (world.org_a,))
    assert [(c["environment_slug"], c["change"], c["status"]) for c in changes] == [
        ("staging", {"position": 7}, "applied")]
    # Pending only, by default.
    assert outcome(conn, viewer, "select * from cfg.list_environment_changes(%s)", (world.org_a,)) == ("ok", [])
    _, hosts = outcome(conn, admin, "select * from cfg.list_webhook_allowed_hosts(%s)", (world.org_a,))
    assert [h["host"] for h in hosts] == ["10.1.2.3"]
    assert outcome(conn, service, "select * from cfg.list_webhook_allowed_hosts(%s)", (world.org_b,)) == ("ok", [])
    _, b = outcome(conn, service, "select * from cfg.list_automations(%s)", (world.org_b,))
    assert [a["slug"] for a in b] == ["other"]
    conn.rollback()


# =============================================================================
# find_org / find_automation / find_environment: another org's answers like a missing one
# =============================================================================


def answer(conn, who, sql, params) -> tuple:
    """(sqlstate, message, detail) with what was passed in replaced by a placeholder."""
    try:
        with acting_as(conn, who) as cur:
            return ("ok", cur.execute(sql, params).fetchall())
    except CfgError as exc:
        text = str(exc)
        detail = json.dumps(exc.detail, sort_keys=True, default=str)
        # What the caller typed comes back in the answer: ORG/SLUG whole, or its org part.
        typed = {str(v) for v in params if v} | {str(v).split("/")[0] for v in params if v}
        for value in sorted(typed, key=len, reverse=True):
            text, detail = text.replace(value, "<ref>"), detail.replace(value, "<ref>")
        return (exc.code, text, detail)


@pytest.mark.parametrize("theirs, missing", [
    ("org-b", "org-zz"),
    ("{org_b}", "{random}"),
])
def test_find_org_answers_alike_for_foreign_and_missing(shared, theirs, missing):
    conn, world = shared
    refs = [r.format(org_b=world.org_b, random=uuid.uuid4()) for r in (theirs, missing)]
    got = [answer(conn, world["admin"], "select * from cfg.find_org(%s)", (r,)) for r in refs]
    assert got[0] == got[1] and got[0][0] == "PT404", got
    conn.rollback()


@pytest.mark.parametrize("theirs, missing, org_ref", [
    ("org-b/other", "org-zz/other", None),
    ("org-b/other", "org-b/nope", None),
    ("{automation_b}", "{random}", None),
    ("other", "nope", "org-b"),
    ("other", "other", "org-zz"),
])
def test_find_automation_answers_alike_for_foreign_and_missing(shared, theirs, missing, org_ref):
    conn, world = shared
    ids = {"automation_b": world.automation_b, "automation_a": world.automation_a, "random": uuid.uuid4()}
    refs = [r.format(**ids) for r in (theirs, missing)]
    sql = "select * from cfg.find_automation(%s, %s)"
    got = [answer(conn, world["admin"], sql, (r, org_ref)) for r in refs]
    assert got[0] == got[1] and got[0][0] == "PT404", got
    conn.rollback()


def test_find_resolves_ids_slugs_and_org_slash_slug(shared):
    conn, world = shared
    viewer = world["viewer"]
    for ref in ("org-a", str(world.org_a), str(world.org_a).upper()):
        assert answer(conn, viewer, "select id from cfg.find_org(%s)", (ref,)) == ("ok", [{"id": world.org_a}])
    for ref, org_ref in (("org-a/billing", None), (str(world.automation_a), None), ("billing", "org-a"),
                         ("billing", str(world.org_a)), (str(world.automation_a), "org-a")):
        assert answer(conn, viewer, "select id from cfg.find_automation(%s, %s)", (ref, org_ref)) == (
            "ok", [{"id": world.automation_a}]), (ref, org_ref)
    # The service key sees every org; a slug without its org is a usage error.
    assert answer(conn, world["service"], "select id from cfg.find_automation('org-b/other')", ())[0] == "ok"
    # An id named together with an org must be in that org.
    assert answer(conn, world["service"], "select * from cfg.find_automation(%s, 'org-b')",
                  (str(world.automation_a),))[0] == "PT404"
    for bad in ("billing", "", None):
        code, message, _ = answer(conn, viewer, "select * from cfg.find_automation(%s)", (bad,))
        assert code == "PT422" and "ORG/SLUG" in message, bad
    conn.rollback()


@pytest.mark.parametrize("ref", ["x' or '1'='1", "org-a'; delete from cfg.orgs; --", "%", "org-a/%",
                                 "../org-a", "a" * 5000])
def test_sql_looking_refs_are_just_not_found(shared, ref):
    conn, world = shared
    count = "select count(*) as n from cfg.orgs"
    before = conn.execute(count).fetchone()["n"]
    assert answer(conn, world["admin"], "select * from cfg.find_org(%s)", (ref,))[0] == "PT404"
    assert answer(conn, world["admin"], "select * from cfg.find_automation(%s, 'org-a')", (ref,))[0] == "PT404"
    assert answer(conn, world["admin"], "select * from cfg.find_environment(%s, %s)", (world.org_a, ref))[0] == "PT404"
    assert conn.execute(count).fetchone()["n"] == before
    conn.rollback()


def test_find_environment_names_the_available_ones_to_members_only(shared):
    conn, world = shared
    sql = "select * from cfg.find_environment(%s, 'qa')"
    mine = answer(conn, world["viewer"], sql, (world.org_a,))
    assert mine[0] == "PT404" and json.loads(mine[2])["available"] == ["dev", "prod", "staging"]
    theirs = answer(conn, world["admin"], sql, (world.org_b,))
    assert theirs[0] == "PT404" and json.loads(theirs[2])["available"] is None
    conn.rollback()


def test_unknown_change_status_is_invalid(shared):
    conn, world = shared
    for status in ("done", "PENDING", "'; drop table cfg.orgs; --"):
        code, message, _ = answer(conn, world["viewer"], "select * from cfg.list_environment_changes(%s, %s)",
                                  (world.org_a, status))
        assert code == "PT422" and "unknown change status" in message
    assert answer(conn, world["viewer"], "select * from cfg.list_environment_changes(%s, null)",
                  (world.org_a,))[0] == "ok"
    conn.rollback()


# =============================================================================
# The webhook host allowlist: the operator (service key) writes it, the org's admins read it
# =============================================================================


def allowlist(conn, org) -> list[str]:
    return [r["host"] for r in conn.execute(
        "select host from cfg.webhook_allowed_hosts where org_id = %s order by host", (org,))]


def audit_rows(conn, org) -> list[tuple]:
    return [(r["operation"], r["actor_role"]) for r in conn.execute(
        "select operation, actor_role from cfg.audit_log where org_id = %s and table_name = 'webhook_allowed_hosts' "
        "order by id", (org,))]


@pytest.mark.parametrize("given, stored", [
    ("Hooks.Internal.", "hooks.internal"),
    ("  10.0.0.5 ", "10.0.0.5"),
    ("10.0.0.9/8", "10.0.0.0/8"),
    ("0:0:0:0:0:0:0:1", "::1"),
    ("[fd00::1]", "fd00::1"),
    ("fd00::1/64", "fd00::/64"),
    ("localhost", "localhost"),
])
def test_allowed_hosts_are_normalised_as_the_guard_compares_them(conn, world, given, stored):
    with acting_as(conn, world["service"]) as cur:
        row = cur.execute("select * from cfg.allow_webhook_host(%s, %s)", (world.org_a, given)).fetchone()
    assert row["host"] == stored and row["org_id"] == world.org_a
    assert allowlist(conn, world.org_a) == [stored]


def test_allowing_is_idempotent_and_audited_once(conn, world):
    service = world["service"]
    with acting_as(conn, service) as cur:
        first = cur.execute("select * from cfg.allow_webhook_host(%s, '10.0.0.0/24')", (world.org_a,)).fetchone()
    with acting_as(conn, service) as cur:
        again = cur.execute("select * from cfg.allow_webhook_host(%s, '10.0.0.7/24')", (world.org_a,)).fetchone()
    assert again["id"] == first["id"] and allowlist(conn, world.org_a) == ["10.0.0.0/24"]
    assert audit_rows(conn, world.org_a) == [("INSERT", "service_role")]
    # The entry does what it says: an admin may now add an endpoint on that network.
    with acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.create_webhook_endpoint(%s, 'http://10.0.0.5:8080/hook')", (world.org_a,))
    with acting_as(conn, service) as cur:
        gone = cur.execute("select * from cfg.disallow_webhook_host(%s, '10.0.0.0/24')", (world.org_a,)).fetchone()
    assert gone["id"] == first["id"] and allowlist(conn, world.org_a) == []
    assert audit_rows(conn, world.org_a) == [("INSERT", "service_role"), ("DELETE", "service_role")]
    with pytest.raises(CfgError) as refused, acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.create_webhook_endpoint(%s, 'http://10.0.0.6:8080/hook')", (world.org_a,))
    assert refused.value.code == "PT422"


@pytest.mark.parametrize("host", ["", "   ", None, "127.1", "2130706433", "0x7f.1", "10.0.0.01", "a..b",
                                  "host:80", "http://hooks.internal", "hooks.internal/path", "10.0.0.0/33",
                                  "::1/129", "10.0.0.0/", "x'; delete from cfg.webhook_allowed_hosts; --",
                                  "bücher.example", "a" * 254, "*.internal"])
def test_bad_hosts_are_refused_and_change_nothing(conn, world, host):
    with acting_as(conn, world["service"]) as cur:
        cur.execute("select cfg.allow_webhook_host(%s, 'kept.internal')", (world.org_a,))
    for rpc in ("allow_webhook_host", "disallow_webhook_host"):
        with pytest.raises(CfgError) as error, acting_as(conn, world["service"]) as cur:
            cur.execute(f"select cfg.{rpc}(%s, %s)", (world.org_a, host))  # noqa: S608
        assert error.value.code == "PT422", (rpc, host)
        assert "invalid webhook host" in str(error.value) and error.value.detail["field"] == "host"
    assert allowlist(conn, world.org_a) == ["kept.internal"]


def test_disallowing_a_host_that_is_not_there_is_not_found(conn, world):
    with acting_as(conn, world["service"]) as cur:
        cur.execute("select cfg.allow_webhook_host(%s, 'hooks.internal')", (world.org_b,))
    with pytest.raises(CfgError) as error, acting_as(conn, world["service"]) as cur:
        cur.execute("select cfg.disallow_webhook_host(%s, 'hooks.internal')", (world.org_a,))
    assert error.value.code == "PT404" and "not on this organisation's webhook allowlist" in str(error.value)
    assert allowlist(conn, world.org_b) == ["hooks.internal"]


def test_entries_written_before_normalisation_can_be_taken_off(conn, world):
    # The earlier `allow-host` stored lower(HOST) as given: such entries are removable as written.
    conn.execute("insert into cfg.webhook_allowed_hosts (org_id, host) values (%s, '10.0.0.9/8'), (%s, '127.1')",
                 (world.org_a, world.org_a))
    conn.commit()
    for written in ("10.0.0.9/8", "127.1"):
        with acting_as(conn, world["service"]) as cur:
            assert cur.execute("select host from cfg.disallow_webhook_host(%s, %s)",
                               (world.org_a, written)).fetchone()["host"] == written
    assert allowlist(conn, world.org_a) == []


def test_admins_read_the_allowlist_but_only_the_operator_changes_it(conn, world):
    with pytest.raises(CfgError) as error, acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.allow_webhook_host(%s, '10.0.0.1')", (world.org_a,))
    assert error.value.code == "PT403" and "operator (the service role)" in str(error.value)
    with pytest.raises(CfgError) as error, acting_as(conn, world["admin"]) as cur:
        cur.execute("select cfg.allow_webhook_host(%s, '10.0.0.1')", (world.org_b,))
    assert error.value.code == "PT404"
    with pytest.raises(CfgError) as error, acting_as(conn, world["service"]) as cur:
        cur.execute("select cfg.allow_webhook_host(%s, '10.0.0.1')", (uuid.uuid4(),))
    assert error.value.code == "PT404"
    assert allowlist(conn, world.org_a) == [] and allowlist(conn, world.org_b) == []


def test_no_setting_lets_an_admin_write_the_allowlist(conn, world):
    # The operator check reads the role the transaction runs as, never a client-settable claim.
    with pytest.raises(CfgError) as error, acting_as(conn, world["admin"]) as cur:
        cur.execute("select set_config('request.jwt.claims', %s, true)",
                    (json.dumps({"sub": str(world["admin"].user_id), "role": "service_role"}),))
        cur.execute("select set_config('request.jwt.claim.role', 'service_role', true)")
        cur.execute("select cfg.allow_webhook_host(%s, '10.0.0.1')", (world.org_a,))
    assert error.value.code == "PT403"
    assert allowlist(conn, world.org_a) == []


def test_my_invitations_are_those_addressed_to_me(conn, world):
    with acting_as(conn, world["admin"]) as cur:
        sent = cur.execute("select id from cfg.invite_member(%s, 'OUTSIDER@example.test', 'editor')",
                           (world.org_a,)).fetchone()["id"]
        cur.execute("select cfg.invite_member(%s, 'someone.else@example.test', 'viewer')", (world.org_a,))
        # The inviting admin reads every invitation of the org, and is invited to none.
        assert cur.execute("select * from cfg.my_invitations()").fetchall() == []
    with acting_as(conn, world["outsider"]) as cur:
        mine = cur.execute("select * from cfg.my_invitations()").fetchall()
    assert [(i["id"], i["org_id"], i["role"]) for i in mine] == [(sent, world.org_a, "editor")]


# =============================================================================
# The commands that call them
# =============================================================================


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def entry_point(args: tuple[str, ...]) -> None:
    """cli.main:main exactly as the console script runs it."""
    get_settings.cache_clear()
    sys.argv = ["cfgctl", *args]
    main()


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cfgctl(db_url, conn):
    env = {"CFGCTL_DB_URL": db_url, "CFGCTL_AS": None, "COLUMNS": "250", "NO_COLOR": "1"}
    conn.autocommit = True

    def run(*args: str) -> Run:
        result = CliRunner().invoke(entry_point, list(args), env=env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    yield run
    get_settings.cache_clear()


SERVICE_OPT = ("--service", "--json")
ADMIN_OPT = ("--as", "admin@example.test")


def test_webhook_allowlist_commands(cfgctl, world, conn):
    added = cfgctl("webhook", "allow-host", "org-a", "Hooks.Internal", *SERVICE_OPT)
    assert added.code == 0, added.err
    assert json.loads(added.out)["host"] == "hooks.internal"
    assert cfgctl("webhook", "allow-host", "org-a", "hooks.internal", *SERVICE_OPT).code == 0  # idempotent
    listed = cfgctl("webhook", "allowed-hosts", "org-a", *ADMIN_OPT, "--json")
    assert listed.code == 0 and [h["host"] for h in json.loads(listed.out)] == ["hooks.internal"]
    table = cfgctl("webhook", "allowed-hosts", "org-a", *ADMIN_OPT)
    assert "hooks.internal" in table.out
    # Exit codes: forbidden 4, invalid 6, not found 3; nothing changes.
    denied = cfgctl("webhook", "allow-host", "org-a", "10.0.0.1", *ADMIN_OPT)
    assert denied.code == 4 and "operator" in denied.err
    assert cfgctl("webhook", "allowed-hosts", "org-a", "--as", "editor@example.test").code == 4
    assert cfgctl("webhook", "allow-host", "org-a", "127.1", *SERVICE_OPT).code == 6
    assert cfgctl("webhook", "allow-host", "org-zz", "10.0.0.1", *SERVICE_OPT).code == 3
    assert cfgctl("webhook", "disallow-host", "org-a", "other.internal", *SERVICE_OPT).code == 3
    assert allowlist(conn, world.org_a) == ["hooks.internal"]
    removed = cfgctl("webhook", "disallow-host", "org-a", "hooks.internal", "--service")
    assert removed.code == 0 and "hooks.internal is no longer allowed" in removed.out
    assert allowlist(conn, world.org_a) == []


def test_commands_use_the_new_rpcs(cfgctl, world, conn):
    changes = cfgctl("env", "changes", "org-a", "--status", "nonsense", "--as", "viewer@example.test")
    assert changes.code == 6 and "unknown change status" in changes.err
    assert cfgctl("env", "request-change", "org-b", "prod", "--approval-off", *ADMIN_OPT).code == 3
    missing = cfgctl("webhook", "add", "org-a", "https://hooks.example.com/x", "--environment", "qa", *ADMIN_OPT)
    assert missing.code == 3 and "environment 'qa' does not exist" in missing.err
    # An admin's `invite list` shows the invitations addressed to them, not their org's.
    assert cfgctl("member", "invite", "org-a", "someone@example.test", *ADMIN_OPT).code == 0
    mine = cfgctl("invite", "list", *ADMIN_OPT, "--json")
    assert mine.code == 0 and json.loads(mine.out) == []
    # Versions by number and by environment, resolved through config_history and deployment_status.
    assert cfgctl("config", "diff", "org-a/billing", "1", "99", *ADMIN_OPT).code == 3
    assert cfgctl("config", "show", "org-a/billing", "--env", "prod", *ADMIN_OPT).code == 3
