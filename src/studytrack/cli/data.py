"""`studytrack demo | import | export`: study data in and out of the configured (or embedded) database.

Writes take the API's own path: `resolve` gives each session the API's identity and `EventWriter` stores a batch
in one transaction and keeps the rollups exact, so running a command twice stores nothing twice.
Progress bars go to stderr, reports to stdout; the exit code is non-zero only when the command could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import sqlalchemy.exc
from psycopg_pool import PoolTimeout
from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from studytrack.cli.database import configured_or_embedded_database
from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from studytrack.database.mode import DatabaseMode, detect_mode
from studytrack.database.pool import make_pool
from studytrack.database.replicas import caught_up_replica
from studytrack.events.demo import demo_sessions
from studytrack.events.ingest import EventWriter, NewEvent, Outcome, resolve
from studytrack.events.models import Label, error_message
from studytrack.events.params import EventFilters
from studytrack.events.raw_export import ExportError, copy_csv, load_pyarrow, stream_events, write_parquet
from studytrack.events.tracker_csv import TRACKER_SOURCE, Row, SessionsCsv, Skipped, TrackerFileError

BATCH_SIZE = 2000  # sessions per INSERT and transaction
GROUP_SKIPPED_ABOVE = 20  # a longer list of skipped rows is grouped by reason
LINES_PER_REASON = 10
_LABEL = TypeAdapter(Label)
T = TypeVar("T")
Handler = Callable[[Settings, argparse.Namespace], int]


def _fail(command: str, message: str, code: int = 1) -> int:
    print(f"studytrack {command}: {message}", file=sys.stderr)
    return code


def _reporting_database_errors(command: str, handler: Handler) -> Handler:
    """An unreachable database is a one-line message and exit code 1, not a traceback."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return handler(settings, args)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            return _fail(command, f"cannot reach the database: {exc}")
        except sqlalchemy.exc.OperationalError as exc:  # from the migrations
            return _fail(command, f"cannot reach the database: {exc.orig}")

    return run


@asynccontextmanager
async def _event_writer(url: str, settings: Settings) -> AsyncIterator[EventWriter]:
    """The API's writer on a small pool of its own, in the mode of this database."""
    pool = make_pool(url, settings)
    try:
        await pool.open(wait=True, timeout=settings.db_timeout_seconds)
        async with pool.connection() as conn:
            mode = await detect_mode(conn)

        async def current_mode() -> DatabaseMode:
            return mode

        yield EventWriter(pool, mode=current_mode)
    finally:
        await pool.close()


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _write_demo(writer: EventWriter, events: Sequence[NewEvent], progress: tqdm[Any]) -> int:
    """Store the events batch by batch; the number newly stored (the rest were there already)."""
    added = 0
    for chunk in _chunks(events, BATCH_SIZE):
        results = await writer.write(chunk)
        added += sum(result.outcome is Outcome.INSERTED for result in results)
        progress.update(len(chunk))
    return added


async def _run_demo(url: str, settings: Settings, events: Sequence[NewEvent]) -> int:
    async with _event_writer(url, settings) as writer:
        with tqdm(total=len(events), unit="session", desc="demo") as progress:
            return await _write_demo(writer, events, progress)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    now = datetime.now(UTC)
    sessions = demo_sessions(days=args.days, seed=seed, until=now.date(), user_id=args.user_id)
    if settings.retention is not None:  # the API refuses those too: they would be dropped at once
        sessions = [s for s in sessions if s.time is not None and s.time >= now - settings.retention]
    events = [resolve(session, now=now) for session in sessions]
    with configured_or_embedded_database(settings) as url:
        run_migrations(url, settings)
        added = asyncio.run(_run_demo(url, settings, events))
    print(
        f"demo (seed {seed}): {len(events)} sessions over the {args.days} days before {now.date()}: "
        f"{added} added, {len(events) - added} already present"
    )
    return 0


@dataclass
class ImportReport:
    imported: int = 0
    present: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.imported + self.present + len(self.skipped)


