"""Parsing a batch body: a JSON array or NDJSON, all-or-nothing, errors naming each bad item's index.

Its size limit (MAX_BATCH_BYTES, 413) is enforced for every route by `web/limits.py` before this runs.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from studytrack.events.models import EventCreate
from studytrack.web.errors import ApiError

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
_EVENTS = TypeAdapter(list[EventCreate])


def _errors(exc: ValidationError, index: int | None = None) -> list[dict[str, Any]]:
    prefix: tuple[Any, ...] = ("body",) if index is None else ("body", index)
    return [{"loc": prefix + tuple(error["loc"]), "msg": error["msg"], "type": error["type"]} for error in exc.errors()]


def parse_events(body: bytes, *, content_type: str, max_events: int) -> list[EventCreate]:
    """Every event of the batch, or a RequestValidationError listing every bad item."""
    if content_type.split(";")[0].strip().lower() in NDJSON_TYPES:
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) > max_events:
            raise ApiError(422, "batch_too_large", f"a batch holds at most {max_events} events; split it")
        events, errors = [], []
        for index, line in enumerate(lines):
            try:
                events.append(EventCreate.model_validate_json(line))
            except ValidationError as exc:
                errors += _errors(exc, index)
        if errors:
            raise RequestValidationError(errors)
    else:
        try:
            events = _EVENTS.validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(_errors(exc)) from None
    if not events:
        raise ApiError(422, "empty_batch", "the batch has no events; send at least one")
    if len(events) > max_events:
        raise ApiError(422, "batch_too_large", f"a batch holds at most {max_events} events; split it")
    return events
