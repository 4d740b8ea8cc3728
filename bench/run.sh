#!/usr/bin/env bash
# One command: install what the benchmark needs (venv, wrk from Debian), then run it and print figures.
# Options go to bench/run.py (e.g. --sizes 1000000 --seconds 5 for a quick run); `probe` runs bench/probe.py,
# `scale` bench/scale_out.py.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=boot/venv.sh
source boot/venv.sh
ensure_venv requirements-dev.txt
if ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ "${1:-}" = "probe" ]; then  # ./bench/run.sh probe: where the time goes (bench/probe.py)
    shift
    exec python -m bench.probe "$@"
fi
if [ "${1:-}" = "scale" ]; then  # ./bench/run.sh scale: API replicas behind HAProxy (bench/scale_out.py)
    shift
    if ! command -v haproxy >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
    fi
    exec python -m bench.scale_out "$@"
fi
exec python -m bench.run "$@"
