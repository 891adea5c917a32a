"""The migration runner behind `cfgctl db migrate` (DESIGN.md §2).

Under an advisory lock: versioned files in migrations/ once each, in order; then
functions/ and policies/ whenever their checksum changes (all of them again after a
migration ran, since DDL may have replaced what they attach to). History lives in
cfgctl's own table cfg_private.schema_migrations, never the host's supabase_migrations.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .db import CfgError
from .settings import SQL_ROOT

# Any 64-bit constant works; this one is "cfgctl" in ASCII.
MIGRATE_LOCK_KEY = 0x63666763746C
MIGRATION_NAME = re.compile(r"^(\d{14})_[a-z0-9_]+\.sql$")
KINDS = ("migration", "function", "policy")
# What follows this line in a migration runs after the migration committed, one
# statement at a time: statements that cannot run in a transaction (VACUUM FULL).
AFTER_COMMIT = re.compile(r"^-- cfgctl: after commit$", re.MULTILINE)

BOOTSTRAP = """
create schema if not exists cfg_private;
create table if not exists cfg_private.schema_migrations (
    kind text not null check (kind in ('migration', 'function', 'policy')),
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now(),
    primary key (kind, name)
);
alter table cfg_private.schema_migrations enable row level security;
revoke all on cfg_private.schema_migrations from public;
"""


@dataclass
class SqlFile:
    kind: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass
class MigrateReport:
    applied: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"applied": self.applied, "changed": bool(self.applied)}


def project_files(root: Path = SQL_ROOT) -> list[SqlFile]:
    if not (root / "migrations").is_dir():
        # Never report "up to date" for an install that lost its schema files.
        raise CfgError(f"no schema files: {root / 'migrations'} does not exist; reinstall cfgctl")
    files: list[SqlFile] = []
    for path in sorted((root / "migrations").glob("*.sql")):
        if not MIGRATION_NAME.match(path.name):
            raise CfgError(
                f"migration file name {path.name!r} must look like YYYYMMDDHHMMSS_name.sql"
            )
        files.append(SqlFile("migration", path))
    files += [SqlFile("function", p) for p in sorted((root / "functions").glob("*.sql"))]
    files += [SqlFile("policy", p) for p in sorted((root / "policies").glob("*.sql"))]
    return files


def _history(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    rows = conn.execute("select kind, name, checksum from cfg_private.schema_migrations")
    return {(kind, name): checksum for kind, name, checksum in rows}


def _run(conn: psycopg.Connection, file: SqlFile, sql: str) -> None:
    try:
        conn.execute(sql)
    except psycopg.Error as exc:
        raise CfgError(
            f"{file.kind} {file.name} failed: {exc.diag.message_primary or exc}",
            exc.sqlstate,
        ) from exc


def _apply(conn: psycopg.Connection, file: SqlFile) -> None:
    in_transaction, *after_commit = AFTER_COMMIT.split(file.sql, maxsplit=1)
    with conn.transaction():
        _run(conn, file, in_transaction)
        conn.execute(
            """
            insert into cfg_private.schema_migrations (kind, name, checksum)
            values (%s, %s, %s)
            on conflict (kind, name) do update
                set checksum = excluded.checksum, applied_at = now()
            """,
            (file.kind, file.name, file.checksum),
        )
    # Recorded already: these only tidy up (a failure says so, and is safe to redo by hand).
    for statement in "".join(after_commit).split(";"):
        if statement.strip():
            _run(conn, file, statement)


def migrate(db_url: str, root: Path = SQL_ROOT) -> MigrateReport:
    files = project_files(root)
    report = MigrateReport()
    with psycopg.connect(db_url, autocommit=True) as conn:
        # Session-level lock: a concurrent migrate waits here until we are done.
        conn.execute("select pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
        try:
            conn.execute(BOOTSTRAP)
            history = _history(conn)
            ran_migration = False
            for file in files:
                recorded = history.get((file.kind, file.name))
                if file.kind == "migration":
                    if recorded is None:
                        _apply(conn, file)
                        report.applied.append(f"migrations/{file.name}")
                        ran_migration = True
                    elif recorded != file.checksum:
                        raise CfgError(
                            f"migration {file.name} was changed after it was applied; "
                            "migrations are forward-only: revert the edit and add a new migration",
                            "PT409",
                            {"file": file.name, "applied_checksum": recorded,
                             "file_checksum": file.checksum},
                        )
                elif ran_migration or recorded != file.checksum:
                    _apply(conn, file)
                    folder = "functions" if file.kind == "function" else "policies"
                    report.applied.append(f"{folder}/{file.name}")
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))
    return report


def status(db_url: str, root: Path = SQL_ROOT) -> list[dict]:
    """Each project file with its state: applied, pending, changed (refused) or stale."""
    files = project_files(root)
    with psycopg.connect(db_url, autocommit=True) as conn:
        exists = conn.execute(
            "select to_regclass('cfg_private.schema_migrations') is not null"
        ).fetchone()[0]
        history = _history(conn) if exists else {}
        applied_at = {}
        if exists:
            for kind, name, at in conn.execute(
                "select kind, name, applied_at from cfg_private.schema_migrations"
            ).fetchall():
                applied_at[(kind, name)] = at.isoformat()
    rows = []
    for file in files:
        recorded = history.get((file.kind, file.name))
        if recorded is None:
            state = "pending"
        elif recorded == file.checksum:
            state = "applied"
        else:
            state = "changed" if file.kind == "migration" else "stale"
        rows.append({
            "kind": file.kind,
            "name": file.name,
            "state": state,
            "applied_at": applied_at.get((file.kind, file.name)),
        })
    return rows
