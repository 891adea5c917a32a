"""save_config, optimistic locking, merge, history, diff and rollback (issue 3, parts 1-4, 6)."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
from psycopg.rows import dict_row

from sync_service.db import CfgError, acting_as
from tests.support.versioning import (
    content,
    events,
    head,
    live,
    refused,
    rpc,
    save,
    snapshot_counts,
    version_id,
)

SECRET = "sk_live_hunter2"


def _dev(conn, org_id):
    row = conn.execute("select id from cfg.environments where org_id = %s and slug = 'dev'", (org_id,)).fetchone()
    conn.commit()
    return row["id"]


def test_world_content_is_version_1_from_its_direct_writes(conn, world):
    rows = conn.execute(
        "select version, kind, author_email, content from cfg.config_versions where automation_id = %s",
        (world.automation_a,),
    ).fetchall()
    assert [(r["version"], r["kind"], r["author_email"]) for r in rows] == [(1, "direct", "admin@example.test")]
    entries = rows[0]["content"]["sections"]["http"]["entries"]
    assert entries["port"] == {"value": 8080, "secret": False, "description": ""}
    assert entries["api_key"]["secret"] is True and "value" not in entries["api_key"]
    assert SECRET not in json.dumps(rows[0]["content"])


def test_save_replaces_content_records_version_deploys_to_dev_and_emits(conn, world):
    a = world.automation_a
    body = content({"http": {"port": 9090, "api_key": ("secret",), "host": "example.org"}, "db": {"pool": 5}})
    result = save(conn, world["editor"], a, 1, body, "bigger pool")
    assert result["created"] is True and result["version"] == 2 and result["parent_version"] == 1
    assert live(conn, a) == {
        "http": {"port": 9090, "api_key": ("secret", SECRET), "host": "example.org"},
        "db": {"pool": 5},
    }
    version = conn.execute("select * from cfg.config_versions where id = %s", (result["version_id"],)).fetchone()
    assert version["message"] == "bigger pool"
    assert version["author_email"] == "editor@example.test"
    assert version["author_id"] == world["editor"].user_id
    assert version["content_hash"] == result["content_hash"]
    deployment = conn.execute(
        "select d.version, e.slug from cfg.deployments d join cfg.environments e on e.id = d.environment_id "
        "where d.automation_id = %s",
        (a,),
    ).fetchall()
    assert deployment == [{"version": 2, "slug": "dev"}]
    saved = [e for e in events(conn, "config.saved") if e["payload"]["version"] == 2]
    assert len(saved) == 1
    event = saved[0]
    assert event["environment_id"] == _dev(conn, world.org_a)
    assert event["automation_id"] == a and str(event["subject_id"]) == result["version_id"]
    assert {(c["section"], c["key"], c["change"]) for c in event["payload"]["changes"]} == {
        ("http", "port", "changed"), ("http", "host", "added"), ("db", "pool", "added"),
    }


def test_identical_content_creates_no_version_and_no_event(conn, world):
    a = world.automation_a
    body = content({"http": {"port": 8080, "api_key": ("secret",)}})
    before = snapshot_counts(conn)
    result = save(conn, world["editor"], a, 1, body, "nothing new")
    assert result["created"] is False and result["version"] == 1
    after = snapshot_counts(conn)
    assert after == before
    # The same secret value sent again is identical content too.
    result = save(conn, world["editor"], a, 1, content({"http": {"port": 8080, "api_key": ("secret", SECRET)}}))
    assert result["created"] is False


def test_a_saved_version_equals_the_live_tables_so_a_no_op_direct_write_adds_none(conn, world):
    # The version is built from the content that was written (defaults left out, a
    # kept secret, descriptions and positions given); read back from the tables it
    # must be the same snapshot, or the next direct write would record a phantom change.
    a = world.automation_a
    body = content({"http": {"port": 8081, "api_key": ("secret",), "tls": True}, "db": {"pool": {"max": 5}}})
    body["sections"]["db"].update(description="database", position=2)
    body["sections"]["http"]["entries"]["tls"]["description"] = "terminate TLS"
    result = save(conn, world["editor"], a, 1, body)
    row = conn.execute(
        "select v.content, "
        "cfg_private.content_snapshot(v.automation_id, cfg_private.live_content(v.automation_id)) as live "
        "from cfg.config_versions v where v.id = %s",
        (result["version_id"],),
    ).fetchone()
    conn.commit()
    assert row["content"] == row["live"]
    assert row["content"]["sections"]["db"] == {
        "description": "database", "position": 2,
        "entries": {"pool": {"value": {"max": 5}, "secret": False, "description": ""}},
    }
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set description = description where automation_id = %s", (a,))
    assert head(conn, a) == 2


def test_a_number_written_differently_is_new_content(conn, world):
    # 8080 and 8080.0 are equal jsonb but not the same text: a save changes the value
    # and records a version, and sending it again is identical content.
    a = world.automation_a
    first = save(conn, world["editor"], a, 1, content({"http": {"port": 8080.0, "api_key": ("secret",)}}))
    assert first["created"] is True
    value = conn.execute(
        "select value::text as v from cfg.config_entries where automation_id = %s and key = 'port'", (a,)
    ).fetchone()["v"]
    conn.commit()
    assert value == "8080.0"
    again = save(conn, world["editor"], a, 2, content({"http": {"port": 8080.0, "api_key": ("secret",)}}))
    assert again["created"] is False


def test_the_saved_event_lists_every_changed_key_by_kind(conn, world):
    a = world.automation_a
    first = content({"http": {"port": 8080, "api_key": ("secret",), "host": "h"}, "db": {"a": 1, "b": 2}})
    save(conn, world["editor"], a, 1, first)
    body = content({"http": {"port": 1, "api_key": ("secret", "new")}, "cache": {"ttl": 5}})
    result = save(conn, world["editor"], a, 2, body)
    event = [e for e in events(conn, "config.saved") if e["payload"]["version"] == result["version"]][0]
    # Removed (with the entries of a removed section), changed, added; each by section and key.
    assert event["payload"]["changes"] == [
        {"section": "db", "key": "a", "change": "removed", "secret": False},
        {"section": "db", "key": "b", "change": "removed", "secret": False},
        {"section": "http", "key": "host", "change": "removed", "secret": False},
        {"section": "http", "key": "api_key", "change": "changed", "secret": True},
        {"section": "http", "key": "port", "change": "changed", "secret": False},
        {"section": "cache", "key": "ttl", "change": "added", "secret": False},
    ]
    assert "new" not in json.dumps(event["payload"]["changes"])
    assert live(conn, a) == {"http": {"port": 1, "api_key": ("secret", "new")}, "cache": {"ttl": 5}}


def test_secret_rotation_is_a_new_version_without_the_value_anywhere(conn, world):
    a = world.automation_a
    rotated = "sk_live_rotated_42"
    result = save(conn, world["editor"], a, 1, content({"http": {"port": 8080, "api_key": ("secret", rotated)}}))
    assert result["created"] is True
    assert live(conn, a)["http"]["api_key"] == ("secret", rotated)
    v1 = version_id(conn, a, 1)
    with acting_as(conn, world["viewer"]) as cur:
        versions = cur.execute("select content from cfg.config_versions").fetchall()
        diff = cur.execute("select cfg.diff_versions(%s, %s) as d", (v1, result["version_id"])).fetchone()["d"]
    text = json.dumps(versions) + json.dumps(diff)
    assert SECRET not in text and rotated not in text
    assert diff["changes"] == [
        {"section": "http", "key": "api_key", "change": "changed", "secret": True, "fields": ["value"]}
    ]
    audit = conn.execute("select old_values, new_values from cfg.audit_log").fetchall()
    all_events = conn.execute("select payload from cfg_private.events").fetchall()
    conn.commit()
    for blob in (json.dumps(audit, default=str), json.dumps(all_events, default=str)):
        assert SECRET not in blob and rotated not in blob


def test_new_secret_without_value_and_plain_entry_without_value_are_refused(conn, world):
    err = refused(
        conn, world["editor"], "select cfg.save_config(%s, 1, %s::jsonb)",
        (world.automation_a, json.dumps(content({"http": {"port": 8080, "token": ("secret",)}}))), "PT422",
    )
    assert err.detail["errors"][0]["path"] == "sections.http.entries.token.value"
    err = refused(
        conn, world["editor"], "select cfg.save_config(%s, 1, %s::jsonb)",
        (world.automation_a, json.dumps({"sections": {"http": {"entries": {"port": {"secret": False}}}}})), "PT422",
    )
    assert err.detail["errors"][0]["message"] == "a plain entry needs a value"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (None, ""),
        ([], ""),
        ({}, "sections"),
        ({"sections": []}, "sections"),
        ({"sections": {}, "extra": 1}, "extra"),
        ({"sections": {"bad name": {"entries": {}}}}, "sections.bad name"),
        ({"sections": {"http": []}}, "sections.http"),
        ({"sections": {"http": {"entries": [], "position": 1}}}, "sections.http.entries"),
        ({"sections": {"http": {"entries": {}, "position": -1}}}, "sections.http.position"),
        ({"sections": {"http": {"entries": {}, "colour": "red"}}}, "sections.http.colour"),
        ({"sections": {"http": {"entries": {"bad key!": {"value": 1}}}}}, "sections.http.entries.bad key!"),
        ({"sections": {"http": {"entries": {"port": 8080}}}}, "sections.http.entries.port"),
        ({"sections": {"http": {"entries": {"port": {"value": 1, "secret": "yes"}}}}},
         "sections.http.entries.port.secret"),
        ({"sections": {"http": {"entries": {"port": {"value": 1, "kind": "x"}}}}}, "sections.http.entries.port.kind"),
        ({"sections": {"http": {"entries": {"port": {"value": 1, "description": 5}}}}},
         "sections.http.entries.port.description"),
    ],
)
def test_malformed_content_is_refused_with_its_path_and_changes_nothing(conn, world, body, path):
    err = refused(
        conn, world["editor"], "select cfg.save_config(%s, 1, %s::jsonb)",
        (world.automation_a, None if body is None else json.dumps(body)), "PT422",
    )
    assert path in [e["path"] for e in err.detail["errors"]]


def test_every_problem_is_reported_at_once(conn, world):
    body = {"sections": {"a b": {"entries": {}}, "http": {"entries": {"x y": {"value": 1}, "p": {"v": 1}}}}}
    err = refused(conn, world["editor"], "select cfg.save_config(%s, 1, %s::jsonb)",
                  (world.automation_a, json.dumps(body)), "PT422")
    paths = {e["path"] for e in err.detail["errors"]}
    assert {"sections.a b", "sections.http.entries.x y", "sections.http.entries.p.v"} <= paths


def test_stale_expected_version_is_a_409_with_what_a_conflict_dialog_needs(conn, world):
    a = world.automation_a
    save(conn, world["admin"], a, 1, content({"http": {"port": 1, "api_key": ("secret",), "tls": True}}), "admin edit")
    err = refused(
        conn, world["editor"], "select cfg.save_config(%s, 1, %s::jsonb, 'mine')",
        (a, json.dumps(content({"http": {"port": 2, "api_key": ("secret",)}}))), "PT409",
    )
    detail = err.detail
    assert detail["expected_version"] == 1 and detail["current_version"] == 2
    assert detail["author_email"] == "admin@example.test"
    assert detail["author_id"] == str(world["admin"].user_id)
    assert detail["message"] == "admin edit" and detail["saved_at"]
    assert sorted((c["section"], c["key"], c["change"]) for c in detail["changed_keys"]) == [
        ("http", "port", "changed"), ("http", "tls", "added"),
    ]
    assert "version conflict" in str(err)
    # Too new, negative and missing expected versions are refused too.
    refused(conn, world["editor"], "select cfg.save_config(%s, 7, '{\"sections\": {}}')", (a,), "PT409")
    refused(conn, world["editor"], "select cfg.save_config(%s, -1, '{\"sections\": {}}')", (a,), "PT422")
    refused(conn, world["editor"], "select cfg.save_config(%s, null, '{\"sections\": {}}')", (a,), "PT422")


def test_first_save_of_an_empty_automation_expects_version_0(conn, world):
    b = world.automation_b
    refused(conn, world["other_admin"], "select cfg.save_config(%s, 1, '{\"sections\": {}}')", (b,), "PT409")
    result = save(conn, world["other_admin"], b, 0, content({"main": {"debug": False}}))
    assert result["version"] == 1 and result["parent_version"] is None


def test_two_sessions_saving_from_the_same_base_exactly_one_wins(conn, world, db_url):
    """Session 1 holds its save open; session 2 waits on the automation's lock, then gets PT409."""
    a = world.automation_a
    mine = content({"http": {"port": 1111, "api_key": ("secret",)}})
    theirs = content({"http": {"port": 2222, "api_key": ("secret",)}})
    outcome: dict = {}
    first = psycopg.connect(db_url, row_factory=dict_row)
    second = psycopg.connect(db_url, row_factory=dict_row)
    try:
        holder = acting_as(first, world["editor"])
        cur = holder.__enter__()
        cur.execute("select cfg.save_config(%s, 1, %s::jsonb, 'first') as r", (a, json.dumps(mine)))
        outcome["first"] = cur.fetchone()["r"]

        def contender():
            try:
                outcome["second"] = save(second, world["admin"], a, 1, theirs, "second")
            except CfgError as exc:
                outcome["second"] = exc

        thread = threading.Thread(target=contender)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second save must wait for the first one's lock"
        holder.__exit__(None, None, None)
        thread.join(10)
    finally:
        first.close()
        second.close()
    assert outcome["first"]["version"] == 2
    err = outcome["second"]
    assert isinstance(err, CfgError) and err.code == "PT409"
    assert err.detail["current_version"] == 2 and err.detail["author_email"] == "editor@example.test"
    assert err.detail["changed_keys"] == [{"section": "http", "key": "port", "change": "changed", "secret": False}]
    assert head(conn, a) == 2
    assert live(conn, a)["http"]["port"] == 1111


