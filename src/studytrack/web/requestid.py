"""Request ids: every request gets one, answers with it in `X-Request-ID`, and logs it on every line.

The caller's own `X-Request-ID` is kept when it is sane (1-128 visible ASCII characters, no spaces), so a
proxy's or client's id can be followed through; otherwise the id is a new `uuid4().hex`.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studytrack.logs import request_id

HEADER = "X-Request-ID"
_SANE = re.compile(r"[!-~]{1,128}")


def incoming_request_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID when it is short and printable."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
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
        rid = incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        reset = request_id.set(rid)
        await self.app(scope, receive, send_with_id)
        # Reset only after a normal return: when an exception escapes, the app's outer error handler logs
        # it after this frame, and that line should still carry the id (each request runs in its own task).
        request_id.reset(reset)
