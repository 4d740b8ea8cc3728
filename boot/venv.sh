# shellcheck shell=bash
# Sourced by boot/local.sh, boot/studytrack, tests/run.sh and bench/run.sh: make ./.venv with the pinned
# requirements, once per change. A venv with the dev requirements (which include requirements.txt) serves both.
# Usage: ensure_venv <requirements file>

ensure_venv() {
    local requirements=$1 root python stamp want have
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    python=${PYTHON:-python3}
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "studytrack needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
        return 1
    fi
    [ -x "$root/.venv/bin/python" ] || "$python" -m venv "$root/.venv"
    stamp="$root/.venv/.studytrack-installed"
    want=$(cat "$root/requirements.txt" "$root/requirements-dev.txt" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)
    have=$(cat "$stamp" 2>/dev/null || true)
    if [ "$have" != "$want $requirements" ] && [ "$have" != "$want requirements-dev.txt" ]; then
        "$root/.venv/bin/python" -m pip install --quiet --upgrade pip
        "$root/.venv/bin/python" -m pip install --quiet -r "$root/$requirements" -e "$root"
        echo "$want $requirements" > "$stamp"
    fi
    export PATH="$root/.venv/bin:$PATH"
}