def test_merge_takes_both_sides_and_reports_field_conflicts(conn, world):
    a = world.automation_a
    # theirs: port changed, tls added, api_key rotated.
    save(conn, world["admin"], a, 1, content({"http": {"port": 9000, "tls": True, "api_key": ("secret", "rot")}}))
    mine = content({"http": {"port": 8443, "api_key": ("secret",), "timeout": 30}, "db": {"pool": 3}})
    result = rpc(
        conn, world["editor"], "select cfg.merge_config(%s, %s, %s::jsonb) as r",
        (version_id(conn, a, 1), version_id(conn, a, 2), json.dumps(mine)),
    )["r"]
    merged = result["merged"]["sections"]
    assert set(merged) == {"http", "db"}
    assert merged["http"]["entries"]["tls"]["value"] is True  # theirs
    assert merged["http"]["entries"]["timeout"]["value"] == 30  # mine
    assert merged["http"]["entries"]["api_key"] == {"secret": True, "description": ""}  # theirs, value kept
    assert merged["http"]["entries"]["port"]["value"] == 8443  # conflict: mine kept
    assert result["conflicts"] == [{
        "section": "http", "key": "port",
        "base": {"value": 8080, "secret": False, "description": ""},
        "theirs": {"value": 9000, "secret": False, "description": ""},
        "mine": {"value": 8443, "secret": False, "description": ""},
    }]
    assert "rot" not in json.dumps(result) and SECRET not in json.dumps(result)
    # The merged content saves on top of theirs and keeps theirs' rotated secret.
    saved = save(conn, world["editor"], a, 2, result["merged"], "merged")
    assert saved["version"] == 3
    assert live(conn, a)["http"]["api_key"] == ("secret", "rot")


