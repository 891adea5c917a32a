"""Bulk operations (issue 12): cfg.bulk_apply and its records, per-item outcomes as the
single calls give them, atomic and dry runs, grouped promotion approvals, batches,
progress and cancelling, and bad input. The continuation worker: test_bulk_worker.py."""

from __future__ import annotations

import json
import uuid

import pytest

from sync_service.db import CfgError, acting_as
from tests.support.act import attempt
from tests.support.versioning import content, events, save, snapshot_counts


def call(conn, who, sql, params=()):
    """The first column of sql's row, as who, in a transaction of its own (not a savepoint
    of the superuser's open one, whose role it would keep)."""
    conn.commit()
    with acting_as(conn, who) as cur:
        return next(iter(cur.execute(sql, params).fetchone().values()))


def bulk(conn, who, org, selection, action, **options):
    return call(conn, who, "select cfg.bulk_apply(%s, %s::jsonb, %s, %s::jsonb)",
                (org, json.dumps(selection), action, json.dumps(options)))


def automations(conn, world, *slugs, type_="service"):
    """New automations of org A (made by its admin), their ids in order."""
    conn.commit()
    with acting_as(conn, world["admin"]) as cur:
        return [cur.execute("select id from cfg.create_automation(%s, %s, %s, %s)",
                            (world.org_a, slug.title(), slug, type_)).fetchone()["id"] for slug in slugs]


def results(answer) -> list[str]:
    return [item["result"] for item in answer["items"]]


def single(conn, who, sql, params) -> tuple:
    """What a single call answers, rolled back: (code, message, detail)."""
    out = attempt(conn, who, sql, params, rollback=True)
    return (out.code, out.message, out.detail)


def test_status_per_item_with_audit_rows_events_and_one_summary_event(conn, world):
    a1, a2 = automations(conn, world, "one", "two")
    call(conn, world["editor"], "update cfg.automations set status = 'paused' where id = %s returning id", (a2,))
    unknown = uuid.uuid4()
    before_updates = len(events(conn, "automation.updated"))
    selection = {"ids": [str(a1), str(a2), str(unknown), str(world.automation_b)]}
    answer = bulk(conn, world["editor"], world.org_a, selection, "status", status="paused")

    assert answer["status"] == "completed"
    assert results(answer) == ["succeeded", "unchanged", "not_found", "not_found"]
    counts = [answer[k] for k in ("total", "done", "succeeded", "unchanged", "not_found")]
    assert counts == [4, 4, 1, 1, 2]
    # Another org's id answers exactly as an unknown one, the id aside: nothing leaks.
    foreign, missing = answer["items"][3], answer["items"][2]
    assert foreign["slug"] is None and foreign["code"] == missing["code"] == "PT404"
    assert foreign["message"] == missing["message"]
    assert foreign["detail"] == {"automation_id": str(world.automation_b)}
    statuses = {r["id"]: r["status"] for r in conn.execute(
        "select id, status::text as status from cfg.automations where id = any(%s)", ([a1, world.automation_b],))}
    assert statuses == {a1: "paused", world.automation_b: "active"}
    # Per item: its audit row (linked from the item) and its automation.updated event.
    audit = conn.execute("select id, actor_email, new_values from cfg.audit_log where id = any(%s)",
                         (answer["items"][0]["audit_ids"],)).fetchall()
    assert [(r["actor_email"], r["new_values"]["status"]) for r in audit] == [("editor@example.test", "paused")]
    assert answer["items"][1]["audit_ids"] == []
    # The items are the record: their own inserts are not audited a second time.
    assert conn.execute("select count(*) from cfg.audit_log where table_name = 'bulk_operation_items'"
                        ).fetchone()["count"] == 0
    assert len(events(conn, "automation.updated")) == before_updates + 1
    summary = events(conn, "bulk.completed")
    assert [(e["payload"]["status"], e["payload"]["succeeded"]) for e in summary] == [("completed", 1)]
    conn.commit()


