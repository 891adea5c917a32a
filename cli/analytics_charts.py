"""The charts of `cfgctl analytics`, drawn from the RPCs' answers: matplotlib figures (Agg, no
display) saved as PNG or SVG or inlined into one HTML page, and compact terminal charts
(Rich bars and a sparkline) for people who would rather not open a file."""

from __future__ import annotations

import html
import io
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, ever

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

SPARKS = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 40


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# =============================================================================
# matplotlib: one figure per answer
# =============================================================================


def _time_axis(ax, points: list[dict], bucket: str) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=10))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d %H:%M" if bucket == "hour" else "%Y-%m-%d"))
    ax.set_xlabel(f"{bucket} (UTC)")
    ax.tick_params(axis="x", labelrotation=30)
    if points:
        ax.set_xlim(when(points[0]["at"]), when(points[-1]["at"]))


def _bars_over_time(ax, points: list[dict], field: str, bucket: str, label: str | None = None) -> None:
    width = {"hour": 1 / 24, "day": 1, "week": 7}[bucket] * 0.8
    ax.bar([when(p["at"]) for p in points], [p[field] for p in points], width=width, align="edge", label=label)
    _time_axis(ax, points, bucket)


def changes_figure(answer: dict, org: str) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    _bars_over_time(ax, answer["series"], "changes", answer["bucket"])
    what = "deployments" if answer["source"] == "deployments" else "versions saved"
    ax.set_ylabel(f"changes ({what})")
    ax.set_title(f"{org}: config changes per {answer['bucket']}, {answer['since'][:10]} to {answer['until'][:10]}"
                 f" ({answer['total']} in all)")
    return fig


def top_figure(answer: dict, org: str) -> Figure:
    rows = answer["automations"][::-1]  # the most edited at the top
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.4 * len(rows) + 1.5)), layout="constrained")
    ax.barh([r["slug"] or "(deleted)" for r in rows], [r["changes"] for r in rows])
    ax.set_xlabel("versions saved")
    ax.set_ylabel("automation")
    ax.set_title(f"{org}: most edited automations, {answer['since'][:10]} to {answer['until'][:10]}")
    return fig


def promotions_figure(answer: dict, org: str) -> Figure:
    envs = answer["environments"]
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    positions = range(len(envs))
    for offset, (outcome, colour) in enumerate((("applied", "tab:green"), ("rejected", "tab:red"),
                                                ("superseded", "tab:gray"), ("direct", "tab:blue"))):
        ax.bar([p + (offset - 1.5) * 0.2 for p in positions], [e[outcome] for e in envs], width=0.2,
               label=outcome, color=colour)
    ax.set_xticks(list(positions), [e["environment"] for e in envs])
    ax.set_xlabel("target environment")
    ax.set_ylabel("promotions")
    ax.legend()
    lead = answer["lead_time"]
    ax.set_title(f"{org}: promotion outcomes, {answer['since'][:10]} to {answer['until'][:10]}; "
                 f"lead time {lead['from']}→{lead['to']} median {_duration(lead['median_seconds'])}, "
                 f"p90 {_duration(lead['p90_seconds'])}")
    return fig


def users_figure(answer: dict, org: str) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    _bars_over_time(ax, answer["daily"], "users", "day", label="daily")
    ax.step([when(p["at"]) for p in answer["weekly"]], [p["users"] for p in answer["weekly"]], where="post",
            color="tab:orange", label="weekly")
    _time_axis(ax, answer["daily"], "day")
    ax.set_ylabel("active users")
    ax.legend()
    ax.set_title(f"{org}: active users, {answer['since'][:10]} to {answer['until'][:10]}")
    return fig


def validation_figure(answer: dict, org: str) -> Figure:
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    points = answer["series"]
    ax.plot([when(p["at"]) for p in points], [p["errors"] for p in points], marker="o", color="tab:red",
            label="into errors")
    ax.plot([when(p["at"]) for p in points], [p["warnings"] for p in points], marker="o", color="tab:orange",
            label="into warnings")
    _time_axis(ax, points, answer["bucket"])
    ax.set_ylabel("validation failures")
    ax.legend()
    ax.set_title(f"{org}: validation failures per {answer['bucket']}, {answer['since'][:10]} to "
                 f"{answer['until'][:10]}")
    return fig


def save_figure(fig: Figure, path: Path) -> None:
    """PNG or SVG, by the file's suffix."""
    fig.savefig(path, format=path.suffix.lstrip(".").lower(), dpi=110)
    plt.close(fig)


def svg_of(fig: Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog or doctype


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


# =============================================================================
# The terminal: a sparkline and bars
# =============================================================================


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if top == 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[round(v / top * (len(SPARKS) - 1))] for v in values)


def print_series(console: Console, title: str, points: list[dict], field: str, bucket: str) -> None:
    values = [p[field] for p in points]
    console.print(f"[bold]{title}[/bold]  {sparkline(values)}  total {sum(values)}, max {max(values, default=0)}")
    bars(console, [(p["at"][:16].replace("T", " ") if bucket == "hour" else p["at"][:10], p[field]) for p in points])


def bars(console: Console, rows: list[tuple[str, int]]) -> None:
    top = max((n for _, n in rows), default=0) or 1
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column()
    table.add_column()
    table.add_column(justify="right")
    for label, n in rows:
        table.add_row(label, "█" * round(n / top * BAR_WIDTH) or ("▏" if n else ""), str(n))
    console.print(table)


def print_promotions(console: Console, answer: dict) -> None:
    table = Table(title=f"promotions {answer['since'][:10]} to {answer['until'][:10]}")
    for column in ("environment", "requested", "applied", "rejected", "superseded", "pending", "direct",
                   "applied %", "wait median", "wait p90"):
        table.add_column(column)
    for e in answer["environments"]:
        rate = "-" if e["applied_rate"] is None else f"{float(e['applied_rate']) * 100:.0f}%"
        table.add_row(e["environment"], *(str(e[k]) for k in ("requested", "applied", "rejected", "superseded",
                                                                "pending", "direct")),
                      rate, _duration(e["approval_wait"]["median_seconds"]),
                      _duration(e["approval_wait"]["p90_seconds"]))
    console.print(table)
    lead = answer["lead_time"]
    console.print(f"lead time {lead['from']} → {lead['to']}: {lead['count']} versions, median "
                  f"{_duration(lead['median_seconds'])}, p90 {_duration(lead['p90_seconds'])}")


# =============================================================================
# One HTML page with every chart, inline (no script, no network)
# =============================================================================


def report_html(org: str, charts: list[tuple[str, str, Figure]]) -> str:
    """charts: (id, heading, figure)."""
    sections = "\n".join(
        f'<section class="chart" id="{html.escape(ident)}"><h2>{html.escape(heading)}</h2>\n{svg_of(fig)}</section>'
        for ident, heading, fig in charts
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>cfgctl analytics: {html.escape(org)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:960px}"
        "section.chart svg{max-width:100%;height:auto}</style></head>\n"
        f"<body><h1>Analytics: {html.escape(org)}</h1>\n{sections}\n</body></html>\n"
    )
