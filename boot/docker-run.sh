#!/usr/bin/env bash
# Container entrypoint (Dockerfile, docker compose, Railway):
#   1. wait for the database, bounded by DB_WAIT_SECONDS (default 60);
#   2. run `studytrack migrate` exactly once, here, before any worker exists
#      (replicas starting together are serialized by the migrator's advisory lock);
#   3. exec gunicorn with Uvicorn workers, so gunicorn becomes PID 1 and gets SIGTERM itself.
# `docker-run.sh migrate` does 1 and 2 and exits (Railway's pre-deploy step, see railway.json).
# `studytrack migrate` also stores ADMIN_TOKEN, when set, as the admin token (never printed).
#
# Configuration comes from the environment only: DATABASE_URL (or POSTGRES_HOST + POSTGRES_*),
# PORT (8000), WEB_CONCURRENCY (2 x CPUs, at most 8), GRACEFUL_TIMEOUT (30), DB_WAIT_SECONDS (60).
# Never print DATABASE_URL or POSTGRES_PASSWORD: there is no `set -x` here on purpose.
set -euo pipefail

log() {
    printf '%s [boot] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

is_positive_int() {
    [[ "$1" =~ ^[1-9][0-9]*$ ]]
}

# Until gunicorn takes over, stop promptly on SIGTERM/SIGINT (docker stop, Railway redeploys):
# children run in the background and `wait` is interruptible, so the trap fires at once.
child=0
on_stop() {
    log "stop requested before the server started; exiting"
    if ((child > 0)); then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    exit 143
}
trap on_stop TERM INT

run() {
    "$@" &
    child=$!
    local status=0
    wait "$child" || status=$?
    child=0
    return "$status"
}

# Any other argument fails at once: a platform that passed this script unexpected words (say, a
# pre-deploy command appended to the ENTRYPOINT) gets an error, not a server that never exits.
mode=serve
if (($# == 1)) && [[ "$1" == migrate ]]; then
    mode=migrate
elif (($# > 0)); then
    die "unknown arguments; the only one accepted is 'migrate' (wait for the database, migrate, exit)"
fi

PORT="${PORT:-8000}"
is_positive_int "$PORT" || die "PORT must be a positive integer"

if [[ -z "${WEB_CONCURRENCY:-}" ]]; then
    cpus="$(nproc 2>/dev/null || echo 1)"
    WEB_CONCURRENCY=$((2 * cpus))
    ((WEB_CONCURRENCY <= 8)) || WEB_CONCURRENCY=8
fi
is_positive_int "$WEB_CONCURRENCY" || die "WEB_CONCURRENCY must be a positive integer"

GRACEFUL_TIMEOUT="${GRACEFUL_TIMEOUT:-30}"
is_positive_int "$GRACEFUL_TIMEOUT" || die "GRACEFUL_TIMEOUT must be a positive integer"

DB_WAIT_SECONDS="${DB_WAIT_SECONDS:-60}"
[[ "$DB_WAIT_SECONDS" =~ ^[0-9]+$ ]] || die "DB_WAIT_SECONDS must be a whole number of seconds"

# The app reads PORT and WEB_CONCURRENCY too (gunicorn_conf.py): keep them in agreement.
export PORT WEB_CONCURRENCY

# `studytrack db wait` retries one connection a second with the app's own settings (DATABASE_URL or
# POSTGRES_*), so it checks exactly what the app will use; it prints only error classes, never the URL.
log "waiting up to ${DB_WAIT_SECONDS}s for the database"
status=0
run studytrack db wait --seconds "$DB_WAIT_SECONDS" || status=$?
((status == 0)) || die "cannot start without the database (studytrack db wait: exit ${status}, see above)"

log "migrating the database schema"
status=0
run studytrack migrate || status=$?
((status == 0)) || die "migration failed (exit ${status})"
if [[ "$mode" == migrate ]]; then
    log "migrate only: done"
    exit 0
fi

gunicorn_args=(
    --config python:studytrack.web.gunicorn_conf
    --workers "$WEB_CONCURRENCY"
    --bind "0.0.0.0:${PORT}"
    --graceful-timeout "$GRACEFUL_TIMEOUT"
    --access-logfile -
    --error-logfile -
)
# Worker heartbeats on tmpfs: an overlay /tmp can stall them (and be read-only).
if [[ -d /dev/shm && -w /dev/shm ]]; then
    gunicorn_args+=(--worker-tmp-dir /dev/shm)
fi

# Prometheus multiprocess mode: the workers' metrics are summed from files in one directory per server.
PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$(mktemp -d -p /dev/shm studytrack-metrics.XXXXXX 2>/dev/null || mktemp -d)}"
export PROMETHEUS_MULTIPROC_DIR

log "starting gunicorn on port ${PORT} with ${WEB_CONCURRENCY} workers"
trap - TERM INT
exec gunicorn "${gunicorn_args[@]}" 'studytrack.web.app:create_app()'
