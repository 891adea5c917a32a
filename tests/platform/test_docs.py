"""The docs against the code (issue 9): every RPC is documented with its arguments, every
`cfgctl` command with its options, nothing documented is stale, every docs page is linked
from the README and every area page follows one template."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]


def documentation() -> str:
    return "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def test_every_rpc_is_documented_with_its_arguments(conn):
    rows = conn.execute(
        "select p.proname, coalesce(array_to_string(p.proargnames[1:p.pronargs], ', '), '') as args "
        "from pg_proc p where p.pronamespace = 'cfg'::regnamespace order by 1"
    ).fetchall()
    docs = documentation()

    def documented(name: str, args: str) -> bool:
        # `name(a, b = default, c)`: the arguments in order, defaults optional.
        names = [a for a in args.split(", ") if a]
        pattern = r"`" + re.escape(name) + r"\(" + ", ".join(re.escape(a) + r"(?: = [^,)`]*)?" for a in names) + r"\)"
        return re.search(pattern, docs) is not None

    missing = [f"{r['proname']}({r['args']})" for r in rows if not documented(r["proname"], r["args"])]
    assert missing == []


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    pages = [p.name for p in (ROOT / "docs").glob("*.md")]
    assert pages
    assert [p for p in pages if f"docs/{p}" not in readme] == []


# --- The CLI against its docs (datasette's model: tests/test_docs.py checks the docs
# against each command's --help). Every command path must be documented as code
# (`cfgctl env promote …`), and each of its options must appear on the code lines that
# show it; every `cfgctl …` the docs show must exist; every command's --help must run.


# Options every data command shares, documented once in docs/api.md ("Using the CLI").
SHARED_OPTIONS = {"--as", "--service", "--json", "--help"}
# Pages that are not an area (no RPCs/tables/CLI of their own). secrets.md describes the
# Vault API cfgctl relies on until the secrets feature (issue 10) gives it an area page.
GUIDE_PAGES = {"api.md", "performance.md", "secrets.md"}
TEMPLATE = ["RPCs", "Tables", "CLI", "Errors", "Events", "Guarantees", "Figures"]


def command_paths() -> dict[tuple[str, ...], click.Command]:
    found: dict[tuple[str, ...], click.Command] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group (typer 0.29 vendors its own click classes)
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found[path] = command

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = command_paths()


def code_text() -> list[str]:
    """Every line of code in the docs: inline code spans and fenced blocks."""
    lines: list[str] = []
    for line in documentation().splitlines():
        lines.extend(re.findall(r"`([^`]+)`", line))
    for block in re.findall(r"```[a-z]*\n(.*?)```", documentation(), re.S):
        lines.extend(block.splitlines())
    return lines


def mentions(path: tuple[str, ...]) -> list[str]:
    """The code lines that show `cfgctl <path>`, followed by an argument, an option or nothing."""
    pattern = re.compile(r"\bcfgctl " + re.escape(" ".join(path)) + r"(?![\w-])")
    return [line for line in code_text() if pattern.search(line)]


def options(command: click.Command) -> list[list[str]]:
    """Each option's spellings (`--message`/`-m`, `--seed/--no-seed`: either will do), shared ones left out."""
    return [
        p.opts + p.secondary_opts
        for p in command.params
        if p.param_type_name == "option" and not set(p.opts) & SHARED_OPTIONS
    ]


def test_the_cli_walk_finds_the_commands():
    # A walk that found nothing would make every test below pass.
    assert ("env", "promote") in COMMANDS and ("serve",) in COMMANDS and len(COMMANDS) > 40


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_is_documented_with_its_options(path):
    shown = mentions(path)
    assert shown, f"`cfgctl {' '.join(path)}` is not documented in README.md or docs/"
    # One line may show the command with all its options; else they may be spread over its lines.
    text = "\n".join(shown)
    missing = [
        spellings[0]
        for spellings in options(COMMANDS[path])
        if not any(re.search(r"(?<![\w-])" + re.escape(s) + r"(?![\w-])", text) for s in spellings)
    ]
    assert missing == [], f"`cfgctl {' '.join(path)}`: options missing from its docs: {missing}"


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_help_runs(path):
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_every_documented_command_exists():
    stale = set()
    for line in code_text():
        # Not inside a word, a path's dot or a JSON string ("cfgctl test event" is a payload).
        for match in re.finditer(r"(?<![\w.\"-])cfgctl((?: [a-z][a-z-]*){1,3})", line):
            words = tuple(match.group(1).split())
            # A command (its arguments may follow), or a group named on its own (`cfgctl env`).
            if not any(words[:len(p)] == p or p[:len(words)] == words for p in COMMANDS):
                stale.add(match.group(0))
    assert sorted(stale) == []


def test_the_shared_options_are_documented():
    api = (ROOT / "docs" / "api.md").read_text()
    assert all(f"`{o}" in api for o in ("--as EMAIL", "--service", "--json"))


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name not in GUIDE_PAGES))
def test_every_area_page_follows_the_template(page):
    text = (ROOT / "docs" / page).read_text()
    assert text.startswith("# ")
    assert re.findall(r"^## (.+)$", text, re.M) == TEMPLATE
