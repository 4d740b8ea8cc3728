"""What the events code refuses: a request it cannot serve as asked, which the client must change.

Domain code raises `InvalidRequestError`; `web/errors.py` answers it as a 422 in the one error shape, with its
`code` and `message`.
"""

from __future__ import annotations

from typing import Any


class InvalidRequestError(Exception):
    """A request refused by the domain (too large a chart or batch, a cursor it did not hand out)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class InvalidItemsError(Exception):
    """Items of a request body that failed validation, as pydantic reports them (`loc` starts with "body")."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid items")
        self.errors = errors
