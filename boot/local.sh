#!/usr/bin/env bash
# One command on a fresh machine: install into ./.venv, then serve on the embedded PostgreSQL.
# Extra arguments go to `studytrack serve` (e.g. --port 9000). Data lives in STUDYTRACK_HOME (./.studytrack).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=boot/venv.sh
source boot/venv.sh
ensure_venv requirements.txt
exec studytrack serve "$@"
