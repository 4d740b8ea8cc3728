"""The CSV study tracker's `sessions.csv` (`id,timestamp,minutes,tag`), read row by row for `studytrack import`.

Every row is checked by `EventCreate`, the API's own rules, and gets the API's identity: the file's `id` when it
is a UUID, else an id derived from the session's content, so importing a file twice stores nothing twice.
The tracker wrote naive local times (`datetime.isoformat()`); they are read in the zone given (a time with an
offset keeps it; in the repeated autumn hour the first one is taken). Real exports are messy: blank lines are
ignored, the header may be missing (the first row is data when its 2nd column is a timestamp), cells are trimmed,
and each bad row is skipped with its line number and reason.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from studytrack.events.ingest import NewEvent, resolve
from studytrack.events.models import EventCreate, error_message
from studytrack.events.retention import expired, expired_message

COLUMNS = ("id", "timestamp", "minutes", "tag")
TRACKER_SOURCE = "study-tracker"  # `source` of sessions that came from the tracker (its file or its API)
_COLUMN_OF_FIELD = {"time": "timestamp"}  # EventCreate's name -> the file's
_INTEGER = re.compile(r"[+-]?\d+")


class TrackerFileError(ValueError):
    """The file is not a tracker export at all (nothing sensible can be read from it)."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    event: NewEvent


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int
    reason: str


def _timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _reason(error: Any) -> str:
    field = ".".join(_COLUMN_OF_FIELD.get(str(part), str(part)) for part in error["loc"])
    return f"{field}: {error_message(error)}"


class SessionsCsv:
    """Iterates a tracker export as `Row`s and `Skipped`s; `lines`, `header` and `blank_lines` grow as it goes."""

    def __init__(
        self,
        lines: Iterable[str],
        *,
        zone: ZoneInfo,
        source: str | None,
        now: datetime,
        retention: timedelta | None = None,
    ) -> None:
        self._lines = lines
        self._zone = zone
        self._source = source
        self._now = now
        self._retention = retention
        self.lines = 0  # physical lines read so far
        self.header: tuple[str, ...] | None = None
        self.blank_lines = 0
        self._columns: tuple[str, ...] = COLUMNS
        self._first_use: dict[uuid.UUID, tuple[int, int]] = {}  # id -> (line, content hash) of its first row

    def __iter__(self) -> Iterator[Row | Skipped]:
        reader = csv.reader(self._lines)
        first = True
        for cells in reader:
            line, self.lines = self.lines + 1, reader.line_num
            cells = [cell.strip() for cell in cells]
            while len(cells) > len(COLUMNS) and not cells[-1]:
                cells.pop()  # a trailing comma
            if not any(cells):
                self.blank_lines += 1
                continue
            if first:
                first = False
                if len(cells) < 2 or _timestamp(cells[1]) is None:
                    self._read_header(cells, line)
                    continue
            yield self._row(cells, line)

    def _read_header(self, cells: list[str], line: int) -> None:
        names = tuple(cell.lower() for cell in cells)
        if sorted(names) != sorted(COLUMNS):
            raise TrackerFileError(
                f"line {line}: expected a header naming the columns {','.join(COLUMNS)} or a session whose "
                f"2nd column is a timestamp; found {','.join(cells)!r}"
            )
        self.header = self._columns = names

    def _row(self, cells: list[str], line: int) -> Row | Skipped:
        if tuple(cell.lower() for cell in cells) in (COLUMNS, self._columns):
            return Skipped(line, "a header row, not a session")
        if len(cells) != len(COLUMNS):
            return Skipped(line, f"expected {len(COLUMNS)} columns ({','.join(self._columns)}), found {len(cells)}")
        raw = dict(zip(self._columns, cells, strict=True))
        reasons, event = self._validate(raw)
        if event is None:
            return Skipped(line, "; ".join(reasons))
        if self._retention is not None and expired(event.time, retention=self._retention, now=self._now):
            return Skipped(line, f"timestamp: {expired_message(self._retention)}")
        content = hash((event.time, event.tag, event.minutes))
        first_line, first_content = self._first_use.setdefault(event.id, (line, content))
        if first_content != content:
            return Skipped(line, f"id: already used on line {first_line} by a different session")
        return Row(line, event)

    def _validate(self, raw: dict[str, str]) -> tuple[list[str], NewEvent | None]:
        """The event, or every reason (in column order) why the row is not one."""
        reasons: dict[str, str] = {}
        time = _timestamp(raw["timestamp"])
        if time is None:
            problem = "not an ISO 8601 date and time" if raw["timestamp"] else "missing"
            reasons["timestamp"] = f"timestamp: {problem}"
        elif time.tzinfo is None:
            time = time.replace(tzinfo=self._zone)
        try:
            event_id: uuid.UUID | None = uuid.UUID(raw["id"])
        except ValueError:
            event_id = None  # not the tracker's uuid4: derive it from the content, as the API does
        minutes = int(raw["minutes"]) if _INTEGER.fullmatch(raw["minutes"]) else raw["minutes"]
        fields = {"id": event_id, "time": time, "minutes": minutes, "tag": raw["tag"], "source": self._source}
        try:
            event = EventCreate.model_validate(fields)
        except ValidationError as exc:
            for error in exc.errors():
                reason = _reason(error)
                reasons.setdefault(reason.split(":", 1)[0], reason)
        if reasons:
            order = {column: index for index, column in enumerate(COLUMNS)}
            return [reasons[key] for key in sorted(reasons, key=lambda key: order.get(key, len(order)))], None
        return [], resolve(event, now=self._now)
