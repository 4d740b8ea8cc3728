"""Parsing a batch body: a JSON array or NDJSON, all-or-nothing, errors naming each bad item's index.

Its size limit (MAX_BATCH_BYTES, 413) is enforced for every route by `web/limits.py` before this runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from studytrack.events.errors import InvalidItemsError, InvalidRequestError
from studytrack.events.models import EventCreate

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
_EVENTS = TypeAdapter(list[EventCreate])
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _errors(exc: ValidationError, index: int | None = None) -> list[dict[str, Any]]:
    prefix: tuple[Any, ...] = ("body",) if index is None else ("body", index)
    return [{"loc": prefix + tuple(error["loc"]), "msg": error["msg"], "type": error["type"]} for error in exc.errors()]


def _too_many(max_events: int) -> InvalidRequestError:
    return InvalidRequestError("batch_too_large", f"a batch holds at most {max_events} events; split it")


def _after_space(text: str, index: int) -> int:
    match = _SPACE.match(text, index)
    assert match is not None  # `*` matches the empty string
    return match.end()


def _more_array_items_than(body: bytes, limit: int) -> bool:
    """True when the JSON array holds more than `limit` items, found without validating any: each item is
    decoded by the C scanner and dropped, and the count stops at `limit + 1`. Malformed JSON is False here and
    left to the validation that follows, which names the fault."""
    if len(body) <= 2 * limit:  # every item takes at least two bytes ("1,")
        return False
    try:
        text = body.decode()
        index = _after_space(text, text.index("[") + 1)
        count = 0
        while text[index] != "]":
            index = _after_space(text, _DECODER.raw_decode(text, index)[1])
            count += 1
            if count > limit:
                return True
            if text[index] == ",":
                index = _after_space(text, index + 1)
    except (ValueError, IndexError, RecursionError):
        return False
    return False


def _ndjson_lines(body: bytes) -> Iterator[bytes]:
    """The non-blank lines, one at a time (a body of a million lines is never split into a list at once)."""
    start = 0
    while start < len(body):
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        if body[start:end].strip():
            yield body[start:end]
        start = end + 1


def parse_events(body: bytes, *, content_type: str, max_events: int) -> list[EventCreate]:
    """Every event of the batch, or an InvalidItemsError listing every bad item. More than `max_events`
    items is refused before any is validated."""
    if content_type.split(";")[0].strip().lower() in NDJSON_TYPES:
        lines: list[bytes] = []
        for line in _ndjson_lines(body):
            lines.append(line)
            if len(lines) > max_events:
                raise _too_many(max_events)
        events, errors = [], []
        for index, line in enumerate(lines):
            try:
                events.append(EventCreate.model_validate_json(line))
            except ValidationError as exc:
                errors += _errors(exc, index)
        if errors:
            raise InvalidItemsError(errors)
    else:
        if _more_array_items_than(body, max_events):
            raise _too_many(max_events)
        try:
            events = _EVENTS.validate_json(body)
        except ValidationError as exc:
            raise InvalidItemsError(_errors(exc)) from None
    if not events:
        raise InvalidRequestError("empty_batch", "the batch has no events; send at least one")
    if len(events) > max_events:
        raise _too_many(max_events)
    return events
