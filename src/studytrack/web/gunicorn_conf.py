"""Gunicorn settings shared by `boot/docker-run.sh` and `studytrack serve` (Uvicorn workers)."""

import gc
import os
from pathlib import Path
from typing import Any

from studytrack.config import get_settings
from studytrack.logs import configure_logging

_settings = get_settings()
configure_logging(_settings.log_level, _settings.log_format)

bind = f"0.0.0.0:{_settings.port}"
workers = _settings.web_concurrency
worker_class = "studytrack.web.worker.UvicornWorker"  # stops within seconds on SIGINT/SIGQUIT too
timeout = 60
graceful_timeout = 30  # in-flight requests finish on SIGTERM (deploys, scale-down)
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level
logger_class = "studytrack.logs.GunicornLogger"  # LOG_FORMAT, request ids, `token=` redacted from the access log
control_socket_disable = True  # no runtime control interface; also lets several servers share a machine


def on_starting(server: Any) -> None:
    """Multiprocess metrics start from an empty PROMETHEUS_MULTIPROC_DIR: a previous run's files would add up."""
    if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


# Requests waiting on a group commit keep a few hundred young objects alive each, so the default 700 started a
# young collection every few requests that freed nothing: ~4% of a worker's time under single POSTs (bench/README.md,
# "Garbage collection"). Cycles still get collected, after 10,000 more objects instead of 700.
YOUNG_COLLECTION_THRESHOLD = 10_000


def post_worker_init(worker: Any) -> None:
    """Move everything loaded at start-up (modules, the app, its schemas) out of the garbage collector's
    sight: full collections then scan only request objects (measured: a 10,000-event batch's Python
    time halves and stops swinging 2x between runs). Then collect young objects less often (see above)."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits (restart, crash) no longer counts in the pool gauges; its counters are kept."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
