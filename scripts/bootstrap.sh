#!/bin/sh
# Installs what `make up` and `make test` need on a fresh Debian 12 machine:
# PostgreSQL 15 with the extensions Supabase ships (apt), the Python virtualenv, and
# Supabase's TypeScript type generator (npm, tools/typegen) for `make types` and its test,
# and headless Chromium, in which tests open the HTML pages cfgctl generates.
set -eu
cd "$(dirname "$0")/.."

APT_PACKAGES="postgresql-15 postgresql-contrib postgresql-15-cron postgresql-15-wal2json \
postgresql-15-pgtap postgresql-15-plpgsql-check postgresql-plpython3-15 python3-jsonschema python3-regex python3-cryptography \
libtap-parser-sourcehandler-pgtap-perl git chromium"

PY=${PYTHON:-python3}
# Debian's python3 needs python3-venv for `python3 -m venv`.
if ! "$PY" -c "import ensurepip, venv" 2>/dev/null; then
    APT_PACKAGES="$APT_PACKAGES python3-venv"
fi

# Node for the type generator: Debian's nodejs (18) runs it; a newer node (NodeSource) is kept.
if ! command -v node >/dev/null 2>&1; then
    APT_PACKAGES="$APT_PACKAGES nodejs npm"
elif ! command -v npm >/dev/null 2>&1; then
    APT_PACKAGES="$APT_PACKAGES npm"
fi

missing=""
for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing apt packages:$missing (run as root or: sudo apt-get install$missing)" >&2
        exit 1
    fi
    echo "installing apt packages:$missing"
    apt-get update -qq
    # Debian's postgresql package starts a system cluster on 5432; we never use it.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[dev]'
    touch "$stamp"
fi

# The pinned postgres-meta from tools/typegen/package-lock.json. --ignore-scripts: the
# generator needs no native build (only the unused profiler of its HTTP server has one).
typegen_stamp=tools/typegen/node_modules/.installed
if [ ! -f "$typegen_stamp" ] || [ tools/typegen/package-lock.json -nt "$typegen_stamp" ]; then
    npm ci --prefix tools/typegen --ignore-scripts --no-audit --no-fund --loglevel=error
    touch "$typegen_stamp"
fi
