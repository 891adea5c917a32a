"""`cfgctl bulk …` against the test world: selections from --where / --ids, dry runs, batches
driven to the end with the progress bar, the result table and exit codes, show / list /
continue / cancel, and a bulk promotion approved as a group."""

from __future__ import annotations

import json

from sync_service.db import acting_as
from tests.support.versioning import content, save

ADMIN = ("--as", "admin@example.test")
EDITOR = ("--as", "editor@example.test")
VIEWER = ("--as", "viewer@example.test")


def more_automations(conn, world, count: int) -> list:
    with acting_as(conn, world["admin"]) as cur:
        return [cur.execute("select id from cfg.create_automation(%s, %s, %s, 'api_gateway', '{edge}')",
                            (world.org_a, f"Gw {n}", f"gw-{n}")).fetchone()["id"] for n in range(count)]


def test_bulk_status_and_tags_with_where_and_ids(cfgctl, conn, world):
    ids = more_automations(conn, world, 5)
    preview = cfgctl("bulk", "status", "org-a", "paused", "--where", "type=api_gateway", "--where", "tag=edge",
                     "--dry-run", *EDITOR, "--json")
    assert preview.code == 0, preview.output
    assert [i["result"] for i in preview.json()["items"]] == ["succeeded"] * 5
    assert conn.execute("select count(*) from cfg.automations where status = 'paused'").fetchone()["count"] == 0
    conn.commit()

    # Batches of 2: the command drives them all (bulk_continue), then prints every result.
    done = cfgctl("bulk", "status", "org-a", "paused", "--where", "type=api_gateway", "--batch-size", "2",
                  *EDITOR, "--json")
    assert done.code == 0, done.output
    op = done.json()
    assert (op["status"], op["total"], op["succeeded"]) == ("completed", 5, 5)
    assert [i["position"] for i in op["items"]] == [1, 2, 3, 4, 5]
    table = cfgctl("bulk", "show", op["id"], *VIEWER)
    assert table.code == 0 and "gw-4" in table.out and "succeeded" in table.out
    listed = cfgctl("bulk", "list", "org-a", *VIEWER, "--json").json()
    assert [(o["action"], o["status"]) for o in listed] == [("status", "completed")]

    # A foreign id among the ids: not found, exit 1, the others done.
    mixed = cfgctl("bulk", "tag", "org-a", "blue", "--ids", f"{ids[0]},{world.automation_b}", *EDITOR)
    assert mixed.code == 1 and "not_found" in mixed.out and "1 succeeded, 1 not found" in mixed.err
    assert cfgctl("bulk", "untag", "org-a", "blue", "--ids", str(ids[0]), *EDITOR).code == 0


def test_bulk_cli_usage_and_refusals(cfgctl, world):
    assert cfgctl("bulk", "status", "org-a", "paused", *EDITOR).code == 2  # no selection
    assert cfgctl("bulk", "status", "org-a", "paused", "--where", "colour=red", *EDITOR).code == 2
    assert cfgctl("bulk", "status", "org-a", "paused", "--all", "--ids", "x", *EDITOR).code == 2
    bad = cfgctl("bulk", "status", "org-a", "gone", "--all", *EDITOR)
    assert bad.code == 6 and bad.detail["errors"][0]["path"] == "options.status"
    assert cfgctl("bulk", "status", "org-a", "paused", "--all", *VIEWER).code == 4
    assert cfgctl("bulk", "status", "org-b", "paused", "--all", *EDITOR).code == 3
    # An editor may not delete: each automation fails with the single call's PT403.
    refused = cfgctl("bulk", "delete", "org-a", "--all", "--yes", *EDITOR, "--json")
    assert refused.code == 1 and {i["code"] for i in refused.json()["items"]} == {"PT403"}


def test_bulk_patch_promote_and_group_approval(cfgctl, conn, world):
    ids = more_automations(conn, world, 2)
    for automation in ids:
        save(conn, world["editor"], automation, 0, content({"http": {"port": 80}}))
    patched = cfgctl("bulk", "patch", "org-a", "--set", "http.port=8443", "--set", "http.mode=tls",
                     "-m", "tls everywhere", "--where", "type=api_gateway", *EDITOR, "--json")
    assert patched.code == 0, patched.output
    assert all(i["version_id"] for i in patched.json()["items"])
    promoted = cfgctl("bulk", "promote", "org-a", "--from", "dev", "--to", "staging", "--where", "type=api_gateway",
                      *EDITOR)
    assert promoted.code == 0, promoted.output
    requested = cfgctl("bulk", "promote", "org-a", "--from", "staging", "--to", "prod", "--where",
                       "env=staging", *EDITOR, "--json")
    op = requested.json()
    assert [bool(i["request_id"]) for i in op["items"]] == [True, True]
    assert cfgctl("bulk", "reject", op["id"], "--reason", "no", *EDITOR).code == 4
    approved = cfgctl("bulk", "approve", op["id"], "--comment", "ship it", *ADMIN, "--json")
    assert approved.code == 0 and approved.json()["decided"] == 2
    shown = cfgctl("bulk", "show", op["id"], *VIEWER, "--json").json()
    assert [i["request_status"] for i in shown["items"]] == ["applied", "applied"]


def test_bulk_continue_and_cancel(cfgctl, conn, world):
    more_automations(conn, world, 3)
    with acting_as(conn, world["editor"]) as cur:
        op = cur.execute("select cfg.bulk_apply(%s, %s::jsonb, 'tag', %s::jsonb) r", (
            world.org_a, json.dumps({"where": {"type": "api_gateway"}}), json.dumps({"tags": ["t"], "batch_size": 1}),
        )).fetchone()["r"]
    assert op["status"] == "running"
    assert cfgctl("bulk", "continue", op["id"], *ADMIN).code == 4  # only its author
    finished = cfgctl("bulk", "continue", op["id"], *EDITOR, "--json")
    assert finished.code == 0 and finished.json()["status"] == "completed" and len(finished.json()["items"]) == 3
    assert cfgctl("bulk", "cancel", op["id"], *EDITOR).code == 5  # finished already

    with acting_as(conn, world["editor"]) as cur:
        op = cur.execute("select cfg.bulk_apply(%s, %s::jsonb, 'untag', %s::jsonb) r", (
            world.org_a, json.dumps({"where": {"type": "api_gateway"}}), json.dumps({"tags": ["t"], "batch_size": 1}),
        )).fetchone()["r"]
    cancelled = cfgctl("bulk", "cancel", op["id"], *ADMIN, "--json")
    assert cancelled.code == 0 and cancelled.json()["status"] == "cancelled"