async def import_sessions(writer: EventWriter, sessions: SessionsCsv, progress: tqdm[Any]) -> ImportReport:
    """Store every valid row, batch by batch; what happened to each row."""
    report = ImportReport()
    for chunk in _chunks(sessions, BATCH_SIZE):
        rows = [item for item in chunk if isinstance(item, Row)]
        report.skipped += [item for item in chunk if isinstance(item, Skipped)]
        results = await writer.write([row.event for row in rows]) if rows else []
        for row, result in zip(rows, results, strict=True):
            if result.outcome is Outcome.INSERTED:
                report.imported += 1
            elif result.outcome is Outcome.DUPLICATE:
                report.present += 1
            else:
                report.skipped.append(Skipped(row.line, "id: already stored for a different session at this time"))
        progress.update(sessions.lines - progress.n)
    report.skipped.sort(key=lambda skipped: skipped.line)
    return report


def format_report(name: str, sessions: SessionsCsv, report: ImportReport) -> list[str]:
    blank = f", {sessions.blank_lines} blank lines ignored" if sessions.blank_lines else ""
    lines = [
        f"{name}: {report.rows} rows read ({'with header' if sessions.header else 'no header'}{blank})",
        f"  imported:        {report.imported}",
        f"  already present: {report.present}",
        f"  skipped:         {len(report.skipped)}",
    ]
    if len(report.skipped) <= GROUP_SKIPPED_ABOVE:
        return lines + [f"    line {skipped.line}: {skipped.reason}" for skipped in report.skipped]
    by_reason: dict[str, list[int]] = {}
    for skipped in report.skipped:
        by_reason.setdefault(skipped.reason, []).append(skipped.line)
    for reason, numbers in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(str(number) for number in numbers[:LINES_PER_REASON])
        more = f" and {len(numbers) - LINES_PER_REASON} more" if len(numbers) > LINES_PER_REASON else ""
        rows, where = ("rows", "lines") if len(numbers) > 1 else ("row", "line")
        lines.append(f"    {reason}: {len(numbers)} {rows} ({where} {shown}{more})")
    return lines


