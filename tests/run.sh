#!/usr/bin/env bash
# One command on a fresh machine: install everything, lint, type-check and run every test.
# Extra arguments go to pytest (e.g. -k buckets). TEST_DATABASE_URL points the tests at another server.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=boot/venv.sh
source boot/venv.sh
ensure_venv requirements-dev.txt

echo "== ruff"
ruff check src tests
ruff format --check src tests
echo "== mypy"
mypy
echo "== pytest"
pytest "$@"
