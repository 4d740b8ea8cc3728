"""Gunicorn settings shared by `boot/docker-run.sh` and `studytrack serve` (Uvicorn workers)."""

from studytrack.config import get_settings
from studytrack.logs import configure_logging

_settings = get_settings()
configure_logging(_settings.log_level)

bind = f"0.0.0.0:{_settings.port}"
workers = _settings.web_concurrency
worker_class = "uvicorn_worker.UvicornWorker"
timeout = 60
graceful_timeout = 30  # in-flight requests finish on SIGTERM (deploys, scale-down)
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level
control_socket_disable = True  # no runtime control interface; also lets several servers share a machine
