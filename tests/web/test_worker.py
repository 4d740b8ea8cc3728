"""Stopping a real gunicorn by signalling its master only (`kill -INT <pid>`, as a supervisor or a shell does)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from studytrack.config import Settings
from tests.live import LiveServer, fresh_database, gunicorn

WORKERS = 2
STOP_SECONDS = 10  # a third of the 30 s graceful timeout that a stuck worker would run into
_STARTED = re.compile(r"Application startup complete")
_SHUT_DOWN = re.compile(r"Application shutdown complete")


@pytest.fixture(scope="module")
def database(server_url: str, settings: Settings) -> str:
    return fresh_database(server_url, settings, "studytrack_signals")


@pytest.fixture
def server(database: str, tmp_path: Path) -> Iterator[LiveServer]:
    with gunicorn(database, tmp_path / "gunicorn.log", workers=WORKERS, AUTH_DISABLED="true") as live:
        deadline = time.monotonic() + 30
        while len(_STARTED.findall(live.output())) < WORKERS:
            assert time.monotonic() < deadline, live.output()[-3000:]
            time.sleep(0.1)
        yield live


def _stopped_in(server: LiveServer, sig: signal.Signals, then: Callable[[], None] = lambda: None) -> float:
    """Signal the master alone, call `then`, wait for the master; seconds it took. Its workers go with it."""
    workers = psutil.Process(server.process.pid).children()
    started = time.monotonic()
    os.kill(server.process.pid, sig)
    then()
    try:
        server.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_SECONDS}s after {sig.name}:\n{server.output()[-3000:]}")
    took = time.monotonic() - started
    assert server.process.returncode == 0, server.output()[-3000:]
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    output = server.output()
    assert "Perhaps out of memory" not in output
    assert "SIGKILL" not in output
    return took


def _trickle(first: bytes, rest: bytes, sent: threading.Event, go_on: threading.Event, pause: float) -> Iterator[bytes]:
    """A chunked body whose second half comes `pause` seconds after `go_on`: a request still in flight."""
    yield first
    sent.set()
    go_on.wait(10)
    time.sleep(pause)
    yield rest


def _post_in_flight(server: LiveServer, pause: float) -> tuple[threading.Event, list[object], threading.Thread]:
    """Start `POST /api/events/` whose body is still arriving; returns (go_on, [response or error], thread)."""
    sent, go_on, outcome = threading.Event(), threading.Event(), list[object]()

    def post() -> None:
        body = _trickle(b'{"tag": "drain", ', b'"minutes": 5}', sent, go_on, pause)
        try:
            json = {"content-type": "application/json"}
            outcome.append(httpx.post(f"{server.url}/api/events/", content=body, headers=json, timeout=20))
        except httpx.TransportError as error:
            outcome.append(error)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    assert sent.wait(10), "the request did not start"
    time.sleep(0.5)  # the worker has read the headers: the request is in flight
    return go_on, outcome, thread


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_to_the_master_alone_stops_the_server_within_seconds(server: LiveServer, sig: signal.Signals) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as idle:  # a kept-alive connection must not hold it up
        assert idle.get("/healthz").status_code == 200
        assert _stopped_in(server, sig) < 5
    assert len(_SHUT_DOWN.findall(server.output())) == WORKERS, "each worker closes its pool on the way out"


def test_sigterm_lets_an_in_flight_request_finish_before_the_server_stops(server: LiveServer) -> None:
    go_on, outcome, thread = _post_in_flight(server, pause=2.0)
    took = _stopped_in(server, signal.SIGTERM, then=go_on.set)
    thread.join(10)
    response = outcome[0]
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 201, response.text
    assert took >= 1.5, "the server must wait for the request it is serving"


def test_sigint_does_not_wait_for_a_slow_request(server: LiveServer) -> None:
    go_on, outcome, thread = _post_in_flight(server, pause=8.0)
    assert _stopped_in(server, signal.SIGINT, then=go_on.set) < 5
    thread.join(15)
    assert not (isinstance(outcome[0], httpx.Response) and outcome[0].status_code == 201), "it was cut off"
    assert "was never retrieved" not in server.output(), "the request's work stops with it"
