"""Runs every pgTAP file in tests/sql/ through pg_prove against a fresh database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


@pytest.mark.parametrize("path", sorted(SQL_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_pgtap_file(db_url, path):
    url = urlparse(db_url)
    env = os.environ | {"PGPASSWORD": url.password or ""}
    result = subprocess.run(
        ["pg_prove", "--verbose", "-h", url.hostname, "-p", str(url.port), "-U", url.username,
         "-d", url.path.lstrip("/"), str(path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "All tests successful" in result.stdout