def test_merge_conflict_on_a_secret_never_shows_values(conn, world):
    a = world.automation_a
    save(conn, world["admin"], a, 1, content({"http": {"port": 8080, "api_key": ("secret", "theirs-secret")}}))
    mine = content({"http": {"port": 8080, "api_key": ("secret", "mine-secret")}})
    result = rpc(
        conn, world["editor"], "select cfg.merge_config(%s, %s, %s::jsonb) as r",
        (version_id(conn, a, 1), version_id(conn, a, 2), json.dumps(mine)),
    )["r"]
    assert result["conflicts"] == [{
        "section": "http", "key": "api_key",
        "base": {"secret": True}, "theirs": {"secret": True}, "mine": {"secret": True},
    }]
    text = json.dumps(result["conflicts"])
    assert "theirs-secret" not in text and SECRET not in text


def test_merge_refuses_viewers_foreign_and_mismatched_versions(conn, world):
    a = world.automation_a
    save(conn, world["admin"], a, 1, content({"http": {"port": 1, "api_key": ("secret",)}}))
    save(conn, world["other_admin"], world.automation_b, 0, content({"main": {"x": 1}}))
    v1, v2, other = version_id(conn, a, 1), version_id(conn, a, 2), version_id(conn, world.automation_b, 1)
    mine = json.dumps(content({"http": {"port": 5}}))
    sql = "select cfg.merge_config(%s, %s, %s::jsonb)"
    refused(conn, world["viewer"], sql, (v1, v2, mine), "PT403")
    refused(conn, world["outsider"], sql, (v1, v2, mine), "PT404")
    refused(conn, world["other_admin"], sql, (v1, v2, mine), "PT404")
    # Another org's version is not found, like a missing one (issue 8): never PT422.
    refused(conn, world["editor"], sql, (v1, other, mine), "PT404")
    sibling = rpc(conn, world["editor"], "select id from cfg.create_automation(%s, 'Sibling', 'sibling')",
                  (world.org_a,))["id"]
    save(conn, world["editor"], sibling, 0, content({"main": {"x": 1}}))
    refused(conn, world["editor"], sql, (v1, version_id(conn, sibling, 1), mine), "PT422")
    refused(conn, world["editor"], sql, (v1, v2, '{"sections": 1}'), "PT422")


