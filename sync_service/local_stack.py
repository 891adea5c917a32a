"""The embedded stack: a private PostgreSQL 15 cluster that behaves like a Supabase database.

The library behind `cfgctl local …` (cli/stack.py), the test fixtures and the benchmarks.
Each state directory (<checkout>/.cfgctl, or a per-user one for an installed wheel; see
settings.py) has its own cluster. As root, initdb and the server run as the `postgres` OS
user, which cannot enter a checkout under /root; the data directory then lives under
/var/lib/cfgctl/<hash of the state directory> and `cfgctl local status` says where.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .db import CfgError
from .migrate import migrate
from .settings import SQL_ROOT, local_db_url

PG_MAJOR = 15
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
PG_SHARE = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension")
PG_LIB = Path(f"/usr/lib/postgresql/{PG_MAJOR}/lib")
POSTGRES = PG_BIN / "postgres"

# The stack's settings file in the data directory, and the line of postgresql.conf that reads it.
SETTINGS_FILE = "cfgctl.conf"
INCLUDE_LINE = f"include '{SETTINGS_FILE}'"
# The root key of the embedded Vault (supabase/local/30_vault.sql), in the data directory.
VAULT_KEY_FILE = "cfgctl_vault.key"
# Earlier releases appended these settings to postgresql.conf under this line.
OLD_BLOCK_MARK = "# cfgctl embedded stack"
OLD_BLOCK_KEYS = {
    "listen_addresses", "unix_socket_directories", "shared_preload_libraries", "cron.database_name",
    "wal_level", "max_replication_slots", "max_wal_senders", "max_connections", "log_min_messages",
    "output_plugin_libraries", "fsync", "synchronous_commit", "full_page_writes",
}

# What the stack needs, and the Debian package that provides it.
REQUIRED_FILES = [
    (PG_BIN / "initdb", f"postgresql-{PG_MAJOR}"),
    (PG_SHARE / "pgcrypto.control", "postgresql-contrib"),
    (PG_SHARE / "pg_trgm.control", "postgresql-contrib"),
    (PG_SHARE / "btree_gin.control", "postgresql-contrib"),
    (PG_SHARE / "pg_cron.control", f"postgresql-{PG_MAJOR}-cron"),
    (PG_LIB / "wal2json.so", f"postgresql-{PG_MAJOR}-wal2json"),
    # The embedded Vault encrypts with AES-GCM from python3-cryptography inside plpython3u.
    (PG_SHARE / "plpython3u.control", f"postgresql-plpython3-{PG_MAJOR}"),
    (Path("/usr/lib/python3/dist-packages/cryptography/__init__.py"), "python3-cryptography"),
    # pg_jsonschema's functions (supabase/local/40_jsonschema.sql): python-jsonschema, and `regex`
    # for patterns that can be stopped when they take too long.
    (Path("/usr/lib/python3/dist-packages/jsonschema/__init__.py"), "python3-jsonschema"),
    (Path("/usr/lib/python3/dist-packages/regex/__init__.py"), "python3-regex"),
]
TEST_FILES = [
    (PG_SHARE / "pgtap.control", f"postgresql-{PG_MAJOR}-pgtap"),
    (PG_SHARE / "plpgsql_check.control", f"postgresql-{PG_MAJOR}-plpgsql-check"),
]


def check_packages(for_tests: bool = False) -> None:
    """Raise, naming the apt packages to install, when a binary or extension is missing."""
    needed = REQUIRED_FILES + (TEST_FILES if for_tests else [])
    missing = sorted({pkg for path, pkg in needed if not path.exists()})
    if missing:
        raise CfgError(
            "PostgreSQL pieces are missing; install them with: "
            f"apt-get install -y {' '.join(missing)}  (or run ./scripts/bootstrap.sh)"
        )


def installed_version() -> str | None:
    """`postgres --version` of the installed server, as `show server_version` words it."""
    try:
        out = subprocess.run([str(POSTGRES), "--version"], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not installed: check_packages() names the package
    return out.strip().removeprefix("postgres (PostgreSQL) ")


def _as_root() -> bool:
    return os.geteuid() == 0


def default_data_dir(state_dir: Path) -> Path:
    if _as_root():
        # One cluster per state directory: a copied checkout, or another CFGCTL_STATE_DIR, gets its own.
        owner = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:12]
        return Path("/var/lib/cfgctl") / owner / "pgdata"
    return state_dir / "pgdata"


@dataclass
class Cluster:
    data_dir: Path
    port: int
    # Test clusters trade crash safety for speed; the local stack keeps the defaults.
    fast: bool = False

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent

    @property
    def db_url(self) -> str:
        return local_db_url(self.port)

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres:postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if _as_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def _prepare_parent(self) -> None:
        parent = self.data_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        if _as_root():
            pg = pwd.getpwnam("postgres")
            for p in [parent, *parent.parents]:
                if p == Path("/"):
                    break
                # The postgres user must be able to traverse every ancestor.
                if p == parent:
                    os.chown(p, pg.pw_uid, pg.pw_gid)
                elif not os.stat(p).st_mode & 0o001:
                    raise CfgError(
                        f"the postgres OS user cannot enter {p}; choose a data directory "
                        "outside it (CFGCTL_DATA_DIR)"
                    )

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        self._prepare_parent()
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir.parent, delete=False) as pw:
            pw.write("postgres\n")
        try:
            if _as_root():
                pg = pwd.getpwnam("postgres")
                os.chown(pw.name, pg.pw_uid, pg.pw_gid)
            result = self._run(
                PG_BIN / "initdb", "-D", self.data_dir, "-U", "postgres",
                "--pwfile", pw.name, "-E", "UTF8", "--locale", "C.UTF-8",
                "--auth-local", "trust", "--auth-host", "scram-sha-256", check=False,
            )
        finally:
            os.unlink(pw.name)
        if result.returncode != 0:
            raise CfgError(f"initdb failed: {result.stderr.strip()}")
        self.ensure_vault_key()
        self.configure()

    @property
    def vault_key_file(self) -> Path:
        return self.data_dir / VAULT_KEY_FILE

    def ensure_vault_key(self) -> bool:
        """Write the embedded Vault's root key unless it exists: 32 random bytes, mode 0600,
        owned by the server's OS user, so only the server (and its superuser-owned plpython3u
        functions) can read it. Never replaced: the secrets encrypted with it depend on it.
        Written here rather than by SQL on first use, so that a lost key is an error, not a
        new key (see _vault_key_for_existing_cluster)."""
        try:
            fd = os.open(self.vault_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        if _as_root():
            pg = pwd.getpwnam("postgres")
            os.chown(self.vault_key_file, pg.pw_uid, pg.pw_gid)
        return True

    # -------------------------------------------------------------------------
    # The settings the stack needs live in one file the data directory includes,
    # rewritten at every start: a cluster created by an older cfgctl, or before a
    # PostgreSQL update that added a setting, gets them too (see start()).
    # -------------------------------------------------------------------------

    @property
    def settings_file(self) -> Path:
        return self.data_dir / SETTINGS_FILE

    def settings(self) -> dict[str, str]:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_preload_libraries": "'pg_cron'",
            "cron.database_name": "'postgres'",
            # pg_cron connects to run each job, by default over TCP where we ask for a
            # password it does not have: every job failed ("connection failed"). Over
            # the socket (trust) it runs them.
            "cron.host": f"'{self.socket_dir}'",
            "wal_level": "logical",
            "max_replication_slots": "10",
            "max_wal_senders": "10",
            "max_connections": "200",
            "log_min_messages": "warning",
        }
        # 15.19+ gates logical decoding plugins; Supabase Realtime's wal2json must be allowed.
        # Older builds refuse to start with a setting they do not know, hence the check.
        sample = PG_SHARE.parent / "postgresql.conf.sample"
        if sample.exists() and "output_plugin_libraries" in sample.read_text():
            settings["output_plugin_libraries"] = "'pgoutput, test_decoding, wal2json'"
        if self.fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return settings

    def _settings_text(self) -> str:
        lines = "".join(f"{k} = {v}\n" for k, v in self.settings().items())
        return f"# Written by cfgctl at every `cfgctl local start`; edit postgresql.conf instead.\n{lines}"

    def _main_conf_text(self) -> str:
        """postgresql.conf with our include last, without the block earlier releases appended."""
        kept: list[str] = []
        in_old_block = False
        for line in (self.data_dir / "postgresql.conf").read_text().splitlines(keepends=True):
            if line.strip() == OLD_BLOCK_MARK:
                in_old_block = True
                continue
            if in_old_block and line.split("=")[0].strip() in OLD_BLOCK_KEYS:
                continue
            in_old_block = False
            if line.strip() != INCLUDE_LINE:
                kept.append(line)
        body = "".join(kept).rstrip("\n")
        return f"{body}\n{INCLUDE_LINE}\n"

    def settings_current(self) -> bool:
        return (
            self.settings_file.exists()
            and self.settings_file.read_text() == self._settings_text()
            and (self.data_dir / "postgresql.conf").read_text() == self._main_conf_text()
        )

    def configure(self) -> bool:
        """Write the stack's settings into the data directory; True when something changed."""
        if self.settings_current():
            return False
        for path, text in ((self.settings_file, self._settings_text()),
                           (self.data_dir / "postgresql.conf", self._main_conf_text())):
            path.write_text(text)
            if _as_root():
                pg = pwd.getpwnam("postgres")
                os.chown(path, pg.pw_uid, pg.pw_gid)
        return True

    # -------------------------------------------------------------------------
    # A postmaster older than the installed binaries. Debian's updates replace
    # /usr/lib/postgresql/15 under a running server: the postmaster keeps the old
    # code while every new backend loads the new libraries (plpgsql.so: undefined
    # symbol). Comparing file times does not work (dpkg keeps the package's build
    # time, older than the server's start); two checks that do:
    #   - the version the server reports differs from `postgres --version`;
    #   - the postmaster's executable (/proc/PID/exe) is no longer the installed
    #     file (dpkg renames the new file over it), which needs no connection.
    # -------------------------------------------------------------------------

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def server_version(self) -> str | None:
        """What the running server reports, e.g. "15.20 (Debian 15.20-0+deb12u1)"; None if unreachable."""
        try:
            with psycopg.connect(self.db_url, connect_timeout=5) as conn:
                return conn.execute("show server_version").fetchone()[0]
        except psycopg.Error:
            return None

    def executable_replaced(self) -> bool:
        pid = self.postmaster_pid()
        try:
            running, installed = os.stat(f"/proc/{pid}/exe"), os.stat(POSTGRES)
        except OSError:  # no /proc, or not allowed to look: rely on the version check
            return False
        return (running.st_dev, running.st_ino) != (installed.st_dev, installed.st_ino)

    def stale_binaries(self) -> bool:
        if not self.is_running():
            return False
        running, installed = self.server_version(), installed_version()
        return (None not in (running, installed) and running != installed) or self.executable_replaced()

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._run(PG_BIN / "pg_ctl", "status", "-D", self.data_dir, check=False).returncode == 0

    def start(self) -> str | None:
        """Start the server, or bring a running one up to date: restart it when the
        installed binaries are newer or its settings changed (the data is kept).
        Returns why it restarted, or None."""
        changed = self.configure()
        if not self.is_running():
            self._pg_ctl("start")
            restarted = None
        elif self.stale_binaries():
            self._pg_ctl("restart")
            restarted = "binaries upgraded"
        elif changed:
            # Most of these settings only take effect at a restart; a reload is also
            # asynchronous. A restart is the one deterministic way.
            self._pg_ctl("restart")
            restarted = "settings changed"
        else:
            restarted = None
        self._vault_key_for_existing_cluster()
        return restarted

    def _vault_key_for_existing_cluster(self) -> None:
        """A cluster created by an older cfgctl has no Vault key yet: write one, unless some
        database already holds secrets, which only the lost key can decrypt."""
        if self.vault_key_file.exists():
            return
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            names = [r[0] for r in conn.execute("select datname from pg_database where datallowconn")]
        holders = []
        for name in names:
            with psycopg.connect(self.url_for(name), autocommit=True) as conn:
                has_vault = conn.execute("select to_regclass('vault.secrets') is not null").fetchone()[0]
                if has_vault and conn.execute("select exists (select 1 from vault.secrets)").fetchone()[0]:
                    holders.append(name)
        if holders:
            raise CfgError(
                f"the Vault root key {self.vault_key_file} is missing, and the secrets in "
                f"{', '.join(holders)} were encrypted with it: restore the file from a backup of the "
                "data directory (a new key could not decrypt them)"
            )
        self.ensure_vault_key()

    def _pg_ctl(self, action: str) -> None:
        result = self._run(
            PG_BIN / "pg_ctl", action, "-w", "-t", "60", "-m", "fast", "-D", self.data_dir,
            "-l", self.log_file, "-o", f"-p {self.port}", check=False,
        )
        if result.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise CfgError(f"postgres did not {action} on port {self.port}: {result.stderr.strip()}\n{tail}")

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run(PG_BIN / "pg_ctl", "stop", "-w", "-m", mode, "-D", self.data_dir)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


