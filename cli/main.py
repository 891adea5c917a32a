"""The `cfgctl` entry point: one Typer app, one sub-app per concept."""

from __future__ import annotations

import functools

import click
import psycopg
import typer

from sync_service.db import CfgError

from .analytics_cmd import analytics_app
from .audit import audit_app
from .bulk_cmd import bulk_app
from .common import fail
from .config_cmd import config_app
from .env_cmd import env_app
from .export_cmd import export, import_
from .graph_cmd import graph, impact
from .rule_cmd import rule_app, type_app
from .schedule_cmd import schedule_app
from .search_cmd import filter_app, find, reindex, search
from .secret_cmd import secret_app
from .serve import serve
from .stack import db_app, local_app
from .template_cmd import template_app
from .tenancy import automation_app, invite_app, member_app, org_app, user_app
from .vault_cmd import vault_app
from .watch_cmd import watch
from .webhook_cmd import webhook_app

app = typer.Typer(
    help="cfgctl: config management on Supabase.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(local_app, name="local")
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="org")
app.add_typer(member_app, name="member")
app.add_typer(invite_app, name="invite")
app.add_typer(user_app, name="user")
app.add_typer(automation_app, name="automation")
app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
app.add_typer(env_app, name="env")
app.add_typer(webhook_app, name="webhook")
app.add_typer(secret_app, name="secret")
app.add_typer(vault_app, name="vault")
app.add_typer(type_app, name="type")
app.add_typer(rule_app, name="rule")
app.add_typer(template_app, name="template")
app.add_typer(filter_app, name="filter")
app.command("search")(search)
app.command("find")(find)
app.command("search-reindex")(reindex)
app.add_typer(bulk_app, name="bulk")
app.add_typer(schedule_app, name="schedule")
app.command("serve")(serve)
app.command("watch")(watch)
app.command("export")(export)
app.command("import")(import_)
app.command("graph")(graph)
app.command("impact")(impact)
app.add_typer(analytics_app, name="analytics")


@functools.cache
def command() -> click.Command:
    """The click command Typer builds from every signature (~1 s under load): once per process,
    not once per call (the tests call main() in-process hundreds of times)."""
    return typer.main.get_command(app)


def main() -> None:
    try:
        command()()
    except CfgError as error:
        fail(error)
    except psycopg.Error as error:
        fail(CfgError.from_psycopg(error))
