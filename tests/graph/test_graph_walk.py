"""The impact walk (issue 15, benchmark 6 (a)), behind impact, the dry runs, the promote
preview, the delete check and events: breadth first, each automation once at its least
depth, the first path found (via: the first by id of those a level up), max_depth, the
edges of the newest versions or of what an environment runs, checked against networkx
on a random graph with cycles."""

from __future__ import annotations

import json
import random

import networkx as nx
import pytest

from sync_service.db import CfgError
from tests.graph.test_graph import BILLING, automation, one, put


@pytest.fixture
def billing(conn, world):
    """org A's `billing` with http.base_url, http.port and a secret http.api_key."""
    put(conn, world["editor"], world.automation_a, BILLING)
    return world.automation_a


def test_a_diamond_is_walked_breadth_first_each_automation_once(conn, world, billing):
    admin, editor = world["admin"], world["editor"]
    ids = {s: automation(conn, admin, world.org_a, s) for s in ("a", "b", "c", "d")}
    put(conn, editor, ids["a"], {"api": {"x": {"ref": "billing/http.port"}}})
    put(conn, editor, ids["b"], {"api": {"x": {"ref": "billing/http.base_url"}}})
    # c is reached through a and through b (depth 2 both ways); d through c (depth 3)
    # and directly (depth 1): d is listed once, at depth 1.
    put(conn, editor, ids["c"], {"api": {"x": {"ref": "a/api.x"}, "y": "${ref:b/api.x}"}})
    put(conn, editor, ids["d"], {"api": {"x": {"ref": "c/api.x"}, "p": {"ref": "billing/http.port"}}})
    radius = one(conn, world["viewer"], "select cfg.impact(%s)", (billing,))
    assert [(a["slug"], a["depth"]) for a in radius["automations"]] == [("a", 1), ("b", 1), ("d", 1), ("c", 2)]
    assert radius["count"] == 4 and radius["direct"] == 3
    c = radius["automations"][3]
    # The first path found: through the first by id of a and b.
    first = min(("a", "b"), key=lambda s: str(ids[s]))
    assert c["via"] == str(ids[first]) and c["path"] == ["billing", first, "c"] and c["keys"] == ["api.x"]
    d = radius["automations"][2]
    assert d["via"] == str(billing) and d["path"] == ["billing", "d"] and d["keys"] == ["http.port"]
    # Only what the newest versions reference: c references nothing any more.
    put(conn, editor, ids["c"], {"api": {"x": 1}})
    assert [a["slug"] for a in one(conn, world["viewer"], "select cfg.impact(%s)", (billing,))["automations"]] == [
        "a", "b", "d"]
    kept = conn.execute("select count(*) filter (where newest) as newest, count(*) as n from cfg.version_references "
                        "where from_automation_id = %s", (ids["c"],)).fetchone()
    conn.commit()
    assert kept == {"newest": 0, "n": 2}


def test_max_depth_bounds_the_walk(conn, world, billing):
    ids = {s: automation(conn, world["admin"], world.org_a, s) for s in ("l1", "l2", "l3")}
    put(conn, world["editor"], ids["l1"], {"m": {"x": {"ref": "billing/http.port"}}})
    put(conn, world["editor"], ids["l2"], {"m": {"x": {"ref": "l1/m.x"}}})
    put(conn, world["editor"], ids["l3"], {"m": {"x": {"ref": "l2/m.x"}}})
    for depth in (1, 2, 3, 4):
        radius = one(conn, world["viewer"], "select cfg.impact(%s, max_depth => %s)", (billing, depth))
        assert [a["slug"] for a in radius["automations"]] == ["l1", "l2", "l3"][:depth]
    assert radius["automations"][-1]["path"] == ["billing", "l1", "l2", "l3"]


def random_versions(rng: random.Random, n: int, edges: int) -> list[tuple[int, int, str]]:
    """(from, to, key) triples: random references between n automations, cycles included
    (what an environment runs may form one even though each save refuses them)."""
    out = set()
    while len(out) < edges:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b:
            out.add((a, b, f"main.k{rng.randrange(3)}"))
    return sorted(out)


