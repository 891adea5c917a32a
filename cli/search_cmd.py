"""`cfgctl search`, `cfgctl find` and `cfgctl filter` — full-text search over what the caller
may read, the quick find of a command palette, and saved filters (docs/search.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import AsOpt, JsonOpt, ServiceOpt, render, render_one, resolve_org, session, to_json

filter_app = typer.Typer(help="Saved search filters: personal, or shared with the organisation.",
                         no_args_is_help=True)

Org = Annotated[str, typer.Argument(help="The organisation (slug or id)")]
Query = Annotated[str, typer.Argument(help='Words, "a phrase", or, -word; or an exact substring such as a URL')]
FilterId = Annotated[str, typer.Argument(help="The saved filter's id")]
TypeOpt = Annotated[str | None, typer.Option("--type", help="Automation type (slug)")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat: any of them)")]
AllTagsOpt = Annotated[bool, typer.Option("--all-tags", help="Every --tag, not any")]
StatusOpt = Annotated[str | None, typer.Option("--status", help="active, paused or archived")]
EnvOpt = Annotated[str | None, typer.Option("--env", help="Deployed to this environment")]
ValidationOpt = Annotated[str | None, typer.Option("--validation", help="errors or warnings")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Changed since (ISO date or timestamp)")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Changed by (email or user id)")]
SecretsOpt = Annotated[bool | None, typer.Option("--has-secrets/--no-secrets", help="With or without secrets")]
TemplateOpt = Annotated[str | None, typer.Option("--template", help="Made from this template (slug)")]
LimitOpt = Annotated[int, typer.Option("--limit", help="Results per page (1-100)")]
RESULT_COLUMNS = ["automation", "kind", "path", "environments", "snippet", "rank"]


def search_filters(type_: str | None, tags: list[str] | None, all_tags: bool, status: str | None, env: str | None,
                   validation: str | None, since: str | None, by: str | None, has_secrets: bool | None,
                   template: str | None) -> dict:
    """The options as cfg.search's filters object (those given only)."""
    filters = {"type": type_, "tags": tags or None, "tags_match": "all" if all_tags and tags else None,
               "status": status, "environment": env, "validation": validation, "changed_since": since,
               "changed_by": by, "has_secrets": has_secrets, "template": template}
    return {k: v for k, v in filters.items() if v is not None}


def show_results(answer: dict, as_json: bool) -> None:
    if as_json:
        print(to_json(answer))
        return
    render(answer["results"], RESULT_COLUMNS, False)
    for ignored in answer.get("ignored", []):
        print(f"ignored: {ignored['filter']}={ignored['value']} (no such thing any more)")
    if answer.get("next"):
        print(f"more: --after {answer['next']}")


def search(query: Query, org: Annotated[str | None, typer.Option("--org", help="Only this organisation")] = None,
           type_: TypeOpt = None, tag: TagOpt = None, all_tags: AllTagsOpt = False, status: StatusOpt = None,
           env: EnvOpt = None, validation: ValidationOpt = None, since: SinceOpt = None, by: ByOpt = None,
           has_secrets: SecretsOpt = None, template: TemplateOpt = None, limit: LimitOpt = 20,
           after: Annotated[str | None, typer.Option("--after", help="The next page (from a previous answer)")] = None,
           as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Search names, sections, keys and non-secret values across your organisations."""
    filters = search_filters(type_, tag, all_tags, status, env, validation, since, by, has_secrets, template)
    with session(as_user, service) as (cur, _):
        org_id = resolve_org(cur, org)["id"] if org else None
        answer = cur.execute("select cfg.search(%s, %s, %s, %s, %s) as r",
                             (query, org_id, to_json(filters), limit, after)).fetchone()["r"]
    show_results(answer, as_json)


def find(query: Query, limit: Annotated[int, typer.Option("--limit", help="At most this many (1-50)")] = 10,
         as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Quick find: automations, sections, keys, environments, templates and saved filters by name (typos too)."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.quick_find(%s, %s)", (query, limit)).fetchall()
    render(rows, ["kind", "label", "target", "score"], as_json)


def reindex(org: Org, as_user: AsOpt = None, service: ServiceOpt = False):
    """Rebuild the search rows of what the organisation's environments run (admins)."""
    with session(as_user, service) as (cur, _):
        count = cur.execute("select cfg.reindex_search(%s) as n", (resolve_org(cur, org)["id"],)).fetchone()["n"]
    print(f"indexed {count} deployed entries")


@filter_app.command("save")
def filter_save(org: Org, name: Annotated[str, typer.Argument(help="The filter's name")],
                query: Annotated[str, typer.Option("--query", "-q", help="The search words")] = "",
                type_: TypeOpt = None, tag: TagOpt = None, all_tags: AllTagsOpt = False, status: StatusOpt = None,
                env: EnvOpt = None, validation: ValidationOpt = None, since: SinceOpt = None, by: ByOpt = None,
                has_secrets: SecretsOpt = None, template: TemplateOpt = None,
                shared: Annotated[bool, typer.Option("--shared", help="Share with the organisation (editors)")] = False,
                pin: Annotated[bool, typer.Option("--pin", help="Pin it")] = False,
                replace: Annotated[str | None, typer.Option("--id", help="Change this saved filter")] = None,
                as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Save a search (query and filters) under a name."""
    filters = search_filters(type_, tag, all_tags, status, env, validation, since, by, has_secrets, template)
    with session(as_user, service) as (cur, _):
        row = cur.execute("select * from cfg.save_filter(%s, %s, %s, %s, %s, %s, %s)",
                          (resolve_org(cur, org)["id"], name, query, to_json(filters), shared, pin, replace)).fetchone()
    render_one(row, as_json)


@filter_app.command("list")
def filter_list(org: Org, as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Your saved filters and the organisation's shared ones, pinned first."""
    with session(as_user, service) as (cur, _):
        rows = cur.execute("select * from cfg.list_saved_filters(%s)", (resolve_org(cur, org)["id"],)).fetchall()
    render(rows, ["id", "name", "query", "filters", "shared", "pinned"], as_json)


@filter_app.command("run")
def filter_run(filter_id: FilterId, limit: LimitOpt = 20,
               after: Annotated[str | None, typer.Option("--after", help="The next page")] = None,
               as_user: AsOpt = None, service: ServiceOpt = False, as_json: JsonOpt = False):
    """Run a saved filter (what it names that no longer exists is ignored, and said)."""
    with session(as_user, service) as (cur, _):
        answer = cur.execute("select cfg.run_saved_filter(%s, %s, %s) as r", (filter_id, limit, after)).fetchone()["r"]
    show_results(answer, as_json)


@filter_app.command("rm")
def filter_rm(filter_id: FilterId, as_user: AsOpt = None, service: ServiceOpt = False):
    """Delete a saved filter (yours, or a shared one as an editor)."""
    with session(as_user, service) as (cur, _):
        row = cur.execute("select * from cfg.delete_saved_filter(%s)", (filter_id,)).fetchone()
    print(f"deleted saved filter {row['name']}")