def test_history_lists_versions_newest_first_with_author_and_message(conn, world):
    a = world.automation_a
    for n in range(2, 6):
        save(conn, world["editor"], a, n - 1, content({"http": {"port": n, "api_key": ("secret",)}}), f"save {n}")
    with acting_as(conn, world["viewer"]) as cur:
        page = cur.execute("select * from cfg.config_history(%s, 3)", (a,)).fetchall()
        rest = cur.execute("select * from cfg.config_history(%s, 3, %s)", (a, page[-1]["version"])).fetchall()
    assert [r["version"] for r in page] == [5, 4, 3]
    assert [r["version"] for r in rest] == [2, 1]
    assert page[0]["message"] == "save 5" and page[0]["author_email"] == "editor@example.test"
    assert page[0]["created_at"] is not None and page[0]["kind"] == "save"
    assert "content" not in page[0]
    assert page[0]["changes"] == [{"section": "http", "key": "port", "change": "changed", "secret": False}]
    refused(conn, world["viewer"], "select * from cfg.config_history(%s, 0)", (a,), "PT422")
    refused(conn, world["other_admin"], "select * from cfg.config_history(%s)", (a,), "PT404")


def test_diff_lists_added_removed_and_changed_with_values(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, 1, content({
        "http": {"port": 9090, "api_key": ("secret",)},
        "db": {"url": "postgres://db", "pool": {"min": 1, "max": 5}},
    }))
    save(conn, world["editor"], a, 2, content({
        "http": {"api_key": ("secret", "new")},
        "db": {"url": "postgres://db2", "pool": {"min": 1, "max": 5}},
    }))
    v1, v2, v3 = (version_id(conn, a, n) for n in (1, 2, 3))
    with acting_as(conn, world["viewer"]) as cur:
        diff = cur.execute("select cfg.diff_versions(%s, %s) as d", (v1, v3)).fetchone()["d"]
    assert diff["from"]["version"] == 1 and diff["to"]["version"] == 3
    assert diff["summary"] == {"added": 2, "removed": 1, "changed": 1, "sections_changed": 1}
    by_key = {(c["section"], c["key"]): c for c in diff["changes"]}
    assert by_key[("db", "url")]["change"] == "added" and by_key[("db", "url")]["new_value"] == "postgres://db2"
    assert by_key[("db", "pool")]["new_value"] == {"min": 1, "max": 5}
    assert by_key[("http", "port")] == {
        "section": "http", "key": "port", "change": "removed", "secret": False, "fields": [], "old_value": 8080,
    }
    assert by_key[("http", "api_key")] == {
        "section": "http", "key": "api_key", "change": "changed", "secret": True, "fields": ["value"],
    }
    assert diff["sections"] == [{"section": "db", "change": "added", "old": None,
                                 "new": {"description": "", "position": 0}}]
    # 2 -> 3: a changed value shows old and new; unchanged keys are not listed.
    with acting_as(conn, world["viewer"]) as cur:
        back = cur.execute("select cfg.diff_versions(%s, %s) as d", (v2, v3)).fetchone()["d"]
    by_key = {(c["section"], c["key"]): c for c in back["changes"]}
    assert set(by_key) == {("db", "url"), ("http", "port"), ("http", "api_key")}
    assert by_key[("db", "url")] == {
        "section": "db", "key": "url", "change": "changed", "secret": False, "fields": ["value"],
        "old_value": "postgres://db", "new_value": "postgres://db2",
    }
    assert by_key[("http", "port")]["old_value"] == 9090


