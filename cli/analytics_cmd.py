"""`cfgctl analytics` — change frequency, most edited automations, promotion outcomes, active
users and validation failures of an organisation, as charts (docs/analytics.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from .common import AsOpt, JsonOpt, ServiceOpt, console, resolve_automation, resolve_org, session, to_json

analytics_app = typer.Typer(help="Charts of what happens in an organisation (members).", no_args_is_help=True)

RELATIVE = re.compile(r"^(\d+)([hdw])$")


def _charts():
    """matplotlib is imported on first use: every other cfgctl command (serve too) starts without it."""
    from . import analytics_charts

    return analytics_charts


def parse_time(value: str | None) -> datetime | None:
    """An ISO date or time (UTC unless it says otherwise), or a look back: 48h, 30d, 12w."""
    if value is None:
        return None
    if match := RELATIVE.match(value):
        unit = {"h": "hours", "d": "days", "w": "weeks"}[match[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither an ISO date/time nor a look back such as 30d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _plot_path(value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if path.suffix.lower() not in (".png", ".svg"):
        raise typer.BadParameter(f"--plot draws PNG or SVG files, not {path.suffix or 'no suffix'}")
    return path


Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From (ISO date/time, or 48h, 30d, 12w ago)")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Until (ISO date/time; default now)")]
ByOpt = Annotated[str, typer.Option("--by", help="Bucket: hour, day or week")]
PlotOpt = Annotated[str | None, typer.Option("--plot", help="Draw the chart into FILE.png or FILE.svg")]


def _show(answer: dict, as_json: bool, plot: str | None, figure, terminal) -> None:
    path = _plot_path(plot)
    if as_json:
        print(to_json(answer))
    elif path is None:
        terminal()
    if path is not None:
        _charts().save_figure(figure(), path)
        if not as_json:
            print(f"chart written to {path}")


@analytics_app.command("changes")
def changes(org: Org, since: SinceOpt = None, until: UntilOpt = None, by: ByOpt = "day",
            automation: Annotated[str | None, typer.Option("--automation", help="Only this automation (slug)")] = None,
            env: Annotated[str | None, typer.Option("--env", help="Versions that reached this environment")] = None,
            author: Annotated[str | None, typer.Option("--author", help="Only this author (email or user id)")] = None,
            plot: PlotOpt = None, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Config changes per hour, day or week (versions saved, or deployments into --env)."""
    _plot_path(plot)
    with session(as_user, service) as (cur, _):
        found = resolve_org(cur, org)
        automation_id = resolve_automation(cur, org, automation)["id"] if automation else None
        answer = cur.execute("select cfg.analytics_changes(%s, %s, %s, %s, %s, %s, %s) as r",
                             (found["id"], parse_time(since), parse_time(until), by, automation_id, env,
                              author)).fetchone()["r"]
    _show(answer, as_json, plot, lambda: _charts().changes_figure(answer, found["slug"]),
          lambda: _charts().print_series(console, f"changes per {answer['bucket']} ({answer['source']})",
                                      answer["series"], "changes", answer["bucket"]))


