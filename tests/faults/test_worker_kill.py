"""`kill -9` of a gunicorn worker under load: no acknowledged event lost, none stored twice, worker replaced."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx

from tests.faults.conftest import Target
from tests.faults.harness import Load, account, gunicorn, make_events, record, wait_until

EVENTS = 1500
CLIENTS = 16
KILL_AFTER = 400  # acknowledged events


def test_a_worker_killed_mid_load_loses_no_acknowledged_event_and_is_replaced(target: Target, tmp_path: Path) -> None:
    events = make_events(EVENTS, tag="kill-9")
    with gunicorn(target.database_url, workers=2, workdir=tmp_path) as server:
        workers = server.live_workers()
        assert len(workers) == 2, server.output()
        with Load(server.base_url, target.token, events, clients=CLIENTS, deadline=45, timeouts=(5.0,)) as load:
            wait_until(lambda: load.acknowledged >= KILL_AFTER, 30, f"{KILL_AFTER} acknowledged events")
            # The worker holding the most client connections: its in-flight requests are cut.
            connections = {pid: server.connections(pid) for pid in workers}
            victim = max(workers, key=connections.__getitem__)
            assert connections[victim] > 0, connections
            acknowledged_at_kill = load.acknowledged
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()

            def replaced() -> set[int]:
                return {pid for pid in server.booted_workers() if pid not in workers}

            wait_until(lambda: bool(replaced()), 30, "the master to boot a new worker")
            replacement = replaced().pop()
            wait_until(lambda: replacement in server.started_workers(), 30, "the new worker's application start-up")
            replaced_after = time.monotonic() - killed
            tally = load.join()

        # The service answers again, on both workers: a few fresh connections land on either.
        auth = {"Authorization": f"Bearer {target.token}"}
        for _ in range(6):
            assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
            assert httpx.get(f"{server.base_url}/api/stats/", headers=auth, timeout=5).status_code == 200
        survivor = next(pid for pid in workers if pid != victim)
        assert sorted(server.live_workers()) == sorted({survivor, replacement})
        log = server.output()

    figures = account(target.database_url, tally, events) | {
        "workers": 2,
        "clients": CLIENTS,
        "acknowledged_when_killed": acknowledged_at_kill,
        "victim_connections_when_killed": connections[victim],
        "replacement_ready_seconds": round(replaced_after, 2),
    }
    record("kill_worker_mid_load", figures)
    assert re.search(rf"Worker \(pid:{victim}\) was sent SIGKILL", log), log[-3000:]
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["refused"] == 0, tally.refused
    assert figures["acknowledged"] == figures["sent"] == EVENTS, "every event is acknowledged after retries"
    assert figures["stored"] == EVENTS
    assert "500" not in figures["outcomes"], figures["outcomes"]