def test_diff_refuses_unknown_foreign_and_cross_automation_versions(conn, world):
    a = world.automation_a
    save(conn, world["other_admin"], world.automation_b, 0, content({"main": {"x": 1}}))
    v1, other = version_id(conn, a, 1), version_id(conn, world.automation_b, 1)
    sql = "select cfg.diff_versions(%s, %s)"
    refused(conn, world["editor"], sql, (v1, other), "PT404")  # other org's version is invisible
    refused(conn, world["service"], sql, (v1, other), "PT422")  # visible to service: different automations
    refused(conn, world["editor"], sql, (v1, "00000000-0000-0000-0000-000000000000"), "PT404")
    refused(conn, world["outsider"], sql, (v1, v1), "PT404")


def test_rollback_round_trip_restores_content_and_secret_as_a_new_version(conn, world):
    a = world.automation_a
    original = live(conn, a)
    save(conn, world["editor"], a, 1, content({"http": {"port": 1, "api_key": ("secret", "v2-secret")}, "x": {"y": 2}}))
    save(conn, world["editor"], a, 2, content({"x": {"y": 3}}))
    assert live(conn, a) == {"x": {"y": 3}}
    result = rpc(conn, world["editor"], "select cfg.rollback(%s, 1, 'back to the start') as r", (a,))["r"]
    assert result["created"] is True and result["version"] == 4 and result["parent_version"] == 3
    assert live(conn, a) == original
    rows = conn.execute(
        "select version, kind, restored_from, content_hash, message from cfg.config_versions "
        "where automation_id = %s order by version", (a,),
    ).fetchall()
    assert [r["version"] for r in rows] == [1, 2, 3, 4]  # append-only
    assert rows[3]["kind"] == "rollback" and rows[3]["restored_from"] == 1
    assert rows[3]["content_hash"] == rows[0]["content_hash"]
    assert rows[3]["message"] == "back to the start"
    rolled = events(conn, "config.rolled_back")
    assert len(rolled) == 1 and rolled[0]["payload"]["restored_from"] == 1
    assert rolled[0]["environment_id"] == _dev(conn, world.org_a)
    # Rolling back to version 2 restores the secret that version 2 had.
    rpc(conn, world["editor"], "select cfg.rollback(%s, 2) as r", (a,))
    assert live(conn, a)["http"]["api_key"] == ("secret", "v2-secret")
    # Rolling back to identical content is no new version.
    again = rpc(conn, world["editor"], "select cfg.rollback(%s, 2) as r", (a,))["r"]
    assert again["created"] is False and again["version"] == 5


