"""The service's insert statement against rollups stored other ways: the sums in the key's index (before
migration 0009: every update writes an index entry) and other fillfactors, against the tables as migrated.

On a fresh embedded PostgreSQL, every rollup filled for a year of ten tags (so each event updates rows, as at
10M events), each variant a schema of its own with the same rows; the rounds interleave the variants, each
round with new 10,000-event batches as `bench/run.py` sends them. Last, how many updates were heap-only.

    .venv/bin/python -m bench.rollup_storage [--rounds 12]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql
from sqlmodel import SQLModel

from bench.batch_parts import SIZE, body, statement, to_events
from bench.run import ROLLUP_GRAINS, TAGS
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.database.tables import Rollup1d
from studytrack.events import queries

GRAINS = ROLLUP_GRAINS
# schema -> (key suffix, storage): public is the tables as migrated.
VARIANTS = {
    "public": None,
    "sums_in_key": (" INCLUDE (minutes, count)", ""),
    "fillfactor_90": ("", " WITH (fillfactor = 90)"),
    "fillfactor_100": ("", ""),
}
FILL = """
    INSERT INTO {table} (bucket, tag, minutes, count)
    SELECT DISTINCT date_bin({grain}::interval, g, TIMESTAMPTZ '2000-01-03 00:00:00+00'), t, 25, 1
    FROM generate_series(now() - interval '367 days', now() + interval '1 day', interval '15 minutes') AS g,
         unnest(%(tags)s::text[]) AS t
"""


def key_columns(table: str) -> str:
    """The rollup's key as its table model has it (bucket and tag, in its order)."""
    assert Rollup1d.__tablename__ in SQLModel.metadata.tables  # the models are registered
    return ", ".join(column.name for column in SQLModel.metadata.tables[table].primary_key.columns)


def create_variants(conn: psycopg.Connection) -> None:
    for schema, layout in VARIANTS.items():
        if layout is not None:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table, grain in GRAINS.items():
            name = sql.Identifier(schema, table)
            if layout is not None:
                key, storage = layout
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (tag text NOT NULL, bucket timestamptz NOT NULL, minutes bigint NOT NULL,"
                        " count bigint NOT NULL, PRIMARY KEY (" + key_columns(table) + ")" + key + ")" + storage
                    ).format(name)
                )
            conn.execute(sql.SQL(FILL).format(table=name, grain=sql.Literal(grain)), {"tags": TAGS})
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    settings = dataclasses.replace(load_settings(), timescaledb="off", database_url=None)
    timings: dict[str, list[float]] = {schema: [] for schema in VARIANTS}
    write = statement(queries.INSERT_EVENTS_AND_ROLLUP)
    with tempfile.TemporaryDirectory(prefix="studytrack-bench-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=False)
        try:
            run_migrations(url, settings)
            with psycopg.connect(url, autocommit=True) as conn:
                create_variants(conn)
            with psycopg.connect(url) as conn:
                for round_ in range(args.rounds):
                    for n, schema in enumerate(VARIANTS):
                        conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(schema)))
                        conn.commit()
                        events = to_events(body(seed=1000 * round_ + n))
                        started = time.perf_counter()
                        write(conn, events)
                        conn.commit()
                        timings[schema].append(time.perf_counter() - started)
                updates = conn.execute(
                    "SELECT schemaname, sum(n_tup_upd), sum(n_tup_hot_upd) FROM pg_stat_user_tables"
                    " WHERE relname = ANY(%s) GROUP BY 1",
                    (list(GRAINS),),
                ).fetchall()
        finally:
            stop_embedded_database(server)
    heap_only = {schema: hot / total for schema, total, hot in updates if total}
    print(f"{SIZE:,}-event batches, {args.rounds} rounds, plain, every rollup full for a year of ten tags:")
    for schema, seconds in timings.items():
        name = "as migrated (fillfactor 70)" if schema == "public" else schema.replace("_", " ")
        us = statistics.median(seconds) / SIZE * 1e6
        print(f"  {name:30} {us:6.1f} us/event, {heap_only.get(schema, 0):4.0%} of rollup updates heap-only")


if __name__ == "__main__":
    main()