def test_tag_and_untag_keep_other_tags_and_report_unchanged(conn, world):
    a1, a2 = automations(conn, world, "one", "two")
    call(conn, world["editor"], "update cfg.automations set tags = '{edge,old}' where id = %s returning id", (a2,))
    answer = bulk(conn, world["editor"], world.org_a, {"ids": [str(a1), str(a2)]}, "tag", tags=["edge", "edge"])
    assert results(answer) == ["succeeded", "unchanged"]
    answer = bulk(conn, world["editor"], world.org_a, {"where": {"tags": ["edge"]}}, "untag", tags=["edge"])
    assert results(answer) == ["succeeded", "succeeded"]
    tags = {r["id"]: r["tags"] for r in conn.execute("select id, tags from cfg.automations where id = any(%s)",
                                                     ([a1, a2],))}
    assert tags == {a1: [], a2: ["old"]}
    conn.commit()


def test_a_row_the_statement_refuses_fails_alone(conn, world):
    a1, a2 = automations(conn, world, "one", "two")
    conn.execute("update cfg.automations set tags = (select array_agg('t' || n) from generate_series(1, 50) n) "
                 "where id = %s", (a2,))
    conn.commit()
    answer = bulk(conn, world["editor"], world.org_a, {"ids": [str(a1), str(a2)]}, "tag", tags=["new"])
    assert results(answer) == ["succeeded", "failed"]
    assert answer["items"][1]["code"] == "23514" and "automations_tags_limit" in answer["items"][1]["message"]


def test_each_answer_lists_its_batch_as_the_record_does(conn, world):
    """The items an answer builds for its batch are those get_bulk_operation reads back, for
    every kind of result, whichever batch they came in."""
    a1, a2, a3 = automations(conn, world, "one", "two", "three")
    conn.execute("update cfg.automations set tags = '{new}' where id = %s", (a2,))
    conn.execute("update cfg.automations set tags = (select array_agg('t' || n) from generate_series(1, 50) n) "
                 "where id = %s", (a3,))
    conn.commit()
    selection = {"ids": [str(a1), str(uuid.uuid4()), str(a2), str(a3), str(world.automation_b)]}
    answer = bulk(conn, world["editor"], world.org_a, selection, "tag", tags=["new"], batch_size=2)
    answers = [answer]
    while answers[-1]["status"] == "running":
        answers.append(call(conn, world["editor"], "select cfg.bulk_continue(%s)", (answer["id"],)))
    record = call(conn, world["viewer"], "select cfg.get_bulk_operation(%s)", (answer["id"],))
    given = sorted((item for a in answers for item in a["items"]), key=lambda item: item["position"])
    assert given == record["items"]
    assert [i["result"] for i in given] == ["succeeded", "not_found", "unchanged", "failed", "not_found"]
    assert [i["slug"] for i in given] == ["one", None, "two", "three", None]
    assert given[0]["audit_ids"] and set(given[0]) == {
        "position", "automation_id", "slug", "result", "code", "message", "detail", "version_id", "request_id",
        "request_status", "audit_ids"}
    conn.commit()


def test_delete_is_for_admins_per_item_as_the_single_call_says(conn, world):
    a1, a2 = automations(conn, world, "one", "two")
    selection = {"ids": [str(a1), str(a2)]}
    expected = single(conn, world["editor"], "select cfg.delete_automation(%s)", (a1,))
    answer = bulk(conn, world["editor"], world.org_a, selection, "delete")
    assert results(answer) == ["failed", "failed"] and answer["status"] == "completed"
    item = answer["items"][0]
    assert (item["code"], item["message"], item["detail"]) == expected and expected[0] == "PT403"
    answer = bulk(conn, world["admin"], world.org_a, selection, "delete")
    assert results(answer) == ["succeeded", "succeeded"]
    assert conn.execute("select count(*) from cfg.automations where id = any(%s)", ([a1, a2],)).fetchone()["count"] == 0
    # The record keeps them, and links the DELETE audit rows.
    op = call(conn, world["viewer"], "select cfg.get_bulk_operation(%s)", (answer["id"],))
    assert [i["automation_id"] for i in op["items"]] == [str(a1), str(a2)]
    ops = conn.execute("select table_name, operation from cfg.audit_log where id = any(%s)",
                       (op["items"][0]["audit_ids"],)).fetchall()
    assert ops == [{"table_name": "automations", "operation": "DELETE"}]
    conn.commit()