def test_rollback_respects_roles_locking_and_versions(conn, world):
    a = world.automation_a
    save(conn, world["editor"], a, 1, content({"http": {"port": 2, "api_key": ("secret",)}}))
    sql = "select cfg.rollback(%s, %s, null, %s)"
    refused(conn, world["viewer"], sql, (a, 1, None), "PT403")
    refused(conn, world["other_admin"], sql, (a, 1, None), "PT404")
    refused(conn, world["anon"], sql, (a, 1, None), "42501")
    refused(conn, world["editor"], sql, (a, 1, 1), "PT409")  # someone saved version 2 meanwhile
    refused(conn, world["editor"], sql, (a, 9, None), "PT404")
    refused(conn, world["editor"], sql, (world.automation_b, 1, None), "PT404")
    assert rpc(conn, world["editor"], sql + " as r", (a, 1, 2))["r"]["version"] == 3


def test_unknown_and_foreign_automations_are_not_found(conn, world):
    body = json.dumps(content({"main": {"x": 1}}))
    sql = "select cfg.save_config(%s, 0, %s::jsonb)"
    refused(conn, world["editor"], sql, ("00000000-0000-0000-0000-000000000000", body), "PT404")
    refused(conn, world["editor"], sql, (world.automation_b, body), "PT404")
    refused(conn, world["editor"], sql, ("not-a-uuid", body), "22P02")


