"""`cfgctl graph` in every format and `cfgctl impact`, and the HTML page opened in headless
Chromium (Debian's `chromium`, driven over the DevTools protocol with websockets): nodes
drawn, no console errors, a click highlights the impact radius; a screenshot is saved."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import xml.etree.ElementTree as ET

import pytest

from tests.support.chromium import Page, open_in_chromium
from tests.support.versioning import content, head, save

VIEWER = ("--as", "viewer@example.test")


@pytest.fixture
def graph_world(conn, world):
    """billing <- web <- deep (values), api2 -> billing (port), lonely (no edges)."""
    from sync_service.db import acting_as

    ids = {"billing": world.automation_a}
    with acting_as(conn, world["admin"]) as cur:
        for slug in ("web", "api2", "deep", "lonely"):
            ids[slug] = cur.execute("select id from cfg.create_automation(%s, %s, %s)",
                                    (world.org_a, slug.title(), slug)).fetchone()["id"]
    bodies = {
        "billing": {"http": {"base_url": "https://billing.test", "port": 8080}},
        "web": {"api": {"base": "${ref:billing/http.base_url}/v1", "needs": {"ref": "lonely"}}},
        "api2": {"api": {"port": {"ref": "billing/http.port"}}},
        "deep": {"api": {"upstream": {"ref": "web/api.base"}}},
    }
    for slug in ("billing", "web", "api2", "deep"):
        save(conn, world["editor"], ids[slug], head(conn, ids[slug]), content(bodies[slug]))
    return {k: str(v) for k, v in ids.items()}


def test_graph_exports_graphml_dot_and_json(cfgctl, graph_world, tmp_path):
    ids = graph_world
    out = cfgctl("graph", "org-a", "--format", "json", *VIEWER)
    assert out.code == 0, out.output
    data = json.loads(out.out)
    assert {n["label"] for n in data["nodes"]} == {"billing", "web", "api2", "deep", "lonely"}
    assert {(e["source"], e["target"], e["kind"]) for e in data["edges"]} == {
        (ids["web"], ids["billing"], "value"), (ids["web"], ids["lonely"], "declared"),
        (ids["api2"], ids["billing"], "value"), (ids["deep"], ids["web"], "value")}
    file = tmp_path / "g.graphml"
    assert cfgctl("graph", "org-a", "--format", "graphml", "-o", str(file), *VIEWER).code == 0
    root = ET.parse(file).getroot()
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(root.findall(".//g:node", ns)) == 5 and len(root.findall(".//g:edge", ns)) == 4
    dot = cfgctl("graph", "org-a", "--format", "dot", *VIEWER).out
    assert dot.startswith("digraph dependencies {") and f'"{ids["deep"]}" -> "{ids["web"]}"' in dot
    assert 'label="http.base_url"' in dot and "style=dotted" in dot
    # A past version of web: its references then (both), not the rest of the org's.
    past = json.loads(cfgctl("graph", "org-a", "--version", "1", "--automation", "web", *VIEWER).out)
    assert len(past["edges"]) == 2
    assert cfgctl("graph", "org-a", "--format", "svg", *VIEWER).code == 2
    assert cfgctl("graph", "org-b", *VIEWER).code == 3
    assert cfgctl("graph", "org-a", "--env", "nowhere", *VIEWER).code == 3


def test_impact_prints_the_radius_as_a_tree(cfgctl, graph_world):
    tree = cfgctl("impact", "org-a/billing", *VIEWER)
    assert tree.code == 0, tree.output
    assert "changing billing affects 3 automations: api2, web, deep" in tree.out
    lines = tree.out.splitlines()
    web = next(i for i, line in enumerate(lines) if "web" in line and "http.base_url" in line)
    assert "deep" in lines[web + 1] and lines[web + 1].index("deep") > lines[web].index("web")
    keyed = json.loads(cfgctl("impact", "org-a/billing", "http.port", "--json", *VIEWER).out)
    assert [a["slug"] for a in keyed["automations"]] == ["api2"]
    assert cfgctl("impact", "org-a/billing", "nodot", *VIEWER).code == 6
    assert cfgctl("impact", "org-b/other", *VIEWER).code == 3
    assert json.loads(cfgctl("impact", "org-a/billing", "--env", "prod", "--json", *VIEWER).out)["count"] == 0
    # A page at a time: the next starts below an automation of the previous, shown by its path.
    first = cfgctl("impact", "org-a/billing", "--max-rows", "2", *VIEWER).out
    assert "affects at least 3 automations" in first and "deep (" not in first and "more: --cursor '1:web'" in first
    rest = cfgctl("impact", "org-a/billing", "--max-rows", "2", "--cursor", "1:web", *VIEWER).out
    assert "billing → web" in rest and "deep (api.base)" in rest and "more:" not in rest
    assert cfgctl("impact", "org-a/billing", "--cursor", "web", *VIEWER).code == 6


# =============================================================================
# The HTML page in headless Chromium
# =============================================================================


def test_the_html_page_draws_the_graph_offline_and_a_click_highlights_the_radius(cfgctl, graph_world, tmp_path):
    import websockets

    ids = graph_world
    page_file = tmp_path / "graph.html"
    assert cfgctl("graph", "org-a", "--format", "html", "-o", str(page_file), *VIEWER).code == 0
    html = page_file.read_text()
    # One file: the library inlined, nothing fetched from anywhere.
    assert "vis-network" in html and 'src="http' not in html and 'href="http' not in html

    async def drive():
        proc, ws_url = open_in_chromium(tmp_path, page_file)
        try:
            async with websockets.connect(ws_url, max_size=None) as ws:
                page = Page(ws)
                for domain in ("Runtime", "Log", "Page"):
                    await page.send(f"{domain}.enable")
                await page.send("Page.navigate", url=page_file.as_uri())
                deadline = time.monotonic() + 20
                while not await page.eval("typeof network !== 'undefined' && network.body.data.nodes.length"):
                    assert time.monotonic() < deadline, "the graph was not drawn"
                    await asyncio.sleep(0.2)
                drawn = await page.eval("network.body.data.nodes.length")
                canvas = await page.eval("document.querySelector('canvas').width")
                await page.eval("network.stopSimulation(); network.fit(); true")
                await asyncio.sleep(0.5)
                billing = ids["billing"]
                at = await page.eval(f"network.canvasToDOM(network.getPositions(['{billing}'])['{billing}'])")
                box = await page.eval("(function(){var r=document.querySelector('canvas').getBoundingClientRect();"
                                      "return {x: r.left, y: r.top};})()")
                x, y = box["x"] + at["x"], box["y"] + at["y"]
                # As a person would: onto the node, press, release.
                await page.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
                for kind in ("mousePressed", "mouseReleased"):
                    await page.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
                await asyncio.sleep(0.5)
                highlighted = await page.eval("window.cfgctlHighlighted")
                shot = await page.send("Page.captureScreenshot", format="png")
                (tmp_path / "graph.png").write_bytes(base64.b64decode(shot["data"]))
                # Whatever arrived meanwhile (errors logged after the last command).
                try:
                    while True:
                        page.note(json.loads(await asyncio.wait_for(ws.recv(), 0.3)))
                except TimeoutError:
                    pass
                return drawn, canvas, highlighted, page.errors
        finally:
            proc.terminate()
            proc.wait(10)

    drawn, canvas, highlighted, errors = asyncio.run(drive())
    assert drawn == 5 and canvas > 0
    assert errors == []
    # billing's radius: web and api2 reference it, deep references web; lonely is not in it.
    assert highlighted == sorted([ids["web"], ids["api2"], ids["deep"]])
    assert (tmp_path / "graph.png").stat().st_size > 1000
