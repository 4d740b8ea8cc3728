"""Request ids: every request gets one, answers with it in `X-Request-ID`, and logs it on every line.

The caller's own `X-Request-ID` is kept when it is sane (1-128 visible ASCII characters, no spaces), so a
proxy's or client's id can be followed through; otherwise the id is a new random UUID (version 4) in hex.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studytrack.logs import request_id

HEADER = "X-Request-ID"
_NAME = HEADER.lower().encode()  # as ASGI header names are sent
_SANE = re.compile(r"[!-~]{1,128}")
_UUID4_CLEAR = ~(0xF000 << 64 | 0xC000 << 48)  # the version and variant bits of 128 random ones
_UUID4_SET = 4 << 76 | 0x8000 << 48  # version 4, RFC 4122 variant


def new_request_id() -> str:
    """A random version-4 UUID in hex, as `uuid.uuid4().hex` but from `random` (reseeded in each forked
    worker): a correlation id needs no system call per request, and no UUID object."""
    return f"{random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


def with_request_id(headers: Iterable[tuple[bytes, bytes]], value: bytes) -> list[tuple[bytes, bytes]]:
    """The response headers with X-Request-ID set to `value` (replaced if the answer already had one; ASGI
    header names are lower-case)."""
    kept = [header for header in headers if header[0] != _NAME]
    kept.append((_NAME, value))
    return kept


def incoming_request_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID when it is short and printable."""
    for name, value in scope["headers"]:
        if name == _NAME:
            text = value.decode("latin-1")
            return text if _SANE.fullmatch(text) else None
    return None


class RequestIdMiddleware:
    """Pure ASGI, outermost of the app's middleware: the id is set before anything else logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        encoded = rid.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_request_id(message.get("headers", ()), encoded)
            await send(message)

        reset = request_id.set(rid)
        await self.app(scope, receive, send_with_id)
        # Reset only after a normal return: when an exception escapes, the app's outer error handler logs
        # it after this frame, and that line should still carry the id (each request runs in its own task).
        request_id.reset(reset)
