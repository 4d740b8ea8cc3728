#!/usr/bin/env bash
# One command on a fresh machine: install into ./.venv, then serve on the embedded PostgreSQL.
# TimescaleDB mode when the machine can build the extension (the first start builds it, about a minute; later
# starts take it from the cache), plain PostgreSQL mode otherwise or with TIMESCALEDB=off.
# Extra arguments go to `studytrack serve` (e.g. --port 9000). Data lives in STUDYTRACK_HOME (./.studytrack).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=boot/venv.sh
source boot/venv.sh
ensure_venv requirements.txt
if [ "${TIMESCALEDB:-auto}" != off ] && ! studytrack timescaledb install; then
    echo "TimescaleDB could not be installed (above): serving in plain PostgreSQL mode" >&2
fi
echo "studytrack: the command line is ./boot/studytrack (e.g. ./boot/studytrack demo; --help lists all)" >&2
exec studytrack serve "$@"