@analytics_app.command("top")
def top(org: Org, since: SinceOpt = None, until: UntilOpt = None,
        limit: Annotated[int, typer.Option("--limit", help="At most this many automations (1-100)")] = 10,
        plot: PlotOpt = None, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """The most edited automations of a period (versions saved)."""
    _plot_path(plot)
    with session(as_user, service) as (cur, _):
        found = resolve_org(cur, org)
        answer = cur.execute("select cfg.analytics_top_automations(%s, %s, %s, %s) as r",
                             (found["id"], parse_time(since), parse_time(until), limit)).fetchone()["r"]
    _show(answer, as_json, plot, lambda: _charts().top_figure(answer, found["slug"]),
          lambda: _charts().bars(console, [(a["slug"] or "(deleted)", a["changes"]) for a in answer["automations"]]))


@analytics_app.command("promotions")
def promotions(org: Org, since: SinceOpt = None, until: UntilOpt = None, plot: PlotOpt = None,
               as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Promotion outcomes per environment, approval wait and lead time from the first environment to the last."""
    _plot_path(plot)
    with session(as_user, service) as (cur, _):
        found = resolve_org(cur, org)
        answer = cur.execute("select cfg.analytics_promotions(%s, %s, %s) as r",
                             (found["id"], parse_time(since), parse_time(until))).fetchone()["r"]
    _show(answer, as_json, plot, lambda: _charts().promotions_figure(answer, found["slug"]),
          lambda: _charts().print_promotions(console, answer))


@analytics_app.command("users")
def users(org: Org, since: SinceOpt = None, until: UntilOpt = None,
          by: Annotated[str, typer.Option("--by", help="Series to print: day or week")] = "day",
          plot: PlotOpt = None, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Active users (people who changed something) per day and week, and who."""
    if by not in ("day", "week"):
        raise typer.BadParameter("--by is day or week")
    _plot_path(plot)
    with session(as_user, service) as (cur, _):
        found = resolve_org(cur, org)
        answer = cur.execute("select cfg.analytics_active_users(%s, %s, %s) as r",
                             (found["id"], parse_time(since), parse_time(until))).fetchone()["r"]

    def terminal():
        series = answer["daily"] if by == "day" else answer["weekly"]
        _charts().print_series(console, f"active users per {by}", series, "users", by)
        _charts().bars(console, [(u["email"] or str(u["user_id"]), u["actions"]) for u in answer["users"]])

    _show(answer, as_json, plot, lambda: _charts().users_figure(answer, found["slug"]), terminal)


@analytics_app.command("validation")
def validation(org: Org, since: SinceOpt = None, until: UntilOpt = None, by: ByOpt = "day",
               env: Annotated[str | None, typer.Option("--env", help="Only this environment")] = None,
               plot: PlotOpt = None, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Validation failures per bucket: what an environment runs going into errors or warnings."""
    _plot_path(plot)
    with session(as_user, service) as (cur, _):
        found = resolve_org(cur, org)
        answer = cur.execute("select cfg.analytics_validation_failures(%s, %s, %s, %s, %s) as r",
                             (found["id"], parse_time(since), parse_time(until), by, env)).fetchone()["r"]

    def terminal():
        _charts().print_series(console, "into errors", answer["series"], "errors", answer["bucket"])
        _charts().print_series(console, "into warnings", answer["series"], "warnings", answer["bucket"])

    _show(answer, as_json, plot, lambda: _charts().validation_figure(answer, found["slug"]), terminal)


@analytics_app.command("report")
def report(org: Org, html: Annotated[str, typer.Option("--html", help="Write the page to this file")],
           since: SinceOpt = None, until: UntilOpt = None, by: ByOpt = "day",
           as_user: AsOpt = None, service: ServiceOpt = False):
    """One self-contained HTML page with the four charts: changes, most edited, promotions, active users."""
    start, end = parse_time(since), parse_time(until)
    with session(as_user, service) as (cur, _):
        found = resolve_org(cur, org)
        org_id = found["id"]
        changed = cur.execute("select cfg.analytics_changes(%s, %s, %s, %s) as r",
                              (org_id, start, end, by)).fetchone()["r"]
        period = (org_id, start, end)
        most = cur.execute("select cfg.analytics_top_automations(%s, %s, %s) as r", period).fetchone()["r"]
        promoted = cur.execute("select cfg.analytics_promotions(%s, %s, %s) as r", period).fetchone()["r"]
        active = cur.execute("select cfg.analytics_active_users(%s, %s, %s) as r", period).fetchone()["r"]
    slug = found["slug"]
    page = _charts().report_html(slug, [
        ("changes", "Config changes", _charts().changes_figure(changed, slug)),
        ("top", "Most edited automations", _charts().top_figure(most, slug)),
        ("promotions", "Promotion outcomes", _charts().promotions_figure(promoted, slug)),
        ("users", "Active users", _charts().users_figure(active, slug)),
    ])
    Path(html).write_text(page, encoding="utf-8")
    print(f"report written to {html}")
