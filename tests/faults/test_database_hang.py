"""PostgreSQL hangs (its processes SIGSTOPped, not crashed): every request, health included, still answers
within DB_TIMEOUT_SECONDS plus a small margin, and the service recovers by itself once it runs again."""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from studytrack.config import Settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.web.deadline import MARGIN_SECONDS
from tests.databases import create_database
from tests.faults.harness import create_admin_token, gunicorn, make_events, wait_until

DB_TIMEOUT_SECONDS = 2
BOUND = DB_TIMEOUT_SECONDS + MARGIN_SECONDS + 1.0  # one second of slack for this shared 2-core machine


@pytest.fixture
def own_database() -> Iterator[Any]:
    """An embedded PostgreSQL that only this test uses (so it may stop its processes)."""
    with tempfile.TemporaryDirectory(prefix="studytrack-hang-") as home:
        handle, _ = start_embedded_database(Path(home))
        try:
            yield handle
        finally:
            signal_postgres(handle, signal.SIGCONT)  # never leave a stopped server behind
            stop_embedded_database(handle)


def postgres_processes(handle: Any) -> list[psutil.Process]:
    postmaster = psutil.Process(int((Path(handle.pgdata) / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def signal_postgres(handle: Any, sig: signal.Signals) -> None:
    for process in postgres_processes(handle):
        os.kill(process.pid, sig)


def timed(call: Any) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = call().status_code
    except httpx.TimeoutException:
        status = 0
    return status, time.monotonic() - started


def test_a_hung_database_gets_every_request_answered_in_time_and_the_service_recovers(
    own_database: Any, settings: Settings, tmp_path: Path
) -> None:
    url = create_database(own_database.get_uri(), "hang")
    run_migrations(url, dataclasses.replace(settings, timescaledb="off"))
    token = create_admin_token(url, "fault-hang", tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    events = make_events(40, tag="hang")

    with gunicorn(url, workers=1, workdir=tmp_path, DB_TIMEOUT_SECONDS=str(DB_TIMEOUT_SECONDS)) as server:
        base = server.base_url
        with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
            assert http.post("/api/events/", json=events[0]).status_code == 201
            calls = [
                lambda: http.get("/healthz"),
                lambda: http.get("/api/events/", params={"tags": "hang"}),
                lambda: http.get("/api/sessions/"),
                *[lambda event=event: http.post("/api/events/", json=event) for event in events[1:6]],
                lambda: http.post("/api/events/batch", json=events[6:20]),
            ]
            signal_postgres(own_database, signal.SIGSTOP)
            try:
                with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                    answers = list(pool.map(timed, calls))
                health_again = timed(lambda: http.get("/healthz"))
            finally:
                signal_postgres(own_database, signal.SIGCONT)
            assert {status for status, _ in answers} == {503}, answers
            assert max(seconds for _, seconds in answers) < BOUND, answers
            assert health_again[0] == 503
            assert health_again[1] < BOUND, health_again

            wait_until(lambda: http.get("/healthz").status_code == 200, 30, "/healthz to answer 200 again")
            wait_until(lambda: http.post("/api/events/", json=events[30]).status_code in (200, 201), 30, "a write")
