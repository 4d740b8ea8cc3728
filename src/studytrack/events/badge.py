"""A shields-style badge, `cka | 12h 30m this week`: the period it totals and its SVG."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

Period = Literal["1 day", "1 week", "1 month", "1 year"]
PERIODS: dict[Period, str] = {"1 day": "today", "1 week": "this week", "1 month": "this month", "1 year": "this year"}
_NARROW, _WIDE = set("fijlrt!.,:;'|() "), set("mwMW@%")


def current_period(duration: Period, now: datetime) -> tuple[datetime, datetime]:
    """Local start and end (naive, read in `tz` by BucketQuery) of the calendar bucket holding local `now`."""
    day = datetime(now.year, now.month, now.day)
    if duration == "1 day":
        return day, day + timedelta(days=1)
    if duration == "1 week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    if duration == "1 month":
        first = day.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1)
    return day.replace(month=1, day=1), day.replace(year=day.year + 1, month=1, day=1)


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60}h {minutes % 60}m"


def _text_width(text: str) -> int:
    """Rough width in pixels of `text` in 11px Verdana; `textLength` makes the renderer fit it exactly."""
    return round(sum(3.9 if char in _NARROW else 10.0 if char in _WIDE else 7.0 for char in text))


def render_badge(label: str, value: str) -> str:
    left, right = _text_width(label) + 10, _text_width(value) + 10
    width = left + right
    title = f"{label}: {value}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f"aria-label={quoteattr(title)}><title>{escape(title)}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="#2a7ab0"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14" textLength="{left - 10}">{escape(label)}</text>'
        f'<text x="{left + right / 2}" y="14" textLength="{right - 10}">{escape(value)}</text></g></svg>'
    )
