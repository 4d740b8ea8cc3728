"""Every HTTP request's frame, in one pure-ASGI layer: its id, its size limits, its deadline and its metrics.

Four middlewares each wrapped `send` once more and cost a coroutine per request and per message; one layer
does their work with one `send` (bench/README.md, "One frame"). What each part promises is in its module:
`requestid.py`, `limits.py`, `deadline.py`, `metrics.py`. The frame is the app's outermost middleware (CORS
excepted), so every log line of a request carries its id and every answer, the frame's own included, is
counted and carries `X-Request-ID`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Generator

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studytrack.logs import request_id
from studytrack.timeouts import retrieve
from studytrack.web.deadline import Deadlines
from studytrack.web.limits import BodyTooLargeError, RequestLimits, too_large
from studytrack.web.metrics import RequestMetrics
from studytrack.web.requestid import HEADER_NAME, new_request_id, sane_request_id, with_request_id

log = logging.getLogger(__name__)


class _Dropped:
    """An awaitable that is done at once, as often as it is awaited."""

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


_DROPPED = _Dropped()


class _Exchange:
    """One request as the frame sees it: how far its answer got, and whether the frame answered instead."""

    __slots__ = (
        "deadlines",
        "late_answer",
        "limit",
        "receive",
        "received",
        "refused",
        "request_id",
        "scope",
        "send",
        "started",
        "status",
        "work",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send, rid: str, deadlines: Deadlines) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.request_id = rid.encode("latin-1")
        self.deadlines = deadlines
        self.status = 500  # what the server answers when the app fails before responding
        self.started = self.refused = False
        self.late_answer: asyncio.Task[None] | None = None
        self.work: asyncio.Task[None] | None = None
        self.limit = self.received = 0

    async def send_out(self, message: Message) -> None:
        """The frame's own answers (413, 414, 503) and, through `app_send`, the app's."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = with_request_id(message.get("headers", ()), self.request_id)
        await self.send(message)

    def app_send(self, message: Message) -> Awaitable[None]:
        """The app's `send`: not a coroutine but the server's own awaitable, one coroutine fewer per message."""
        if self.late_answer is not None or self.refused:
            return _DROPPED  # the frame answered instead (503, 413): whatever the app answers is dropped
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            message["headers"] = with_request_id(message.get("headers", ()), self.request_id)
        return self.send(message)

    async def counting_receive(self) -> Message:
        """A chunked body (no Content-Length) is counted: reading stops at the first chunk past the limit."""
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = True
                raise BodyTooLargeError
        return message

    def expire(self) -> None:
        """At the deadline: a 503 from a task of its own, and the work cancelled (see `deadline.py`)."""
        if self.started or self.work is None:
            return  # already streaming its answer: let it finish
        scope, seconds = self.scope, self.deadlines.seconds
        log.warning("%s %s: no answer within %g s; answered 503", scope["method"], scope["path"], seconds)
        answer = self.deadlines.answer()
        self.late_answer = asyncio.get_running_loop().create_task(answer(scope, self.receive, self.send_out))
        self.late_answer.add_done_callback(retrieve)
        self.work.cancel()


def _answered_instead(exchange: _Exchange, exc: BaseException) -> bool:
    """Whether an exception out of the app is the frame's doing: its deadline's cancel, or a refused body
    (FastAPI wraps the error raised by `counting_receive`). Anything else (the server cut the request) passes on."""
    if exchange.late_answer is not None:
        if isinstance(exc, asyncio.CancelledError):
            assert exchange.work is not None
            exchange.work.uncancel()  # our own cancel: the request is answered, not cut
        else:
            log.info("abandoned work ended with %s", exc.__class__.__name__)
        return True
    return exchange.refused and isinstance(exc, Exception)


def _id_and_length(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The caller's first X-Request-ID and Content-Length, in one pass over the headers."""
    rid = length = None
    for name, value in scope["headers"]:
        if name == HEADER_NAME and rid is None:
            rid = value
        elif name == b"content-length" and length is None:
            length = value
    return rid, length


def _declared(length: bytes) -> int:
    """A Content-Length of digits as a number; past 18 digits more than any limit (and than `int` reads)."""
    return int(length) if len(length) <= 18 else 10**18


class RequestFrame:
    """Pure ASGI: id, limits, deadline, metrics (see the module's docstring)."""

    def __init__(
        self, app: ASGIApp, *, limits: RequestLimits, deadline_seconds: float, metrics: RequestMetrics
    ) -> None:
        self.app = app
        self.limits = limits
        self.deadlines = Deadlines(deadline_seconds)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        caller_id, length = _id_and_length(scope)
        rid = (caller_id and sane_request_id(caller_id)) or new_request_id()
        exchange = _Exchange(scope, receive, send, rid, self.deadlines)
        reset = request_id.set(rid)
        try:
            await self._answer(exchange, length)
        finally:
            self.metrics.observe(scope, exchange.status, time.perf_counter() - started)
        # Reset only after a normal return: when an exception escapes, the app's outer error handler logs
        # it after this frame, and that line should still carry the id (each request runs in its own task).
        request_id.reset(reset)

    async def _answer(self, exchange: _Exchange, length: bytes | None) -> None:
        scope, receive = exchange.scope, exchange.receive
        refusal = self.limits.url_too_long(scope)
        limit = self.limits.body_limit(scope)
        if refusal is None and length is not None and length.isdigit() and _declared(length) > limit:
            refusal = too_large(limit)  # refused without reading: the server reads no more than declared
        if refusal is not None:
            await refusal(scope, receive, exchange.send_out)
            return
        if length is None or not length.isdigit():  # chunked: only counting tells
            exchange.limit = limit
            receive = exchange.counting_receive
        exchange.work = asyncio.current_task()
        self.deadlines.watch(exchange)
        try:
            await self.app(scope, receive, exchange.app_send)
        except (Exception, asyncio.CancelledError) as exc:
            if not _answered_instead(exchange, exc):
                raise
        finally:
            self.deadlines.release(exchange)
            exchange.work = None  # the task holds the exchange: no reference cycle left for the collector
        if exchange.late_answer is not None:
            await asyncio.shield(exchange.late_answer)  # returning before the 503 is out would look like no answer
        elif exchange.refused and not exchange.started:
            await too_large(limit)(scope, receive, exchange.send_out)
