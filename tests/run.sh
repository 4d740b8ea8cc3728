#!/usr/bin/env bash
# One command on a fresh machine: install everything, lint, type-check and run every test.
# Extra arguments go to pytest (e.g. -k buckets). TEST_DATABASE_URL points the tests at another server.
# --fast: the daily lane: ruff, then the API and domain tests on plain PostgreSQL only (about two minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=boot/venv.sh
source boot/venv.sh
ensure_venv requirements-dev.txt

# Native TimescaleDB in the embedded PostgreSQL: built once per machine from the vendored source, then cached.
# Both lanes need its files: the fast lane checks that an installed but not preloaded extension means plain mode.
if ! python -c 'import sys; from studytrack.database.timescaledb_build import is_installed; sys.exit(not is_installed())'; then
    if ! command -v cmake >/dev/null || ! command -v make >/dev/null || ! command -v cc >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake gcc make >/dev/null
        fi
    fi
    vendored=../shared/vendor/timescaledb-2.29.2.tar.gz  # the team's copy; elsewhere the release URL (the default)
    if [ -z "${TIMESCALEDB_SOURCE:-}" ] && [ -f "$vendored" ]; then
        export TIMESCALEDB_SOURCE=$vendored
    fi
    studytrack timescaledb install
fi

if [ "${1:-}" = "--fast" ]; then
    shift
    if [ -n "${CI:-}" ]; then
        echo "CI runs the whole suite: tests/run.sh without --fast" >&2
        exit 2
    fi
    echo "== ruff"
    ruff check src tests bench
    ruff format --check src tests bench
    echo "== pytest (fast lane: plain PostgreSQL; no TimescaleDB, browser, deploy, fault or fuzz tests)"
    STUDYTRACK_FAST_LANE=1 exec pytest -q \
        --ignore=tests/deploy --ignore=tests/faults --ignore=tests/fuzz --ignore=tests/timescaledb \
        --ignore=tests/test_notebooks.py --ignore=tests/web/test_dashboard.py "$@"
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
