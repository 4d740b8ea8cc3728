#!/usr/bin/env bash
# One command on a fresh machine: install everything, lint, type-check and run every test.
# Extra arguments go to pytest (e.g. -k buckets). TEST_DATABASE_URL points the tests at another server.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=boot/venv.sh
source boot/venv.sh
ensure_venv requirements-dev.txt

# The TimescaleDB test backend (PGlite WASM build served over the wire protocol): pinned by its lock file.
server=tests/timescaledb/server
if command -v npm >/dev/null; then
    if [ ! -d "$server/node_modules" ] || [ "$server/package-lock.json" -nt "$server/node_modules/.package-lock.json" ]; then
        (cd "$server" && npm ci --no-audit --no-fund --loglevel=error)
    fi
elif [ -n "${CI:-}" ]; then
    echo "CI needs Node.js and npm for the TimescaleDB test backend" >&2
    exit 1
fi

# Real headless Chromium for the dashboard tests (Debian's package; Playwright drives it, no browser download).
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    elif [ -n "${CI:-}" ]; then
        echo "CI needs Chromium for tests/web/test_dashboard.py: apt-get install -y chromium" >&2
        exit 1
    fi
fi

echo "== ruff"
ruff check src tests bench
ruff format --check src tests bench
echo "== mypy"
mypy
echo "== pytest"
pytest "$@"