def expected_radius(triples, names: list[str], ids: list[str], start: int, keys=None) -> list[tuple]:
    """networkx's breadth-first distances over who references whom, and the walk's choice
    of path: through the first by id of those a level up."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(names)))
    graph.add_edges_from((b, a) for a, b, key in triples if keys is None or b != start or key in keys)
    depth = nx.single_source_shortest_path_length(graph, start)
    via = {v: min((u for u in graph.predecessors(v) if depth.get(u) == d - 1), key=lambda u: ids[u])
           for v, d in depth.items() if v != start}

    def path(v):
        return [names[start]] if v == start else [*path(via[v]), names[v]]

    def used(v):
        return sorted({k for a, b, k in triples
                       if a == v and b == via[v] and (keys is None or b != start or k in keys)})

    return sorted(((names[v], d, ids[via[v]], path(v), used(v)) for v, d in depth.items() if v != start),
                  key=lambda r: (r[1], r[0]))


@pytest.fixture
def random_graph(conn, world):
    """40 automations of org A with two versions each: version 1's references run in dev,
    version 2's are the newest (written as the DBA, the way a graph that large would be
    loaded; the extraction trigger is tested elsewhere)."""
    rng = random.Random(21)
    n = 40
    names = [f"r{i:02d}" for i in range(n)]
    conn.execute("set session_replication_role = replica")
    by_slug = {r["slug"]: str(r["id"]) for r in conn.execute(
        "insert into cfg.automations (org_id, name, slug) select %s, s, s from unnest(%s::text[]) as s "
        "returning id, slug", (world.org_a, names)).fetchall()}
    ids = [by_slug[name] for name in names]
    versions = {}
    for v in (1, 2):
        rows = conn.execute(
            "insert into cfg.config_versions (org_id, automation_id, version, content, content_hash, kind, "
            "author_role) select %s, a, %s, '{\"sections\": {}}', md5(a::text || %s), 'save', 'postgres' "
            "from unnest(%s::uuid[]) as a returning id, automation_id", (world.org_a, v, v, ids)).fetchall()
        versions[v] = {str(r["automation_id"]): r["id"] for r in rows}
    conn.execute("insert into cfg.deployments (org_id, automation_id, environment_id, version, version_id) "
                 "select %s, a.id, e.id, 1, (%s::jsonb ->> a.id::text)::uuid from unnest(%s::uuid[]) as a (id) "
                 "join cfg.environments e on e.org_id = %s and e.slug = 'dev'",
                 (world.org_a, json.dumps({k: str(v) for k, v in versions[1].items()}), ids, world.org_a))
    triples = {1: random_versions(rng, n, 90), 2: random_versions(rng, n, 90)}
    for v, edges in triples.items():
        with conn.cursor().copy("copy cfg.version_references (org_id, version_id, from_automation_id, version, "
                                "to_org_id, to_automation_id, to_section, to_key, kind, path, ref, newest) "
                                "from stdin") as copy:
            for a, b, key in edges:
                section, k = key.split(".")
                copy.write_row((world.org_a, versions[v][ids[a]], ids[a], v, world.org_a, ids[b], section, k,
                                "value", f"sections.main.entries.{a}-{b}-{k}.value", f"{names[b]}/{key}", v == 2))
    conn.execute("set session_replication_role = origin")
    conn.commit()
    return names, ids, triples


def test_the_walk_matches_networkx_on_a_random_graph(conn, world, random_graph):
    names, ids, triples = random_graph
    for start in random.Random(7).sample(range(len(names)), 6):
        for env, version, keys in ((None, 2, None), ("dev", 1, None), (None, 2, ["main.k0"])):
            radius = one(conn, world["viewer"], "select cfg.impact(%s, keys => %s, env => %s)", (ids[start], keys, env))
            got = [(a["slug"], a["depth"], a["via"], a["path"], a["keys"]) for a in radius["automations"]]
            assert got == expected_radius(triples[version], names, ids, start, keys), (start, env, keys)


def test_pages_follow_the_cursor_through_the_whole_radius(conn, world, random_graph):
    """Pages of 4 in order of depth then name: the first walks only the levels that fill
    it (count: at least), and following next_cursor lists the radius networkx finds,
    each row with its path and keys."""
    names, ids, triples = random_graph
    for env, version, keys in ((None, 2, None), ("dev", 1, ["main.k0"])):
        start = max(range(len(names)), key=lambda s: len(expected_radius(triples[version], names, ids, s, keys)))
        expected = expected_radius(triples[version], names, ids, start, keys)
        depths = [row[1] for row in expected]
        filled = next(d for d in sorted(set(depths)) if sum(x <= d for x in depths) > 4)
        got, cursor, pages = [], None, []
        while len(pages) <= len(expected):
            page = one(conn, world["viewer"], "select cfg.impact(%s, keys => %s, env => %s, max_rows => 4, "
                       "cursor => %s)", (ids[start], keys, env, cursor))
            pages.append(page)
            got += [(a["slug"], a["depth"], a["via"], a["path"], a["keys"]) for a in page["automations"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert got == expected, (env, keys)
        first, last = pages[0], pages[-1]
        assert first["count"] == sum(x <= filled for x in depths) < len(expected) and first["truncated"]
        assert first["direct"] == depths.count(1) and " affects at least " in first["summary"]
        assert first["next_cursor"] == f"{expected[3][1]}:{expected[3][0]}"
        assert len(pages) == -(-len(expected) // 4) and not last["truncated"] and last["count"] == len(expected)


def test_bad_pages_are_refused(conn, world, billing):
    for max_rows, cursor, paths in ((0, None, ["max_rows"]), (-1, "1:x", ["max_rows"]), (1001, None, ["max_rows"]),
                                    (None, "abc", ["max_rows", "cursor"]), (10, "0:web", ["cursor"]),
                                    (10, "1:", ["cursor"]), (10, "1:" + "x" * 299, ["cursor"])):
        with pytest.raises(CfgError) as caught:
            one(conn, world["viewer"], "select cfg.impact(%s, max_rows => %s, cursor => %s)",
                (billing, max_rows, cursor))
        assert caught.value.code == "PT422" and [e["path"] for e in caught.value.detail["errors"]] == paths
    # A cursor past the end is an empty page.
    assert one(conn, world["viewer"], "select cfg.impact(%s, cursor => '9:zz')", (billing,))["automations"] == []
