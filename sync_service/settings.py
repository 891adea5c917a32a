"""Settings read from the environment (CFGCTL_*), defaulting to the embedded stack.

Where things are. From a checkout (or its editable install) the schema files are the
checkout's own folders and the local stack's state lives in <checkout>/.cfgctl. From an
installed wheel the schema files are the copy the wheel ships (sync_service/sql/, see
pyproject.toml) and the state is per user: $XDG_STATE_HOME/cfgctl, else ~/.local/state/cfgctl.
CFGCTL_STATE_DIR overrides either.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
# Only a built wheel has this directory; a checkout keeps the folders at its top level.
_SHIPPED_SQL = PACKAGE_DIR / "sql"
# The source checkout this code runs from, or None when cfgctl is installed from a wheel.
CHECKOUT: Path | None = None if _SHIPPED_SQL.is_dir() else PACKAGE_DIR.parent
# Holds migrations/, functions/, policies/, supabase/ and seed.sql.
SQL_ROOT: Path = CHECKOUT or _SHIPPED_SQL
DEFAULT_PG_PORT = 54322


def local_db_url(port: int) -> str:
    """The embedded stack's URL, the same one `supabase start` prints."""
    return f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"


def default_state_dir() -> Path:
    if CHECKOUT is not None:
        return CHECKOUT / ".cfgctl"
    state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state_home) / "cfgctl"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CFGCTL_", extra="ignore")

    pg_port: int = DEFAULT_PG_PORT
    db_url: str | None = None
    # Where `cfgctl local` keeps its state; the data directory may live elsewhere
    # (see sync_service/local_stack.py).
    state_dir: Path = Field(default_factory=default_state_dir)
    # A hosted Supabase project's URL and service key, for its HTTP services (Storage
    # bundles: sync_service/bundles.py); unset on the embedded stack.
    supabase_url: str | None = None
    supabase_service_key: str | None = None

    @property
    def effective_db_url(self) -> str:
        return self.db_url or local_db_url(self.pg_port)


@lru_cache
def get_settings() -> Settings:
    return Settings()
