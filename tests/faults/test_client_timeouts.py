"""Clients that give up waiting and retry with the same ids store each session once.

The first attempts get a read timeout of a millisecond, so many are abandoned after the server has
received them (and usually committed them); each retry waits longer. A retry of a committed event is
answered `200` (already stored) and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import Target
from tests.faults.harness import Load, account, gunicorn, make_events, record

EVENTS = 800
CLIENTS = 12
TIMEOUTS = (0.001, 0.01, 0.1, 1.0, 5.0)  # seconds, per attempt: the first one is all but sure to expire


def test_clients_that_time_out_and_retry_with_the_same_ids_create_no_duplicates(target: Target, tmp_path: Path) -> None:
    events = make_events(EVENTS, tag="timeouts")
    with gunicorn(target.database_url, workers=2, workdir=tmp_path) as server:
        load = Load(
            server.base_url, target.token, events, clients=CLIENTS, deadline=50, timeouts=TIMEOUTS, backoff=0.02
        )
        with load:
            tally = load.join()

    figures = account(target.database_url, tally, events) | {
        "clients": CLIENTS,
        "timeouts_per_attempt_seconds": list(TIMEOUTS),
        "timed_out_requests": sum(n for outcome, n in tally.outcomes().items() if outcome.endswith("Timeout")),
    }
    record("client_timeouts_and_retries", figures)
    assert figures["timed_out_requests"] > 0
    assert figures["acknowledged_by_retry_as_already_stored"] > 0, "no abandoned request had been stored"
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["refused"] == 0, tally.refused
    assert figures["acknowledged"] == figures["stored"] == figures["sent"] == EVENTS
    assert "500" not in figures["outcomes"], figures["outcomes"]
