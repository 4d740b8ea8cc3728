"""Every stored session, oldest first, streamed out of the database as CSV or Parquet (`studytrack export`).

CSV is written by PostgreSQL itself (`COPY ... TO STDOUT`, several times faster than formatting rows in Python:
bench/README.md), Parquet from a server-side cursor a few thousand rows at a time: the table never has to fit
in memory. Values are written as stored (times in UTC, ISO 8601 with their offset), except that a CSV text cell
starting like a spreadsheet formula gets the API CSV's `'` prefix (`csvcells.FORMULA_PREFIXES`); Parquet is
written as stored. In CSV an empty cell is NULL, `""` an empty text.
Parquet needs the optional `pyarrow` (`pip install 'studytrack[parquet]'`).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from studytrack.events.csvcells import FORMULA_PREFIXES
from studytrack.events.params import EventFilters

COLUMNS = ("id", "time", "tag", "minutes", "user_id", "note", "source", "received_at")
FETCH_ROWS = 5000
# A filter left out is NULL (or no tags) and drops out of the plan; the order makes exports reproducible.
# Tags in the spelling people see.
_FROM = """
    FROM events AS e LEFT JOIN tag_spellings AS s ON s.tag = e.tag
    WHERE (cardinality(%(tags)s::text[]) = 0 OR e.tag = ANY(%(tags)s::text[]))
      AND (%(user_id)s::text IS NULL OR e.user_id = %(user_id)s::text)
      AND (%(start)s::timestamptz IS NULL OR e.time >= %(start)s::timestamptz)
      AND (%(end)s::timestamptz IS NULL OR e.time < %(end)s::timestamptz)
    ORDER BY e.time, e.id
"""
EXPORT_EVENTS = f"""
    SELECT e.id, e.time, coalesce(s.spelling, e.tag), e.minutes, e.user_id, e.note, e.source, e.received_at
    {_FROM}
"""
_PREFIXES = ", ".join("E'" + prefix.encode("unicode_escape").decode() + "'" for prefix in FORMULA_PREFIXES)


def _defused(column: str) -> str:
    return f"CASE WHEN left({column}, 1) IN ({_PREFIXES}) THEN '''' || {column} ELSE {column} END"


# The same rows as CSV cells. COPY binds its parameters client-side (psycopg quotes them as literals).
EXPORT_CSV = f"""
    COPY (
        SELECT e.id, to_json(e.time) #>> '{{}}' AS time, {_defused("coalesce(s.spelling, e.tag)")} AS tag,
               e.minutes, {_defused("e.user_id")} AS user_id, {_defused("e.note")} AS note,
               {_defused("e.source")} AS source, to_json(e.received_at) #>> '{{}}' AS received_at
        {_FROM}
    ) TO STDOUT (FORMAT csv, HEADER true)
"""
PYARROW_MISSING = "--format parquet needs pyarrow: pip install 'studytrack[parquet]'"


class ExportError(RuntimeError):
    """The export cannot run as asked (a missing optional package)."""


def load_pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), imported only when Parquet is asked for."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ExportError(PYARROW_MISSING) from None


def _params(filters: EventFilters) -> dict[str, Any]:
    return {"tags": filters.tags, "user_id": filters.user_id, "start": filters.start, "end": filters.end}


async def stream_events(conn: AsyncConnection[Any], filters: EventFilters) -> AsyncIterator[tuple[Any, ...]]:
    """The matching rows in `COLUMNS` order, oldest first; needs a connection outside autocommit."""
    async with conn.cursor("studytrack_export", row_factory=tuple_row) as cur:
        cur.itersize = FETCH_ROWS
        await cur.execute(EXPORT_EVENTS, _params(filters))
        async for row in cur:
            yield row


async def copy_csv(conn: AsyncConnection[Any], filters: EventFilters, out: BinaryIO) -> int:
    """A header, then one line per matching row, oldest first; the number of rows written."""
    async with conn.cursor() as cur:
        async with cur.copy(EXPORT_CSV, _params(filters)) as copy:
            async for data in copy:
                out.write(data)
        return cur.rowcount


def _schema(pa: Any) -> Any:
    utc = pa.timestamp("us", tz="UTC")
    text = pa.string()
    types = (text, utc, text, pa.int32(), text, text, text, utc)
    return pa.schema(list(zip(COLUMNS, types, strict=True)))


async def write_parquet(rows: AsyncIterator[tuple[Any, ...]], path: Path, *, batch_rows: int = 50_000) -> int:
    """A Parquet file of `COLUMNS` (id as text, times as UTC timestamps), written a row group at a time."""
    pa, pq = load_pyarrow()
    schema = _schema(pa)
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            columns = [list(column) for column in zip(*batch, strict=True)]
            columns[0] = [str(value) for value in columns[0]]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            batch.clear()

        async for row in rows:
            batch.append(row)
            count += 1
            if len(batch) >= batch_rows:
                flush()
        if batch:
            flush()
    return count
