"""The one CLI runner: the real `cfgctl` entry point (cli.main:main, which renders errors
and maps them to exit codes 0-6) run in-process through click's CliRunner. The `cfgctl`
fixture (tests/conftest.py) points it at the test's database; `run_cfgctl` takes the
environment as given. Tests that need the installed binary itself run it as a subprocess."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import click
from click.testing import CliRunner

from cli.main import main
from sync_service.settings import get_settings

# Only what the test passes counts: no identity or hosted project from the caller's shell;
# wide enough that no line (a `detail:` JSON) is wrapped.
CLEAN_ENV = {"CFGCTL_AS": None, "CFGCTL_SUPABASE_URL": None, "CFGCTL_SUPABASE_SERVICE_KEY": None,
             "COLUMNS": "1000", "NO_COLOR": "1"}


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def entry_point(args: tuple[str, ...]) -> None:
    """Runs cli.main:main exactly as the console script does, with these arguments."""
    get_settings.cache_clear()  # settings come from the environment of this invocation
    sys.argv = ["cfgctl", *args]
    main()


@dataclass
class Run:
    code: int
    out: str
    err: str
    output: str  # stdout and stderr as a terminal shows them

    def json(self):
        return json.loads(self.out)

    @property
    def detail(self):
        """The `detail:` JSON an error printed (cli.common.fail), or None."""
        for line in self.err.splitlines():
            if line.startswith("detail: "):
                return json.loads(line.removeprefix("detail: "))
        return None


def run_cfgctl(*args: str, env: dict | None = None, input: str | None = None) -> Run:
    result = CliRunner().invoke(entry_point, list(args), env={**CLEAN_ENV, **(env or {})}, input=input,
                                catch_exceptions=False)
    get_settings.cache_clear()
    return Run(result.exit_code, result.stdout, result.stderr, result.output)