def test_direct_writes_are_versioned_once_per_transaction(conn, world):
    a = world.automation_a
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set value = '9999' where key = 'port'")
        cur.execute(
            "insert into cfg.config_entries (org_id, automation_id, section_id, key, value) "
            "values (%s, %s, %s, 'debug', 'true')",
            (world.org_a, a, world.section_a),
        )
        cur.execute("update cfg.config_entries set value = '\"direct-secret\"' where is_secret")
    rows = conn.execute(
        "select version, kind, author_email, content from cfg.config_versions "
        "where automation_id = %s order by version", (a,),
    ).fetchall()
    assert [(r["version"], r["kind"]) for r in rows] == [(1, "direct"), (2, "direct")]
    assert rows[1]["author_email"] == "editor@example.test"
    entries = rows[1]["content"]["sections"]["http"]["entries"]
    assert entries["port"]["value"] == 9999 and entries["debug"]["value"] is True
    assert entries["api_key"]["digest"] != rows[0]["content"]["sections"]["http"]["entries"]["api_key"]["digest"]
    assert "direct-secret" not in json.dumps(rows[1]["content"])
    # A direct write that changes nothing is no version; viewers still cannot write.
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set value = '9999' where key = 'port'")
    assert head(conn, a) == 2
    with acting_as(conn, world["viewer"]) as cur:
        assert cur.execute("update cfg.config_entries set value = '1' returning id").fetchall() == []
    # The service role keeps working, versioned too; rollback restores the direct secret.
    with acting_as(conn, world["service"]) as cur:
        cur.execute("delete from cfg.config_entries where key = 'debug'")
    assert head(conn, a) == 3
    rpc(conn, world["editor"], "select cfg.rollback(%s, 1)", (a,))
    assert live(conn, a)["http"] == {"port": 8080, "api_key": ("secret", SECRET)}


def test_versions_are_immutable_even_for_the_database_owner(conn, world):
    with pytest.raises(psycopg.Error) as info:
        conn.execute("update cfg.config_versions set message = 'rewritten'")
    conn.rollback()
    assert info.value.sqlstate == "PT403"


def test_deleting_an_automation_removes_its_versions(conn, world):
    save(conn, world["other_admin"], world.automation_b, 0, content({"main": {"x": 1}}))
    rpc(conn, world["other_admin"], "select cfg.delete_automation(%s)", (world.automation_b,))
    assert head(conn, world.automation_b) == 0


def test_get_config_returns_content_ready_to_edit(conn, world):
    a = world.automation_a
    with acting_as(conn, world["viewer"]) as cur:
        got = cur.execute("select cfg.get_config(%s) as c", (a,)).fetchone()["c"]
    assert got["version"] == 1
    assert got["content"] == {"sections": {"http": {"description": "", "position": 0, "entries": {
        "port": {"value": 8080, "secret": False, "description": ""},
        "api_key": {"secret": True, "description": ""},
    }}}}
    # Saving it back unchanged is no new version.
    assert save(conn, world["editor"], a, 1, got["content"])["created"] is False
    refused(conn, world["viewer"], "select cfg.get_config(%s, 5)", (a,), "PT404")