def _count_lines(path: Path, zone: ZoneInfo) -> int:
    """The file's lines; fails before any database work when it is unreadable or starts with a foreign header."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        head = SessionsCsv(file, zone=zone, source=None, now=datetime.now(UTC))
        next(iter(head), None)  # reads up to the first session, checking the header on the way
        return head.lines + sum(1 for _ in file)


async def _run_import(url: str, settings: Settings, sessions: SessionsCsv, total: int) -> ImportReport:
    async with _event_writer(url, settings) as writer:
        with tqdm(total=total, unit="line", desc="import") as progress:
            return await import_sessions(writer, sessions, progress)


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        total = _count_lines(path, args.tz)
    except OSError as exc:
        return _fail("import", f"cannot read {path}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        return _fail("import", f"{path} is not UTF-8 text (byte {exc.start})")
    except TrackerFileError as exc:
        return _fail("import", f"{path}: {exc}")
    with configured_or_embedded_database(settings) as url:
        run_migrations(url, settings)
        with path.open(encoding="utf-8-sig", newline="") as file:
            sessions = SessionsCsv(
                file, zone=args.tz, source=args.source, now=datetime.now(UTC), retention=settings.retention
            )
            report = asyncio.run(_run_import(url, settings, sessions, total))
    print("\n".join(format_report(str(path), sessions, report)))
    return 0


async def _export_source(url: str, settings: Settings) -> str:
    """A replica that holds every session committed by now, else the primary (docs/scaling.md)."""
    replica = await caught_up_replica(url, settings)
    if replica is None:
        if settings.database_replica_urls:
            print("studytrack export: no replica has caught up; reading the primary", file=sys.stderr)
        return url
    name, replica_url = replica
    print(f"studytrack export: reading {name}", file=sys.stderr)
    return replica_url


async def _run_export(url: str, settings: Settings, filters: EventFilters, fmt: str, output: Path | None) -> int:
    timeout = max(1, math.ceil(settings.db_timeout_seconds))
    url = await _export_source(url, settings)
    async with await psycopg.AsyncConnection.connect(url, connect_timeout=timeout) as conn:
        await conn.execute("SET TIME ZONE 'UTC'")
        await conn.execute("SELECT 'events'::regclass")  # no table: fail before anything is written
        if fmt == "parquet":
            assert output is not None
            return await write_parquet(stream_events(conn, filters), output)
        if output is None:
            return await copy_csv(conn, filters, sys.stdout.buffer)
        with output.open("wb") as out:
            return await copy_csv(conn, filters, out)


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    try:
        filters = EventFilters.model_validate(
            {"tags": args.tags or [], "user_id": args.user_id, "start": args.start, "end": args.end}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "filters"
        return _fail("export", f"{where}: {error_message(error)}", code=2)
    if args.format == "parquet":
        if args.output is None:
            return _fail("export", "--format parquet needs --output FILE", code=2)
        try:
            load_pyarrow()
        except ExportError as exc:
            return _fail("export", str(exc))
    with configured_or_embedded_database(settings) as url:
        try:
            count = asyncio.run(_run_export(url, settings, filters, args.format, args.output))
        except psycopg.errors.UndefinedTable:
            return _fail("export", "the database has no events table yet; run `studytrack migrate`")
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as shell tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    print(f"exported {count} sessions to {args.output or 'standard output'}", file=sys.stderr)
    return 0


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise argparse.ArgumentTypeError(f"must be a whole number of days from 1 to 3650, got {text!r}")
    return int(text)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None


def label_argument(text: str) -> str:
    """An argparse type: a user id or source checked exactly as the API checks them (trimmed, 1-128)."""
    try:
        return _LABEL.validate_python(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(error_message(exc.errors()[0])) from None


def add_data_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `demo`, `import` and `export` on the `studytrack` command line."""
    demo = commands.add_parser("demo", help="store realistic demo study sessions (the same ones for the same --seed)")
    demo.add_argument("--days", type=_days, default=90, help="how many days before today to fill (default: 90)")
    demo.add_argument("--seed", type=int, help="the same seed gives the same sessions (default: random, printed)")
    demo.add_argument("--user-id", type=label_argument, metavar="ID", help="store the sessions for this user")
    demo.set_defaults(handler=_reporting_database_errors("demo", cmd_demo))

    load = commands.add_parser(
        "import",
        help="import the CSV study tracker's sessions.csv (id,timestamp,minutes,tag); safe to run again",
        description="Import the CSV study tracker's sessions.csv. Bad rows are skipped and listed with their line; "
        "rows stored before (same id, or same content when the id is not a UUID) are not stored again.",
    )
    load.add_argument("file", type=Path, metavar="FILE.csv", help="the tracker's export")
    load.add_argument(
        "--tz",
        type=_zone,
        default="UTC",
        metavar="ZONE",
        help="IANA zone of the file's timestamps, which carry no offset (default: UTC). The tracker wrote the "
        "local time of the machine it ran on: pass that machine's zone, e.g. Europe/Berlin",
    )
    load.add_argument(
        "--source",
        type=label_argument,
        default=TRACKER_SOURCE,
        metavar="NAME",
        help=f"stored as `source` (default: {TRACKER_SOURCE})",
    )
    load.set_defaults(handler=_reporting_database_errors("import", cmd_import))

    export = commands.add_parser("export", help="write the stored sessions, oldest first, as CSV or Parquet")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv", help="default: csv")
    export.add_argument("--tags", nargs="+", action="extend", metavar="TAG", help="only these tags")
    export.add_argument("--start", metavar="ISO", help="from this time on (inclusive; without an offset: UTC)")
    export.add_argument("--end", metavar="ISO", help="before this time (exclusive; without an offset: UTC)")
    export.add_argument("--user-id", metavar="ID", help="only this user's sessions")
    export.add_argument(
        "--output", type=Path, metavar="FILE", help="where to write (default: standard output; Parquet needs a file)"
    )
    export.set_defaults(handler=_reporting_database_errors("export", cmd_export))
