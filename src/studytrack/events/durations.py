"""Bucket widths: parsed from `N unit(s)` into a closed set of values, never pasted into SQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
UNIT_MONTHS = {"month": 1, "year": 12}
MAX_COUNT = 1000
# Fixed-width buckets count from this local midnight, a Monday (weeks start on Monday), as time_bucket does;
# month widths count from 2000-01-01.
BUCKET_ORIGIN = datetime(2000, 1, 3)
_DURATION = re.compile(r"^\s*(\d{1,4})?\s*(minute|hour|day|week|month|year)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Duration:
    count: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count != 1 else ''}"

    @property
    def months(self) -> int | None:
        """Width in months for month/year buckets (calendar-aligned); None for fixed widths."""
        return self.count * UNIT_MONTHS[self.unit] if self.unit in UNIT_MONTHS else None

    @property
    def fixed(self) -> timedelta | None:
        return timedelta(seconds=self.count * UNIT_SECONDS[self.unit]) if self.unit in UNIT_SECONDS else None

    def bucket_count(self, start: datetime, end: datetime) -> int:
        """Upper bound of the buckets that [start, end) touches, for the bucket-count limit."""
        if self.fixed is not None:
            return int((end - start) / self.fixed) + 2
        months = (end.year - start.year) * 12 + end.month - start.month
        assert self.months is not None
        return months // self.months + 2


def parse_duration(text: str) -> Duration:
    """`1 day`, `15 minutes`, `week`, `3 months` -> Duration; anything else is a ValueError."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError("must be like '1 day': a whole number and one of minute, hour, day, week, month, year")
    count = int(match.group(1) or 1)
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"the number must be between 1 and {MAX_COUNT}")
    return Duration(count=count, unit=match.group(2).lower())
