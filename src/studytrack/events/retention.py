"""With retention on (RETENTION_DAYS), a session older than it is refused: it would be dropped at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from studytrack.events.errors import InvalidItemsError
from studytrack.events.models import EventCreate


def expired(time: datetime, *, retention: timedelta | None, now: datetime) -> bool:
    return retention is not None and time < now - retention


def expired_message(retention: timedelta) -> str:
    return f"is older than the retention period ({retention.days} days, RETENTION_DAYS)"


def refuse_expired(events: Sequence[EventCreate], *, retention: timedelta | None, now: datetime, batch: bool) -> None:
    """`InvalidItemsError` naming every event (by its index in a batch) older than the retention period."""
    if retention is None:
        return
    errors = [
        {"loc": ("body", index, "time") if batch else ("body", "time"), "msg": expired_message(retention),
         "type": "value_error"}
        for index, event in enumerate(events)
        if event.time is not None and expired(event.time, retention=retention, now=now)
    ]  # fmt: skip
    if errors:
        raise InvalidItemsError(errors)
