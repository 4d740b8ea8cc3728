"""Where a batch's time goes, per event, against raw binary COPY of the same rows into the same table.

On a fresh embedded PostgreSQL (plain, or native TimescaleDB with `--timescaledb`), for 10,000-event batches
as `bench/run.py` sends them: the worker's Python (parsing and validating the JSON body, deriving ids, building
the statement's arrays), then the database's part of each statement, one transaction per batch: COPY, the
insert with its id claims and tag spellings but no rollups, and the one the service runs (with the rollups).
Each batch holds new events; the rounds interleave the statements.

    .venv/bin/python -m bench.batch_parts [--rounds 5] [--timescaledb]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.run import UNNEST_INSERT, generate
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.events import ingest, queries
from studytrack.events.batch import parse_events

SIZE = 10_000
UNNEST_COLUMNS = ("ids", "times", "tags", "minutes", "user_ids", "notes", "sources")
COPY = "COPY events (id, time, tag, minutes, user_id, note, source) FROM STDIN (FORMAT BINARY)"


def body(seed: int) -> bytes:
    return json.dumps([
        {"id": str(i), "time": t.isoformat(), "tag": tag, "minutes": m, "user_id": u, "source": s}
        for i, t, tag, m, u, _, s in generate(SIZE, seed=seed)
    ]).encode()  # fmt: skip


def to_events(raw: bytes) -> list[ingest.NewEvent]:
    now = datetime.now(UTC)
    parsed = parse_events(raw, content_type="application/json", max_events=SIZE)
    return sorted((ingest.resolve(event, now=now) for event in parsed), key=lambda event: event.id)


def copy(conn: psycopg.Connection[Any], events: list[ingest.NewEvent]) -> None:
    with conn.cursor().copy(COPY) as writer:
        writer.set_types(["uuid", "timestamptz", "text", "int4", "text", "text", "text"])
        for e in events:
            writer.write_row((e.id, e.time, e.tag, e.minutes, e.user_id, e.note, e.source))


def statement(text: str) -> Callable[[psycopg.Connection[Any], list[ingest.NewEvent]], None]:
    def run(conn: psycopg.Connection[Any], events: list[ingest.NewEvent]) -> None:
        columns = ingest._columns(events)
        if text == UNNEST_INSERT:
            columns = {name: columns[name] for name in UNNEST_COLUMNS}
        conn.execute(text, columns).fetchall()

    return run


WRITES = {
    "raw binary COPY": copy,
    "insert from arrays alone (ON CONFLICT, RETURNING)": statement(UNNEST_INSERT),
    "insert + id claims + tag spellings": statement(queries.INSERT_EVENTS),
    "the service's insert (+ rollups 15m, 1h, 6h, 1d)": statement(queries.INSERT_EVENTS_AND_ROLLUP),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timescaledb", action="store_true")
    args = parser.parse_args()
    mode = "required" if args.timescaledb else "off"
    settings = dataclasses.replace(load_settings(), timescaledb=mode, database_url=None)
    timings: dict[str, list[float]] = {name: [] for name in ("Python: parse, validate, ids, arrays", *WRITES)}
    with tempfile.TemporaryDirectory(prefix="studytrack-bench-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=args.timescaledb)
        try:
            run_migrations(url, settings)
            with psycopg.connect(url) as conn:
                for round_ in range(args.rounds):
                    for n, (name, write) in enumerate(WRITES.items()):
                        raw = body(seed=1000 * round_ + n)
                        started = time.perf_counter()
                        events = to_events(raw)
                        ingest._columns(events)
                        timings["Python: parse, validate, ids, arrays"].append(time.perf_counter() - started)
                        started = time.perf_counter()
                        write(conn, events)
                        conn.commit()
                        timings[name].append(time.perf_counter() - started)
        finally:
            stop_embedded_database(server)
    copy_us = statistics.median(timings["raw binary COPY"]) / SIZE * 1e6
    print(f"{SIZE:,}-event batches, {args.rounds} rounds, {'TimescaleDB' if args.timescaledb else 'plain'}:")
    for name, seconds in timings.items():
        us = statistics.median(seconds) / SIZE * 1e6
        print(f"  {name:50} {us:6.1f} us/event  ({us / copy_us:4.2f} x COPY)")


if __name__ == "__main__":
    main()