RULE = {"name": "port range", "section": "http", "key": "port", "schema": {"type": "integer", "maximum": 9000}}


def rule_world(conn, world):
    """svc (type service, which has RULE) and job (type cron_job), both with http.port = 80."""
    svc, = automations(conn, world, "svc")
    job, = automations(conn, world, "job", type_="cron_job")
    with acting_as(conn, world["admin"]) as cur:
        type_id = cur.execute("select id from cfg.automation_types where org_id = %s and slug = 'service'",
                              (world.org_a,)).fetchone()["id"]
        cur.execute("select cfg.add_validation_rule(%s, %s::jsonb)", (type_id, json.dumps(RULE)))
    for automation in (svc, job):
        save(conn, world["editor"], automation, 0, content({"http": {"port": 80}}))
    return svc, job


def test_patch_honours_validation_rules_per_item(conn, world):
    svc, job = rule_world(conn, world)
    expected = single(conn, world["editor"],
                      "select cfg.patch_config(%s, null, '{\"http\": {\"port\": {\"value\": 99999}}}', '{}', 'wide')",
                      (svc,))
    answer = bulk(conn, world["editor"], world.org_a, {"ids": [str(svc), str(job)]}, "patch",
                  set={"http.port": 99999}, message="wide")
    assert results(answer) == ["failed", "succeeded"]
    item = answer["items"][0]
    assert (item["code"], item["message"], item["detail"]) == expected and expected[0] == "PT422"
    version = conn.execute("select version, message, id from cfg.config_versions where automation_id = %s "
                           "order by version desc limit 1", (job,)).fetchone()
    assert (version["version"], version["message"]) == (2, "wide")
    assert answer["items"][1]["version_id"] == str(version["id"])
    # The same patch again changes nothing: unchanged.
    again = bulk(conn, world["editor"], world.org_a, {"ids": [str(job)]}, "patch", set={"http.port": 99999})
    assert results(again) == ["unchanged"]
    conn.commit()


def test_atomic_rolls_every_item_back_and_the_record_says_so(conn, world):
    svc, job = rule_world(conn, world)
    before = snapshot_counts(conn)
    answer = bulk(conn, world["editor"], world.org_a, {"ids": [str(job), str(svc)]}, "patch",
                  set={"http.port": 99999}, atomic=True)
    assert answer["status"] == "failed" and answer["atomic"]
    assert results(answer) == ["rolled_back", "failed"]
    assert (answer["succeeded"], answer["rolled_back"], answer["failed"]) == (0, 1, 1)
    assert answer["items"][0]["version_id"] is None and answer["items"][0]["audit_ids"] == []
    after = snapshot_counts(conn)
    assert after["versions"] == before["versions"] and after["entry_rows"] == before["entry_rows"]
    assert after["events"] == before["events"] + 1  # bulk.completed only
    ok = bulk(conn, world["editor"], world.org_a, {"ids": [str(job)]}, "patch", set={"http.port": 81}, atomic=True)
    assert ok["status"] == "completed" and results(ok) == ["succeeded"]
    conn.commit()


