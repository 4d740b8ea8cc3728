"""Request size limits, checked before any route runs (by `frame.py`), answered in the error shape.

* A body over `MAX_BODY_BYTES` (`MAX_BATCH_BYTES` for `POST /api/events/batch`) is a `413 payload_too_large`:
  at once when its Content-Length says so, otherwise as soon as the chunks read so far add up to more
  (a chunked upload declares no length). Reading stops at the first chunk past the limit, so no more than
  the limit plus one chunk is ever held.
* A URL (path and query string) over `MAX_URL_BYTES` is a `414 uri_too_long`. Uvicorn's httptools parser
  only refuses URLs past 64 KiB, with a plain-text 400; h11 takes them too.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Scope

from studytrack.web.errors import ErrorBody, error_response

BATCH_PATH = "/api/events/batch"
MAX_URL_BYTES = 4096  # as gunicorn's own request-line limit; no query of this API comes near it

# For `responses=` (OpenAPI): any route with query parameters may get a 414, any route with a body a 413.
URL_TOO_LONG: dict[int | str, dict[str, Any]] = {
    414: {"model": ErrorBody, "description": f"The URL is longer than {MAX_URL_BYTES} bytes."}
}
BODY_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "The body is larger than MAX_BODY_BYTES (MAX_BATCH_BYTES for batches)."}
}
UNREADABLE_BODY: dict[int | str, dict[str, Any]] = {  # FastAPI's answer to a JSON body that is not UTF-8
    400: {"model": ErrorBody, "description": "The body could not be read as UTF-8 JSON text."}
}


class BodyTooLargeError(Exception):
    """Raised into the app by the frame's `receive` when a chunked body grows past its limit."""


class RequestLimits:
    """The limits of this app's requests; `frame.py` applies them before any route runs."""

    __slots__ = ("max_batch_bytes", "max_body_bytes", "max_url_bytes")

    def __init__(self, *, max_body_bytes: int, max_batch_bytes: int, max_url_bytes: int = MAX_URL_BYTES) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_batch_bytes = max_batch_bytes
        self.max_url_bytes = max_url_bytes

    def url_too_long(self, scope: Scope) -> JSONResponse | None:
        """The 414 for a URL over the limit; None for one within it."""
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url_bytes <= self.max_url_bytes:
            return None
        message = f"the URL is longer than {self.max_url_bytes} bytes; send fewer or shorter query parameters"
        return error_response(414, "uri_too_long", message)

    def body_limit(self, scope: Scope) -> int:
        return self.max_batch_bytes if scope["path"].rstrip("/") == BATCH_PATH else self.max_body_bytes


def too_large(limit: int) -> JSONResponse:
    return error_response(413, "payload_too_large", f"the body is larger than {limit} bytes; send less at once")
