"""The TimescaleDB test backend itself: framing, pipelines, COPY, queueing, shutdown (its smoke check)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import TIMESCALEDB_SERVER, timescaledb_server


def test_the_wire_server_passes_its_protocol_smoke_check() -> None:
    with timescaledb_server():  # fails in CI, skips locally, when Node or `npm ci` is missing
        pass
    result = subprocess.run(
        [sys.executable, str(TIMESCALEDB_SERVER / "smoke_check.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
