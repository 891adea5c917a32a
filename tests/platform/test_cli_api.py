"""One API for the dashboard (issue 9, item 3): the CLI parses, calls one cfg.* RPC and
renders, so everything it shows a dashboard can show too. This file checks that cli/ holds
no other SQL, and that the commands go through the RPCs that replaced its hand-written
queries. The RPCs themselves: tests/tenancy/test_lookups.py (find_*, list_*, my_invitations),
tests/webhooks/test_webhooks_allowlist.py; their matrix lines in tests/<area>/test_<area>_rls.py."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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
# The commands that call them
# =============================================================================

ADMIN_OPT = ("--as", "admin@example.test")


def test_commands_use_the_new_rpcs(cfgctl, world):
    changes = cfgctl("env", "changes", "org-a", "--status", "nonsense", "--as", "viewer@example.test")
    assert changes.code == 6 and "unknown change status" in changes.err
    assert cfgctl("env", "request-change", "org-b", "prod", "--approval-off", *ADMIN_OPT).code == 3
    missing = cfgctl("webhook", "add", "org-a", "https://hooks.example.com/x", "--environment", "qa", *ADMIN_OPT)
    assert missing.code == 3 and "environment 'qa' does not exist" in missing.err
    # An admin's `invite list` shows the invitations addressed to them, not their org's.
    assert cfgctl("member", "invite", "org-a", "someone@example.test", *ADMIN_OPT).code == 0
    mine = cfgctl("invite", "list", *ADMIN_OPT, "--json")
    assert mine.code == 0 and mine.json() == []
    # Versions by number and by environment, resolved through config_history and deployment_status.
    assert cfgctl("config", "diff", "org-a/billing", "1", "99", *ADMIN_OPT).code == 3
    assert cfgctl("config", "show", "org-a/billing", "--env", "prod", *ADMIN_OPT).code == 3
