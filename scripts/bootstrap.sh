#!/bin/sh
# Installs what `make up` and `make test` need on a fresh Debian 12 machine:
# PostgreSQL 15 with the extensions Supabase ships (apt) and the Python virtualenv.
set -eu
cd "$(dirname "$0")/.."

APT_PACKAGES="postgresql-15 postgresql-contrib postgresql-15-cron postgresql-15-wal2json \
postgresql-15-pgtap postgresql-15-plpgsql-check postgresql-plpython3-15 python3-jsonschema \
libtap-parser-sourcehandler-pgtap-perl git"

PY=${PYTHON:-python3}
# Debian's python3 needs python3-venv for `python3 -m venv`.
if ! "$PY" -c "import ensurepip, venv" 2>/dev/null; then
    APT_PACKAGES="$APT_PACKAGES python3-venv"
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
