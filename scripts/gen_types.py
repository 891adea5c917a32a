"""Generate supabase/types/database.ts, the dashboard's TypeScript types, from the schema.

    python scripts/gen_types.py           # (re)write the committed file (`make types`)
    python scripts/gen_types.py --check   # exit 1 when the committed file differs

Starts a throwaway PostgreSQL cluster, migrates a fresh database exactly as the tests do
(Supabase shim + migrations + functions + policies, no seed), and runs Supabase's own
generator on it: postgres-meta's type-generation mode, the one `supabase gen types
typescript --schema cfg` runs in its container. postgres-meta is an npm package pinned in
tools/typegen (installed by scripts/bootstrap.sh with `npm ci`).

tests/platform/test_types.py imports `generate()` from here, so the test and `make types` produce
the file the same way.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's modules, not another one's editable install

# The one import of the embedded-cluster library (it may move to sync_service).
from sync_service import local_stack as local  # noqa: E402

TYPES_FILE = ROOT / "supabase" / "types" / "database.ts"
TYPEGEN_DIR = ROOT / "tools" / "typegen"
PG_META_SERVER = TYPEGEN_DIR / "node_modules" / "@supabase" / "postgres-meta" / "dist" / "server" / "server.js"
# Only the schema PostgREST exposes (supabase/config.toml [api] schemas); cfg_private never is.
SCHEMAS = ["cfg"]


class TypegenMissing(RuntimeError):
    """node or the pinned postgres-meta is not installed."""


def generator_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise TypegenMissing("node is not installed (apt-get install nodejs npm, or run ./scripts/bootstrap.sh)")
    if not PG_META_SERVER.exists():
        raise TypegenMissing(f"postgres-meta is not installed: run `npm ci --ignore-scripts --prefix {TYPEGEN_DIR}`"
                             " (or ./scripts/bootstrap.sh)")
    return [node, str(PG_META_SERVER)]


def generate(db_url: str) -> str:
    """The TypeScript types of the database at db_url, as `supabase gen types typescript` prints them."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PG_META_DB_URL": db_url,
        "PG_META_GENERATE_TYPES": "typescript",
        "PG_META_GENERATE_TYPES_INCLUDED_SCHEMAS": ",".join(SCHEMAS),
        # cfg is the only schema, so the helpers take bare names: Tables<"automations">.
        "PG_META_GENERATE_TYPES_DEFAULT_SCHEMA": SCHEMAS[0],
        # isOneToOne on relationships (a unique foreign key), as the Supabase CLI asks for.
        "PG_META_GENERATE_TYPES_DETECT_ONE_TO_ONE_RELATIONSHIPS": "true",
    }
    result = subprocess.run(generator_command(), env=env, cwd=TYPEGEN_DIR, capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"postgres-meta failed ({result.returncode}):\n{result.stderr.strip()}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def migrated_database() -> Iterator[str]:
    """A fresh database on a throwaway cluster, migrated like tests/conftest.py's template."""
    local.check_packages()
    # /var/tmp: the postgres OS user must reach it when this runs as root.
    base = Path(tempfile.mkdtemp(prefix="cfgctl-types-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    cluster = local.Cluster(data_dir=base / "pg" / "data", port=free_port(), fast=True)
    try:
        cluster.init()
        cluster.start()
        with psycopg.connect(cluster.db_url, autocommit=True) as admin:
            admin.execute("create database cfgctl_types")
        url = cluster.url_for("cfgctl_types")
        local.provision(url, seed=False)
        yield url
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    generator_command()  # fail before starting a cluster when the generator is missing
    with migrated_database() as url:
        types = generate(url)
    rel = TYPES_FILE.relative_to(ROOT)
    if check:
        if TYPES_FILE.exists() and TYPES_FILE.read_text() == types:
            print(f"{rel} is up to date")
            return 0
        print(f"{rel} differs from the schema; run `make types`", file=sys.stderr)
        return 1
    TYPES_FILE.parent.mkdir(parents=True, exist_ok=True)
    TYPES_FILE.write_text(types)
    print(f"wrote {rel} ({len(types.splitlines())} lines, schemas: {', '.join(SCHEMAS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