def test_dry_runs_preview_and_change_nothing(conn, world):
    svc, job = rule_world(conn, world)
    with acting_as(conn, world["editor"]) as cur:
        cur.execute("select cfg.promote(%s, 'dev', 'staging', dry_run => false)", (job,))
    save(conn, world["editor"], job, 1, content({"http": {"port": 81}}))
    before = snapshot_counts(conn)
    automations_before = conn.execute("select * from cfg.automations order by id").fetchall()
    audit_before = conn.execute("select count(*) from cfg.audit_log").fetchone()["count"]
    selection = {"ids": [str(svc), str(job), str(world.automation_b)]}

    status = bulk(conn, world["editor"], world.org_a, selection, "status", status="archived", dry_run=True)
    assert status["dry_run"] and results(status) == ["succeeded", "succeeded", "not_found"]
    assert status["items"][0]["preview"] == {"status": {"from": "active", "to": "archived"}}
    patch = bulk(conn, world["editor"], world.org_a, selection, "patch", set={"http.port": 99999}, dry_run=True)
    assert results(patch) == ["failed", "succeeded", "not_found"] and patch["items"][0]["code"] == "PT422"
    diff = patch["items"][1]["preview"]
    assert "99999" in json.dumps(diff) and "81" in json.dumps(diff)
    promote = bulk(conn, world["editor"], world.org_a, selection, "promote", from_env="dev", to_env="staging",
                   dry_run=True)
    assert results(promote) == ["succeeded", "succeeded", "not_found"]
    assert promote["items"][1]["preview"]["diff"] and promote["items"][1]["promotion"] == "promoted"
    delete = bulk(conn, world["admin"], world.org_a, selection, "delete", dry_run=True)
    assert results(delete) == ["succeeded", "succeeded", "not_found"]

    assert snapshot_counts(conn) == before
    assert conn.execute("select * from cfg.automations order by id").fetchall() == automations_before
    assert conn.execute("select count(*) from cfg.audit_log").fetchone()["count"] == audit_before
    assert conn.execute("select count(*) from cfg.bulk_operations").fetchone()["count"] == 0
    conn.commit()


def test_bulk_promotion_groups_requests_for_an_admin_to_decide(conn, world):
    a1, a2, a3, empty = automations(conn, world, "one", "two", "three", "empty")
    for automation in (a1, a2, a3):
        save(conn, world["editor"], automation, 0, content({"main": {"x": 1}}))
    ids = {"ids": [str(a1), str(a2), str(a3), str(empty)]}
    staging = bulk(conn, world["editor"], world.org_a, ids, "promote", from_env="dev", to_env="staging")
    # Nothing deployed in dev: the single call's conflict, per item.
    assert results(staging) == ["succeeded", "succeeded", "succeeded", "failed"]
    assert staging["items"][3]["code"] == "PT409"
    again = bulk(conn, world["editor"], world.org_a, ids, "promote", from_env="dev", to_env="staging")
    assert results(again)[:3] == ["unchanged"] * 3

    prod = bulk(conn, world["editor"], world.org_a, ids, "promote", from_env="staging", to_env="prod",
                message="release")
    requests = [i["request_id"] for i in prod["items"][:3]]
    assert all(requests) and [i["request_status"] for i in prod["items"][:3]] == ["pending"] * 3
    # One request decided on its own, then the group: the rest.
    call(conn, world["admin"], "select cfg.reject_promotion(%s, 'not this one')", (requests[0],))
    refused = attempt(conn, world["editor"], "select cfg.decide_bulk_promotions(%s, true)", (prod["id"],))
    assert refused.code == "PT403"
    decided = call(conn, world["admin"], "select cfg.decide_bulk_promotions(%s, true, 'ship')", (prod["id"],))
    assert decided["decided"] == 2 and [i["result"] for i in decided["items"]] == ["approved", "approved"]
    shown = call(conn, world["viewer"], "select cfg.get_bulk_operation(%s)", (prod["id"],))
    assert [i["request_status"] for i in shown["items"][:3]] == ["rejected", "applied", "applied"]
    prod_versions = conn.execute(
        "select count(*) from cfg.deployments d join cfg.environments e on e.id = d.environment_id "
        "where e.slug = 'prod' and d.automation_id = any(%s)", ([a1, a2, a3],)).fetchone()["count"]
    assert prod_versions == 2

    # A group rejection needs the reason a single rejection needs, per request.
    save(conn, world["editor"], a1, 1, content({"main": {"x": 2}}))
    bulk(conn, world["editor"], world.org_a, {"ids": [str(a1)]}, "promote", from_env="dev", to_env="staging")
    second = bulk(conn, world["editor"], world.org_a, {"ids": [str(a1)]}, "promote", from_env="staging", to_env="prod")
    no_reason = call(conn, world["admin"], "select cfg.decide_bulk_promotions(%s, false)", (second["id"],))
    assert no_reason["items"][0]["code"] == "PT422"
    rejected = call(conn, world["admin"], "select cfg.decide_bulk_promotions(%s, false, 'later')", (second["id"],))
    assert [i["result"] for i in rejected["items"]] == ["rejected"]
    conn.commit()


