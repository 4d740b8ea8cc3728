"""The request deadline: a 503 at the deadline even when the work is slow to stop; a server's cut passes on."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from studytrack.web.frame import RequestFrame
from studytrack.web.limits import RequestLimits
from studytrack.web.metrics import RequestMetrics

SCOPE = {"type": "http", "method": "GET", "path": "/slow", "headers": [(b"content-length", b"0")]}
LIMITS = RequestLimits(max_body_bytes=1000, max_batch_bytes=5000)


def with_deadline(app: Any, seconds: float) -> RequestFrame:
    return RequestFrame(app, limits=LIMITS, deadline_seconds=seconds, metrics=RequestMetrics())


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _call(app: Any) -> tuple[list[Message], float]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    started = time.monotonic()
    await app(dict(SCOPE), _receive, send)
    return sent, time.monotonic() - started


async def _stubborn(scope: Scope, receive: Receive, send: Send) -> None:
    """Work whose cancellation takes a second to complete (as psycopg's on a hung database)."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await asyncio.sleep(1.0)
        await send({"type": "http.response.start", "status": 200, "headers": []})  # dropped: too late
        raise


async def _quick(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_503_leaves_at_the_deadline_and_the_late_answer_is_dropped() -> None:
    app = with_deadline(_stubborn, 0.2)

    async def check() -> None:
        answered_at: list[float] = []
        started = time.monotonic()

        async def send(message: Message) -> None:
            answered_at.append(time.monotonic() - started)
            sent.append(message)

        sent: list[Message] = []
        await app(dict(SCOPE), _receive, send)
        assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
        assert sent[0]["status"] == 503
        assert json.loads(sent[1]["body"])["code"] == "database_timeout"
        assert answered_at[-1] < 0.9  # before the work stopped (1 s after the cancel)
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(check())


def test_an_answer_in_time_passes_unchanged() -> None:
    sent, _ = asyncio.run(_call(with_deadline(_quick, 5)))
    assert [message.get("status") for message in sent] == [200, None]


def test_a_cut_by_the_server_is_passed_on() -> None:
    async def check() -> None:
        task = asyncio.ensure_future(_call(with_deadline(_stubborn, 30)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(check())


def test_requests_arriving_together_each_get_their_503_and_so_do_later_ones() -> None:
    app = with_deadline(_stubborn, 0.2)

    async def check() -> None:
        together = await asyncio.gather(*(_call(app) for _ in range(3)))
        assert [sent[0]["status"] for sent, _ in together] == [503, 503, 503]
        await asyncio.sleep(0.3)  # nothing in flight: the sweep has stopped
        later, _ = await _call(app)
        assert later[0]["status"] == 503

    asyncio.run(check())
