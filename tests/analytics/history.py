"""A history with known answers, written as the owner of the data (the superuser) with
chosen timestamps, in the first days of March 2026 (UTC; 2 March is a Monday): versions,
deployments, promotion requests, audit rows and validation events in org A, and noise in
org B at the same times that must never show in org A's numbers. The expected answers are
worked out by hand in tests/analytics/test_analytics.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg

from tests.support.act import attempt


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def _version(conn, org, automation, number: int, when: datetime, author) -> str:
    return conn.execute(
        "insert into cfg.config_versions (org_id, automation_id, version, content, content_hash, author_id,"
        " author_email, author_role, created_at) values (%s, %s, %s, '{\"sections\": {}}', 'h', %s, %s,"
        " 'authenticated', %s) returning id",
        (org, automation, number, author.user_id, author.email, when),
    ).fetchone()["id"]


def _deploy(conn, org, automation, env, version_id, number, when, source, actor, request=None) -> None:
    conn.execute(
        "insert into cfg.deployment_history (org_id, automation_id, environment_id, version, version_id, source,"
        " request_id, actor_id, actor_email, created_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (org, automation, env, number, version_id, source, request, actor.user_id, actor.email, when),
    )


def _request(conn, org, automation, envs, version_id, number, status, created, decided=None, comment=None):
    return conn.execute(
        "insert into cfg.promotion_requests (org_id, automation_id, from_environment_id, to_environment_id, version,"
        " version_id, status, decided_at, applied_at, decision_comment, created_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning id",
        (org, automation, envs["staging"], envs["prod"], number, version_id, status, decided,
         decided if status == "applied" else None, comment, created),
    ).fetchone()["id"]


def _audit(conn, org, actor, when: datetime) -> None:
    conn.execute(
        "insert into cfg.audit_log (org_id, actor_id, actor_email, actor_role, table_name, row_id, operation,"
        " created_at) values (%s, %s, %s, %s, 'automations', gen_random_uuid(), 'UPDATE', %s)",
        (org, actor.user_id if actor else None, actor.email if actor else None,
         "authenticated" if actor else "service_role", when),
    )


def _validation(conn, org, automation, env, to: str, when: datetime) -> None:
    conn.execute(
        "insert into cfg_private.events (org_id, type, subject_type, subject_id, automation_id, environment_id,"
        " payload, created_at) values (%s, 'validation.status_changed', 'automation', %s, %s, %s, %s, %s)",
        (org, automation, automation, env, json.dumps({"from": "valid", "to": to}), when),
    )


def environments(conn, org) -> dict:
    return {r["slug"]: r["id"] for r in conn.execute("select slug, id from cfg.environments where org_id = %s",
                                                      (org,))}


def write_history(conn: psycopg.Connection, world) -> dict:
    """Org A: billing (world.automation_a) and web; returns their ids and the environments."""
    a, editor, admin = world.org_a, world["editor"], world["admin"]
    web = conn.execute("insert into cfg.automations (org_id, name, slug) values (%s, 'Web', 'web') returning id",
                       (a,)).fetchone()["id"]
    envs = environments(conn, a)
    billing = world.automation_a
    # Versions: 2 March 09:10, 09:50, 14:00 billing (editor), 10:00 web (admin); 4 March
    # 08:00, 08:30 web (admin); 9 March 12:00 billing (editor).
    v1 = _version(conn, a, billing, 101, at(2, 9, 10), editor)
    _version(conn, a, billing, 102, at(2, 9, 50), editor)
    _version(conn, a, billing, 103, at(2, 14), editor)
    v4 = _version(conn, a, web, 101, at(2, 10), admin)
    v5 = _version(conn, a, web, 102, at(4, 8), admin)
    _version(conn, a, web, 103, at(4, 8, 30), admin)
    _version(conn, a, billing, 104, at(9, 12), editor)
    # Into dev when saved; into prod 2 h, 48 h and 4 h later; staging directly twice.
    _deploy(conn, a, billing, envs["dev"], v1, 101, at(2, 9, 10), "save", editor)
    _deploy(conn, a, web, envs["dev"], v4, 101, at(2, 10), "save", admin)
    _deploy(conn, a, web, envs["dev"], v5, 102, at(4, 8), "save", admin)
    _deploy(conn, a, billing, envs["staging"], v1, 101, at(2, 10, 30), "promotion", editor)
    _deploy(conn, a, web, envs["staging"], v5, 102, at(4, 9, 30), "promotion", admin)
    r1 = _request(conn, a, billing, envs, v1, 101, "applied", at(2, 10, 10), at(2, 11, 10))
    _deploy(conn, a, billing, envs["prod"], v1, 101, at(2, 11, 10), "promotion", admin, r1)
    _deploy(conn, a, web, envs["prod"], v4, 101, at(4, 10), "promotion", admin)
    _request(conn, a, web, envs, v4, 101, "rejected", at(3, 9), at(3, 9, 30), "not yet")
    _request(conn, a, web, envs, v4, 101, "superseded", at(4, 7))
    r4 = _request(conn, a, web, envs, v5, 102, "applied", at(4, 9), at(4, 12))
    _deploy(conn, a, web, envs["prod"], v5, 102, at(4, 12), "promotion", admin, r4)
    _request(conn, a, billing, envs, v1, 101, "pending", at(9, 9))
    # People: editor 3 on 2 March and 1 on 4 March; admin 1 on 2 March and 2 on 9 March;
    # the service key on 3 March (not a person).
    for when in (at(2, 9, 10), at(2, 9, 50), at(2, 14), at(4, 8)):
        _audit(conn, a, editor, when)
    for when in (at(2, 10), at(9, 12), at(9, 13)):
        _audit(conn, a, admin, when)
    _audit(conn, a, None, at(3, 12))
    # Validation: prod into errors on 3 and 9 March, staging into warnings on 3 March.
    _validation(conn, a, billing, envs["prod"], "errors", at(3, 10))
    _validation(conn, a, web, envs["staging"], "warnings", at(3, 11))
    _validation(conn, a, billing, envs["prod"], "errors", at(9, 10))
    _noise(conn, world)
    return {"billing": billing, "web": web, "envs": envs}


def _noise(conn, world) -> None:
    """Org B, busy at the same times: none of it may reach org A's numbers."""
    b, other = world.org_b, world["other_admin"]
    envs = environments(conn, b)
    for i in range(5):
        v = _version(conn, b, world.automation_b, 200 + i, at(2, 9 + i), other)
        _deploy(conn, b, world.automation_b, envs["dev"], v, 200 + i, at(2, 9 + i), "save", other)
        _deploy(conn, b, world.automation_b, envs["prod"], v, 200 + i, at(2, 20), "promotion", other)
        _audit(conn, b, other, at(3, 9 + i))
        _validation(conn, b, world.automation_b, envs["prod"], "errors", at(3, 10))
    _request(conn, b, world.automation_b, envs, v, 204, "rejected", at(2, 9), at(2, 9, 5), "no")


def call(conn, who, fn: str, *args, **named):
    """cfg.<fn>(args, name => value) as who; the jsonb answer, or raises AssertionError with the refusal."""
    params = [*args, *named.values()]
    placeholders = [*["%s"] * len(args), *[f"{k} => %s" for k in named]]
    outcome = attempt(conn, who, f"select cfg.{fn}({', '.join(placeholders)}) as r", params)
    assert outcome.ok, (outcome.code, outcome.message, outcome.detail)
    return outcome.rows[0]["r"]