def test_batches_progress_and_cancel_between_batches(conn, world):
    ids = automations(conn, world, "a1", "a2", "a3", "a4", "a5")
    selection = {"ids": [str(i) for i in ids] + [str(uuid.uuid4())]}
    first = bulk(conn, world["editor"], world.org_a, selection, "status", status="paused", batch_size=2)
    # The first batch and the id not found; the rest waits for bulk_continue.
    assert first["status"] == "running" and (first["total"], first["done"]) == (6, 3)
    assert [i["position"] for i in first["items"]] == [1, 2, 6]
    progress = call(conn, world["viewer"], "select done, total, status from cfg.bulk_operations where id = %s",
                    (first["id"],))
    assert progress == 3
    # Only the author continues; other orgs do not see it at all.
    assert attempt(conn, world["admin"], "select cfg.bulk_continue(%s)", (first["id"],)).code == "PT403"
    assert attempt(conn, world["other_admin"], "select cfg.bulk_continue(%s)", (first["id"],)).code == "PT404"
    second = call(conn, world["editor"], "select cfg.bulk_continue(%s)", (first["id"],))
    assert second["done"] == 5 and [i["position"] for i in second["items"]] == [3, 4]
    assert attempt(conn, world["viewer"], "select cfg.cancel_bulk_operation(%s)", (first["id"],)).code == "PT403"
    cancelled = call(conn, world["admin"], "select cfg.cancel_bulk_operation(%s)", (first["id"],))
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    after = call(conn, world["editor"], "select cfg.bulk_continue(%s)", (first["id"],))
    assert after["status"] == "cancelled" and after["done"] == 5 and after["items"] == []
    assert conn.execute("select status from cfg.automations where id = %s", (ids[4],)).fetchone()["status"] == "active"
    assert attempt(conn, world["editor"], "select cfg.cancel_bulk_operation(%s)", (first["id"],)).code == "PT409"
    summary = events(conn, "bulk.completed")
    assert [e["payload"]["status"] for e in summary] == ["cancelled"]
    listed = call(conn, world["viewer"], "select jsonb_agg(l) from cfg.list_bulk_operations(%s) l", (world.org_a,))
    assert [(o["status"], o["done"], o["succeeded"]) for o in listed] == [("cancelled", 5, 4)]
    # The operation's audit: its creation (the selection stays in the row, not copied) and
    # its cancelling (who, then the end); the batches' progress is bookkeeping.
    audited = conn.execute("select operation, actor_id, new_values from cfg.audit_log where "
                           "table_name = 'bulk_operations' and row_id = %s order by id", (first["id"],)).fetchall()
    assert [(a["operation"], a["actor_id"]) for a in audited] == [
        ("INSERT", world["editor"].user_id), ("UPDATE", world["admin"].user_id), ("UPDATE", world["admin"].user_id)]
    assert "selection" not in audited[0]["new_values"] and audited[0]["new_values"]["action"] == "status"
    assert audited[1]["new_values"] == {"cancelled_by": str(world["admin"].user_id)}
    assert audited[2]["new_values"]["status"] == "cancelled"
    conn.commit()


def test_continue_to_the_end_finishes_once(conn, world):
    ids = automations(conn, world, "a1", "a2", "a3")
    op = bulk(conn, world["editor"], world.org_a, {"where": {"type": "service", "status": "active"}}, "tag",
              tags=["x"], batch_size=2)
    while op["status"] == "running":
        op = call(conn, world["editor"], "select cfg.bulk_continue(%s)", (op["id"],))
    # The filter was resolved once: billing (world) and the three new ones.
    assert (op["status"], op["total"], op["succeeded"]) == ("completed", 4, 4)
    assert len(events(conn, "bulk.completed")) == 1
    assert all("x" in r["tags"] for r in conn.execute("select tags from cfg.automations where id = any(%s)", (ids,)))
    conn.commit()


