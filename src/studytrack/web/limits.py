"""Request size limits, checked before any route runs, answered in the error shape.

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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class _BodyTooLargeError(Exception):
    """Raised into the app by `receive` when the body grows past the limit."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class RequestLimitMiddleware:
    """Pure ASGI: refuses over-long URLs and bodies without buffering them."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_batch_bytes: int, max_url_bytes: int = MAX_URL_BYTES
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_batch_bytes = max_batch_bytes
        self.max_url_bytes = max_url_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url_bytes > self.max_url_bytes:
            message = f"the URL is longer than {self.max_url_bytes} bytes; send fewer or shorter query parameters"
            await error_response(414, "uri_too_long", message)(scope, receive, send)
            return
        limit = self.max_batch_bytes if scope["path"].rstrip("/") == BATCH_PATH else self.max_body_bytes
        declared = _declared_length(scope)
        if declared is None:  # chunked: only counting tells
            await self._counted(scope, receive, send, limit)
        elif declared > limit:
            await _too_large(limit)(scope, receive, send)
        else:  # the server reads no more body than the declared length
            await self.app(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        refused = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # whatever the app answers to a body cut short is replaced by the 413
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app failed because its body was cut short (FastAPI wraps the error; ours is the answer).
        if refused and not response_started:
            await _too_large(limit)(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    return error_response(413, "payload_too_large", f"the body is larger than {limit} bytes; send less at once")
