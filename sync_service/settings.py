"""Settings read from the environment (CFGCTL_*), defaulting to the embedded stack."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_PORT = 54322


def local_db_url(port: int) -> str:
    """The embedded stack's URL, the same one `supabase start` prints."""
    return f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CFGCTL_", extra="ignore")

    pg_port: int = DEFAULT_PG_PORT
    db_url: str | None = None
    # Where `cfgctl local` keeps its state; the data directory may live elsewhere (see sync_service/local_stack.py).
    state_dir: Path = PROJECT_ROOT / ".cfgctl"

    @property
    def effective_db_url(self) -> str:
        return self.db_url or local_db_url(self.pg_port)


@lru_cache
def get_settings() -> Settings:
    return Settings()
