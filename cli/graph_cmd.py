"""`cfgctl graph` — an org's dependency graph (cfg.dependency_graph) exported with networkx as
GraphML, DOT, JSON (node-link) or one self-contained HTML page drawn by pyvis (vis-network,
inlined: it works offline): drag, zoom, hover for the keys, click a node to highlight its
impact radius. `cfgctl impact` prints an automation's impact radius (cfg.impact) as a tree."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.tree import Tree

from .common import AsOpt, JsonOpt, ServiceOpt, console, resolve_automation, resolve_org, session, to_json

if TYPE_CHECKING:
    import networkx as nx

FORMATS = ("graphml", "dot", "json", "html")
BADGE_COLOURS = {"valid": "#2ca02c", "warnings": "#ffbf00", "errors": "#d62728", "unchecked": "#7f7f7f"}
EDGE_STYLES = {"value": "solid", "secret": "dashed", "declared": "dotted"}

# Clicking a node colours it and every automation that references it, transitively (the
# edges point from the referencing automation to the referenced one); clicking the
# background restores the colours. The highlighted ids are left in window.cfgctlHighlighted.
HIGHLIGHT_JS = """
<script type="text/javascript">
(function () {
  var original = {};
  nodes.get().forEach(function (n) { original[n.id] = n.color; });
  network.on("click", function (params) {
    if (!params.nodes.length) {
      nodes.update(nodes.get().map(function (n) { return {id: n.id, color: original[n.id]}; }));
      window.cfgctlHighlighted = [];
      return;
    }
    var start = params.nodes[0], hit = {}, queue = [start];
    hit[start] = true;
    while (queue.length) {
      var at = queue.shift();
      edges.get({filter: function (e) { return e.to === at; }}).forEach(function (e) {
        if (!hit[e.from]) { hit[e.from] = true; queue.push(e.from); }
      });
    }
    nodes.update(nodes.get().map(function (n) {
      return {id: n.id, color: n.id === start ? "#1f77b4" : (hit[n.id] ? "#ff7f0e" : "#e0e0e0")};
    }));
    window.cfgctlHighlighted = Object.keys(hit).filter(function (id) { return id !== start; }).sort();
  });
})();
</script>
"""


def to_networkx(graph: dict) -> nx.DiGraph:
    import networkx as nx  # here, not at the top: it costs every cfgctl command 0.3 s to import
    """Nodes by automation id (label, type, status, badge, external); edges from the referencing
    automation to the referenced one, one per kind, with their keys (comma-separated)."""
    g = nx.DiGraph(org_id=str(graph["org_id"]))
    for n in graph["nodes"]:
        g.add_node(str(n["automation_id"]), label=n["label"], name=n["name"], type=n["type"],
                   status=n["status"], badge=n["badge"], external=n["external"])
    for e in graph["edges"]:
        keys = ", ".join(e["keys"])
        if g.has_edge(e["from"], e["to"]):  # several kinds between two automations: one edge, kinds joined
            data = g.edges[e["from"], e["to"]]
            data["kind"] += "," + e["kind"]
            data["keys"] = ", ".join(k for k in (data["keys"], keys) if k)
        else:
            g.add_edge(e["from"], e["to"], kind=e["kind"], keys=keys)
    return g


def _dot_id(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: nx.DiGraph) -> str:
    lines = ["digraph dependencies {", "  rankdir=LR;"]
    for node, data in g.nodes(data=True):
        colour = _dot_id(BADGE_COLOURS[data["badge"]])
        lines.append(f"  {_dot_id(node)} [label={_dot_id(data['label'])}, color={colour}];")
    for a, b, data in g.edges(data=True):
        style = EDGE_STYLES.get(data["kind"].split(",")[0], "solid")
        lines.append(f"  {_dot_id(a)} -> {_dot_id(b)} [label={_dot_id(data['keys'] or data['kind'])}, style={style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_html(g: nx.DiGraph, title: str) -> str:
    from pyvis.network import Network

    # pyvis prints a heading twice: the page's <title> and a caption of our own instead.
    net = Network(height="750px", width="100%", directed=True, cdn_resources="in_line")
    for node, data in g.nodes(data=True):
        net.add_node(node, label=data["label"], color=BADGE_COLOURS[data["badge"]],
                     title=f"{data['label']} ({data['type']}, {data['status']}, rules: {data['badge']})",
                     shape="box" if data["external"] else "dot")
    for a, b, data in g.edges(data=True):
        net.add_edge(a, b, title=f"{data['kind']}: {data['keys'] or '(declared)'}",
                     dashes=data["kind"] != "value")
    net.barnes_hut()
    page = net.generate_html(notebook=False)
    # pyvis's page also links Bootstrap from a CDN (only for its optional menus): left out,
    # so the page needs no network at all.
    page = re.sub(r'<link[^>]*href="https?://[^"]*"[^>]*/?>', "", page)
    page = re.sub(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>', "", page)
    page = page.replace("<head>", f"<head><title>{html.escape(title)}</title>", 1)
    page = page.replace("<body>", f"<body><p><b>{html.escape(title)}</b>: click an automation to highlight "
                                  "what references it, transitively; hover for the keys.</p>", 1)
    return page.replace("</body>", HIGHLIGHT_JS + "</body>")


def graph(org: Annotated[str, typer.Argument(help="The organisation (slug or id)")],
          format_: Annotated[str, typer.Option("--format", "-f", help="graphml, dot, json or html")] = "json",
          output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")] = None,
          env: Annotated[str | None, typer.Option("--env", help="What each automation runs there")] = None,
          version: Annotated[int | None, typer.Option(
              "--version", help="A past version of --automation: its references")] = None,
          automation: Annotated[str | None, typer.Option("--automation", help="With --version: ORG/SLUG or id")] = None,
          as_user: AsOpt = None, service: ServiceOpt = False):
    """Export the dependency graph of an org (networkx): GraphML, DOT, JSON, or an interactive HTML page."""
    if format_ not in FORMATS:
        raise typer.BadParameter(f"--format is one of {', '.join(FORMATS)}")
    with session(as_user, service) as (cur, _):
        org_row = resolve_org(cur, org)
        around = resolve_automation(cur, org_row["slug"], automation)["id"] if automation else None
        data = cur.execute("select cfg.dependency_graph(%s, %s, %s, %s) as g",
                           (org_row["id"], env, version, around)).fetchone()["g"]
    import networkx as nx

    g = to_networkx(data)
    if format_ == "graphml":
        text = "\n".join(nx.generate_graphml(g)) + "\n"
    elif format_ == "dot":
        text = to_dot(g)
    elif format_ == "html":
        text = to_html(g, f"{org_row['slug']}: dependencies" + (f" in {env}" if env else ""))
    else:
        text = json.dumps(nx.node_link_data(g, edges="edges"), indent=2) + "\n"
    if output:
        output.write_text(text)
        console.print(f"{g.number_of_nodes()} automations, {g.number_of_edges()} references -> {output}")
    else:
        print(text, end="")


def impact(automation: Annotated[str, typer.Argument(help="The automation, ORG/SLUG or id")],
           keys: Annotated[list[str] | None, typer.Argument(help="Only what references these (section.key)")] = None,
           env: Annotated[str | None, typer.Option("--env", help="In what this environment runs")] = None,
           max_depth: Annotated[int | None, typer.Option("--max-depth", help="Levels to follow")] = None,
           max_rows: Annotated[int, typer.Option("--max-rows", help="Automations per page (1-1000)")] = 100,
           cursor: Annotated[str | None, typer.Option("--cursor", help="The page after this (a next cursor)")] = None,
           as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Print the impact radius of changing an automation (or some of its keys) as a tree, a page at a time."""
    with session(as_user, service) as (cur, _):
        target = resolve_automation(cur, None, automation)
        report = cur.execute("select cfg.impact(%s, %s, %s, %s, %s, %s) as r",
                             (target["id"], keys or None, env, max_depth, max_rows, cursor)).fetchone()["r"]
    if as_json:
        print(to_json(report))
        return
    tree = Tree(f"[bold]{target['slug']}[/bold] — {report['summary']}")
    branches = {str(target["id"]): tree}
    for a in report["automations"]:  # by depth: every via is placed before those reached through it
        if str(a["via"]) not in branches:  # listed on an earlier page: shown by its path
            branches[str(a["via"])] = tree.add(" → ".join(a["path"][:-1]) or "…")
        parent = branches[str(a["via"])]
        keys_text = f" [dim]({', '.join(a['keys'])})[/dim]" if a["keys"] else " [dim](declared)[/dim]"
        branches[str(a["automation_id"])] = parent.add(f"{a['name']}{keys_text}")
    console.print(tree)
    if report["next_cursor"]:
        console.print(f"more: --cursor '{report['next_cursor']}'", markup=False)