@pytest.mark.parametrize("action, options, path", [
    ("export", {}, "action"),
    ("rename", {}, "action"),
    ("status", {"status": "gone"}, "options.status"),
    ("status", {"status": "paused", "batch_size": 0}, "options.batch_size"),
    ("status", {"status": "paused", "atomic": "yes"}, "options.atomic"),
    ("status", {"status": "paused", "tags": ["x"]}, "options.tags"),
    ("tag", {"tags": "x"}, "options.tags"),
    ("tag", {"tags": ["with space"]}, "options.tags"),
    ("patch", {}, "options"),
    ("patch", {"set": {"noseparator": 1}}, "options.set"),
    ("patch", {"set": {"a.b": 1}, "unset": ["a.b"]}, "options.unset"),
    ("promote", {"from_env": "dev"}, "options.to_env"),
])
def test_bad_options_are_refused_and_change_nothing(conn, world, action, options, path):
    before = snapshot_counts(conn)
    with pytest.raises(CfgError) as caught:
        bulk(conn, world["editor"], world.org_a, {"ids": [str(world.automation_a)]}, action, **options)
    assert caught.value.code == "PT422"
    if path != "action":
        assert path in [e["path"] for e in caught.value.detail["errors"]]
    else:
        assert caught.value.detail["field"] == "action"
    if action == "export":
        assert "cfg.export_automations" in str(caught.value)
    assert snapshot_counts(conn) == before
    assert conn.execute("select count(*) from cfg.bulk_operations").fetchone()["count"] == 0


def test_bad_selections_roles_and_sql_looking_strings(conn, world):
    editor = world["editor"]
    for selection in ({"ids": ["x'; drop table cfg.automations; --"]}, {"ids": [str(uuid.uuid4())] * 50001},
                      {"where": {"colour": "red"}}, {"ids": [], "where": {}}, []):
        with pytest.raises(CfgError) as caught:
            bulk(conn, editor, world.org_a, selection, "status", status="paused")
        assert caught.value.code == "PT422"
    with pytest.raises(CfgError) as caught:
        bulk(conn, world["viewer"], world.org_a, {"ids": []}, "status", status="paused")
    assert caught.value.code == "PT403"
    with pytest.raises(CfgError) as caught:
        bulk(conn, world["other_admin"], world.org_a, {"ids": []}, "status", status="paused")
    assert caught.value.code == "PT404"
    # Text that looks like SQL is only ever data.
    none = bulk(conn, editor, world.org_a, {"where": {"text": "'; delete from cfg.automations; --"}}, "tag", tags=["x"])
    assert none["total"] == 0 and none["status"] == "completed"
    tagged = bulk(conn, editor, world.org_a, {"ids": [str(world.automation_a)]}, "tag", tags=["x');drop--"])
    assert results(tagged) == ["succeeded"]
    assert conn.execute("select count(*) from cfg.automations").fetchone()["count"] == 2
    conn.commit()


def test_a_patch_never_records_a_secret_value(conn, world):
    with pytest.raises(CfgError) as caught:
        bulk(conn, world["admin"], world.org_a, {"ids": [str(world.automation_a)]}, "patch",
             set={"http.api_key": "sk_live_new"})
    assert caught.value.code == "PT422" and caught.value.detail["errors"][0]["path"] == "options.set.http.api_key"
    with pytest.raises(CfgError):
        bulk(conn, world["admin"], world.org_a, {"ids": [str(world.automation_a)]}, "patch",
             set={"http.api_key": "sk_live_new"}, dry_run=True)
    stored = conn.execute("select count(*) from cfg.bulk_operations where options::text like '%%sk_live%%'").fetchone()
    assert stored["count"] == 0