# =============================================================================
# Provisioning a database: Supabase shim, migrations, seed
# =============================================================================

LOCAL_SHIM_MARK = "cfgctl embedded shim of Supabase Auth"


def apply_supabase_shim(db_url: str) -> bool:
    """Apply supabase/local/*.sql unless the database is a real Supabase one. Idempotent."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        owner_mark = conn.execute(
            "select to_regclass('auth.users') is not null, "
            "obj_description(to_regnamespace('auth'), 'pg_namespace')"
        ).fetchone()
        has_users, mark = owner_mark
        if has_users and mark != LOCAL_SHIM_MARK:
            return False  # a real Supabase database: never touch its auth schema
        for path in sorted((SQL_ROOT / "supabase" / "local").glob("*.sql")):
            conn.execute(path.read_text())
    return True


def apply_seed(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute((SQL_ROOT / "seed.sql").read_text())


def provision(db_url: str, seed: bool = True) -> dict:
    apply_supabase_shim(db_url)
    report = migrate(db_url)
    if seed:
        apply_seed(db_url)
    return report.as_dict()


# =============================================================================
# State of the local stack (.cfgctl/state.json)
# =============================================================================


def load_state(state_dir: Path) -> dict:
    """The stack's last data directory and port, unless the file was written for another
    state directory: a copied checkout brings the original's .cfgctl/state.json along, and
    must not drive the original's cluster. (Files from before this check have no owner.)"""
    path = state_dir / "state.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    if state.get("state_dir", str(state_dir.resolve())) != str(state_dir.resolve()):
        return {}
    return state


def save_state(state_dir: Path, state: dict) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    owned = {"state_dir": str(state_dir.resolve())} | state
    (state_dir / "state.json").write_text(json.dumps(owned, indent=2) + "\n")


def cluster_from_state(state_dir: Path, port: int | None, default_port: int) -> Cluster:
    state = load_state(state_dir)
    data_dir = Path(os.environ.get("CFGCTL_DATA_DIR") or state.get("data_dir")
                    or default_data_dir(state_dir))
    # --port, then CFGCTL_PG_PORT, then the port the stack last ran on, then 54322.
    env_port = os.environ.get("CFGCTL_PG_PORT")
    return Cluster(data_dir=data_dir, port=port or (env_port and int(env_port)) or state.get("port") or default_port)
