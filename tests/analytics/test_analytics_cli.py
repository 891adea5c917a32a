"""`cfgctl analytics` on the known history (tests/analytics/history.py): terminal charts with
the numbers, --json series, --plot PNG and SVG with a title and labelled axes, exit codes;
and the one-page HTML report opened in headless Chromium (tests/support/chromium.py)."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import pytest

from tests.analytics.history import write_history
from tests.support.chromium import Page, open_in_chromium
from tests.support.cli import run_cfgctl
from tests.support.rls import shared_world

VIEWER = ("--as", "viewer@example.test")
PERIOD = ("--since", "2026-03-02", "--until", "2026-03-09T23:00:00Z")


def _setup(conn, world):
    world.history = write_history(conn, world)


shared = shared_world("analytics_cli", _setup)


@pytest.fixture(scope="module")
def cfgctl(shared, pg_cluster):
    """cfgctl(*args) -> Run against the module's database: the history, written once (the
    commands only read it)."""
    url = pg_cluster.url_for(shared[0].info.dbname)
    return lambda *args: run_cfgctl(*args, env={"CFGCTL_DB_URL": url})


def test_every_chart_prints_numbers_json_and_plots(cfgctl, tmp_path):
    out = cfgctl("analytics", "changes", "org-a", *PERIOD, *VIEWER)
    assert out.code == 0, out.output
    assert "total 7, max 4" in out.out
    lines = out.out.splitlines()
    assert any(line.startswith("2026-03-02") and "█" * 40 in line and line.rstrip().endswith("4") for line in lines)
    assert any(line.startswith("2026-03-03") and line.rstrip().endswith("0") for line in lines)
    series = cfgctl("analytics", "changes", "org-a", *PERIOD, "--by", "week", "--env", "prod", "--json", *VIEWER).json()
    assert [(p["at"][:10], p["changes"]) for p in series["series"]] == [("2026-03-02", 3), ("2026-03-09", 0)]
    billing = cfgctl("analytics", "changes", "org-a", *PERIOD, "--automation", "billing", "--json", *VIEWER).json()
    assert billing["total"] == 4

    top = cfgctl("analytics", "top", "org-a", *PERIOD, *VIEWER)
    assert top.code == 0 and "billing" in top.out and "web" in top.out
    assert [a["changes"] for a in cfgctl("analytics", "top", "org-a", *PERIOD, "--json", *VIEWER).json()
            ["automations"]] == [4, 3]
    promotions = cfgctl("analytics", "promotions", "org-a", *PERIOD, *VIEWER)
    assert promotions.code == 0, promotions.output
    assert "lead time dev → prod: 3 versions, median 4.0 h" in promotions.out
    assert "50%" in promotions.out
    users = cfgctl("analytics", "users", "org-a", *PERIOD, "--by", "week", *VIEWER)
    assert users.code == 0 and "editor@example.test" in users.out and "admin@example.test" in users.out
    validation = cfgctl("analytics", "validation", "org-a", *PERIOD, "--json", *VIEWER).json()
    assert sum(p["errors"] for p in validation["series"]) == 2

    # Plots: the file, its title and its labelled axes.
    svg = tmp_path / "changes.svg"
    assert cfgctl("analytics", "changes", "org-a", *PERIOD, "--plot", str(svg), *VIEWER).code == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = svg.read_text()
    # matplotlib draws text as paths and names each artist in an id or a comment.
    assert "axes_1" in text and "text_" in text and "patch_" in text
    for chart in ("changes", "top", "promotions", "users", "validation"):
        png = tmp_path / f"{chart}.png"
        run = cfgctl("analytics", chart, "org-a", *PERIOD, "--plot", str(png), *VIEWER)
        assert run.code == 0, run.output
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_errors_have_their_exit_codes(cfgctl, tmp_path):
    assert cfgctl("analytics", "changes", "org-b", *VIEWER).code == 3  # not a member: not found
    bad = cfgctl("analytics", "changes", "org-a", "--by", "month", *VIEWER)
    assert bad.code == 6 and bad.detail["errors"][0]["path"] == "bucket"
    assert cfgctl("analytics", "changes", "org-a", "--since", "2026-03-09", "--until", "2026-03-01", *VIEWER).code == 6
    assert cfgctl("analytics", "top", "org-a", "--limit", "0", *VIEWER).code == 6
    assert cfgctl("analytics", "changes", "org-a", "--env", "qa", *VIEWER).code == 3
    assert cfgctl("analytics", "changes", "org-a", "--since", "last tuesday", *VIEWER).code == 2
    assert cfgctl("analytics", "changes", "org-a", "--plot", str(tmp_path / "x.pdf"), *VIEWER).code == 2
    assert cfgctl("analytics", "users", "org-a", "--by", "hour", *VIEWER).code == 2
    assert not (tmp_path / "x.pdf").exists()


def test_the_report_is_one_page_chromium_draws_with_four_charts_and_no_errors(cfgctl, tmp_path):
    import websockets

    page_file = tmp_path / "report.html"
    run = cfgctl("analytics", "report", "org-a", "--html", str(page_file), *PERIOD, *VIEWER)
    assert run.code == 0, run.output
    html = page_file.read_text()
    # Self-contained: charts inline, nothing fetched from anywhere.
    assert html.count("<svg") == 4 and "src=" not in html and 'href="http' not in html

    async def drive():
        proc, ws_url = open_in_chromium(tmp_path, page_file)
        try:
            async with websockets.connect(ws_url, max_size=None) as ws:
                page = Page(ws)
                for domain in ("Runtime", "Log", "Page", "Network"):
                    await page.send(f"{domain}.enable")
                await page.send("Page.navigate", url=page_file.as_uri())
                deadline = time.monotonic() + 20
                while await page.eval("document.readyState") != "complete":
                    assert time.monotonic() < deadline, "the page did not load"
                    await asyncio.sleep(0.1)
                drawn = await page.eval(
                    "Array.from(document.querySelectorAll('section.chart')).map(s => {"
                    " const svg = s.querySelector('svg'); const box = svg ? svg.getBoundingClientRect() : null;"
                    " return [s.id, box ? Math.round(box.width) : 0, box ? Math.round(box.height) : 0,"
                    " svg ? svg.querySelectorAll('path').length : 0]; })")
                return drawn, await page.drain()
        finally:
            proc.terminate()
            proc.wait(10)

    drawn, errors = asyncio.run(drive())
    assert [d[0] for d in drawn] == ["changes", "top", "promotions", "users"]
    assert all(width > 300 and height > 150 and paths > 20 for _, width, height, paths in drawn), drawn
    assert errors == []
