"""`cfgctl search`, `cfgctl find`, `cfgctl filter …` and `cfgctl search-reindex` against the
small world (org A's billing automation: http.port 8080 and a secret http.api_key)."""

from __future__ import annotations

import json

VIEWER = ("--as", "viewer@example.test")
EDITOR = ("--as", "editor@example.test")
ADMIN = ("--as", "admin@example.test")


def test_search_find_and_saved_filters_from_the_command_line(cfgctl, world):
    found = json.loads(cfgctl("search", "8080", *VIEWER, "--json").out)
    assert [(r["automation"], r["path"]) for r in found["results"]] == [("billing", "http.port")]
    table = cfgctl("search", "port", "--org", "org-a", "--has-secrets", *VIEWER)
    assert table.code == 0 and "http.port" in table.out
    assert cfgctl("search", "hunter2", *VIEWER, "--json").out.count('"automation"') == 0
    assert cfgctl("search", "x", "--org", "org-b", *VIEWER).code == 3
    assert cfgctl("search", "x", "--limit", "1000", *VIEWER).code == 6

    palette = json.loads(cfgctl("find", "biling", *VIEWER, "--json").out)
    assert palette[0]["target"] == "org-a/billing"

    saved = cfgctl("filter", "save", "org-a", "Ports in prod", "-q", "port", "--env", "prod", "--shared", "--pin",
                   *EDITOR, "--json")
    assert saved.code == 0, saved.output
    filter_id = json.loads(saved.out)["id"]
    assert cfgctl("filter", "save", "org-a", "Mine", "--shared", *VIEWER).code == 4
    listed = json.loads(cfgctl("filter", "list", "org-a", *VIEWER, "--json").out)
    assert [f["name"] for f in listed] == ["Ports in prod"]
    ran = cfgctl("filter", "run", filter_id, *VIEWER)
    assert ran.code == 0
    assert cfgctl("filter", "rm", filter_id, *VIEWER).code == 4
    assert cfgctl("filter", "rm", filter_id, *EDITOR).code == 0

    assert cfgctl("search-reindex", "org-a", *EDITOR).code == 4
    reindexed = cfgctl("search-reindex", "org-a", *ADMIN)
    assert reindexed.code == 0 and "indexed" in reindexed.out