def test_a_save_is_audited_by_its_version_row_and_direct_writes_row_by_row(conn, world):
    a = world.automation_a
    before = conn.execute("select coalesce(max(id), 0) as id from cfg.audit_log").fetchone()["id"]
    conn.commit()
    result = save(conn, world["editor"], a, 1, content({"http": {"port": 1, "api_key": ("secret", "new-secret")}}))
    rows = conn.execute("select * from cfg.audit_log where id > %s order by id", (before,)).fetchall()
    conn.commit()
    assert [(r["table_name"], r["operation"]) for r in rows] == [("config_versions", "INSERT")]
    audit = rows[0]
    assert audit["actor_email"] == "editor@example.test" and audit["automation_id"] == a
    assert str(audit["row_id"]) == result["version_id"]
    # The entry names the version and the keys it changed; the snapshot stays in the version.
    assert audit["new_values"]["version"] == result["version"] and "content" not in audit["new_values"]
    assert audit["new_values"]["content_hash"] == result["content_hash"]
    assert audit["new_values"]["changes"] == [
        {"section": "http", "key": "api_key", "change": "changed", "secret": True},
        {"section": "http", "key": "port", "change": "changed", "secret": False},
    ]
    assert "new-secret" not in json.dumps(audit["new_values"])
    # Editors read it through cfg.audit_events.
    with acting_as(conn, world["editor"]) as cur:
        logged = cur.execute("select table_name from cfg.audit_events(%s, %s)", (world.org_a, a)).fetchall()
    assert "config_versions" in {r["table_name"] for r in logged}
    # A direct write keeps the foundation's per-row audit, plus its version's.
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("update cfg.config_entries set value = '2' where key = 'port'")
    tables = [r["table_name"] for r in conn.execute(
        "select table_name from cfg.audit_log where id > %s order by id", (audit["id"],)
    ).fetchall()]
    conn.commit()
    assert sorted(tables) == ["config_entries", "config_versions", "deployment_history", "deployments"]


# =============================================================================
# patch_config: key-level changes on top of the current version
# =============================================================================

PATCH = "select cfg.patch_config(%s, %s, %s::jsonb, %s::jsonb, %s) as r"


def test_patch_sets_and_unsets_keys_and_keeps_the_rest(conn, world):
    a = world.automation_a
    base = head(conn, a)
    result = rpc(conn, world["editor"], PATCH, (
        a, base, json.dumps({"http": {"port": {"value": 9000}}, "new": {"k": {"value": [1, 2]}}}),
        json.dumps({"http": ["api_key"]}), "patched"))["r"]
    assert result["created"] and result["version"] == base + 1
    assert live(conn, a) == {"http": {"port": 9000}, "new": {"k": [1, 2]}}
    # A secret set without saying so stays secret; its value is never returned.
    rpc(conn, world["editor"], PATCH, (a, None, json.dumps({"http": {"token": {"value": "t0", "secret": True}}}),
                                       "{}", ""))
    rpc(conn, world["editor"], PATCH, (a, None, json.dumps({"http": {"token": {"value": "t1"}}}), "{}", ""))
    assert live(conn, a)["http"]["token"] == ("secret", "t1")


def test_patch_refuses_bad_input_and_stale_versions_changing_nothing(conn, world):
    a = world.automation_a
    base = head(conn, a)
    bad = [
        ('["port"]', "{}", "PT422"),
        ('{"http": {"port": 1}}', "{}", "PT422"),
        ("{}", '{"http": "port"}', "PT422"),
        ("{}", '{"http": [1]}', "PT422"),
        ("{}", '{"http": ["no_such_key"]}', "PT404"),
        ('{"bad name": {"k": {"value": 1}}}', "{}", "PT422"),
    ]
    for set_, unset_, code in bad:
        refused(conn, world["editor"], PATCH, (a, base, set_, unset_, ""), code)
    refused(conn, world["editor"], PATCH, (a, base - 1, '{"http": {"port": {"value": 1}}}', "{}", ""), "PT409")
    refused(conn, world["viewer"], PATCH, (a, base, '{"http": {"port": {"value": 1}}}', "{}", ""), "PT403")
