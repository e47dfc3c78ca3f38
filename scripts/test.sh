#!/usr/bin/env bash
# Run the test suite from the project's .venv (made by `make venv`).
#
# - Makes sure Debian's chromium (browser tests) and espeak-ng (spoken test clips) are
#   installed when we are root with apt-get; otherwise those tests skip themselves.
# - Uses the Postgres at 127.0.0.1:5432 and the Redis at 127.0.0.1:6379 when they answer
#   and ARENA_DATABASE_URL / ARENA_REDIS_URL are not already set; otherwise the suite
#   starts embedded servers itself.
#
# Arguments are passed to pytest:  scripts/test.sh -k leaderboard -x
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
    echo "error: $PY not found; run 'make venv' (or 'make test') first." >&2
    exit 1
fi

# --- system packages for the browser and speech tests ------------------------------
need=()
# (Recommends are skipped: they drag in systemd, avahi, cups ...; fonts-liberation is the
# one that matters, for readable screenshots.)
[ -x /usr/bin/chromium ] || need+=(chromium fonts-liberation)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing ${need[*]} with apt-get ..."
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
               DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"; }; then
            if [ "${CI:-}" = "true" ]; then
                echo "error: could not install ${need[*]}." >&2
                exit 1
            fi
            echo "warning: could not install ${need[*]}; the tests needing them will be skipped." >&2
        fi
    else
        echo "note: ${need[*]} missing and not root with apt-get; the tests needing them will be skipped." >&2
    fi
fi

# --- use local Postgres / Redis when they answer -----------------------------------
if [ -z "${ARENA_DATABASE_URL:-}" ]; then
    if "$PY" -c 'import psycopg; psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2).close()' >/dev/null 2>&1; then
        export ARENA_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    fi
fi
if [ -z "${ARENA_REDIS_URL:-}" ]; then
    if "$PY" -c 'import redis; redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=2, socket_timeout=2).ping()' >/dev/null 2>&1; then
        export ARENA_REDIS_URL="redis://127.0.0.1:6379/0"
    fi
fi
echo "Postgres: ${ARENA_DATABASE_URL:-embedded (started by the test suite)}"
echo "Redis:    ${ARENA_REDIS_URL:-embedded (started by the test suite)}"

exec "$PY" -m pytest "$@"
