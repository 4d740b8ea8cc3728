"""`GET /api/events/` as CSV: `?format=csv` or `Accept: text/csv`; JSON stays the default."""

from __future__ import annotations

import csv
import io
from typing import Literal

from pydantic import Field, TypeAdapter

from studytrack.events.csvcells import safe_cell
from studytrack.events.models import BucketPublic, BucketSeries
from studytrack.events.params import BucketQuery

COLUMNS = ("bucket", "tag", "minutes", "count", "avg_minutes")

_JSON_ITEMS = TypeAdapter(list[BucketPublic])  # items with the JSON answer's values (ISO buckets, offsets)
Format = Literal["json", "csv"]


class BucketExportQuery(BucketQuery):
    format: Format | None = Field(
        default=None, description="`csv` for a CSV file; default JSON, or CSV when `Accept` prefers `text/csv`."
    )


def _quality(media_range: str) -> tuple[str, float]:
    kind, *params = (part.strip() for part in media_range.split(";"))
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return kind.lower(), quality


def wanted_format(requested: Format | None, accept: str | None) -> Format:
    """`format` wins; otherwise CSV only when `Accept` ranks `text/csv` above JSON (ties and `*/*` are JSON)."""
    if requested is not None:
        return requested
    ranks = dict(_quality(part) for part in (accept or "").split(",") if part.strip())
    csv_rank = ranks.get("text/csv", ranks.get("text/*", 0.0))
    json_rank = ranks.get("application/json", ranks.get("application/*", ranks.get("*/*", 0.0)))
    return "csv" if csv_rank > json_rank else "json"


def to_csv(series: BucketSeries) -> str:
    """The bucket rows with the JSON answer's values (ISO buckets with their offset; empty avg for null).

    A tag that starts like a spreadsheet formula (`=`, `+`, `-`, `@`) is prefixed with `'` (OWASP CSV injection).
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in _JSON_ITEMS.dump_python(series["items"], mode="json"):
        row["tag"] = safe_cell(row["tag"])
        writer.writerow("" if row[column] is None else row[column] for column in COLUMNS)
    return out.getvalue()
