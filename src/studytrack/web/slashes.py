"""Routers whose routes answer with or without the trailing slash (`/api/stats/` and `/api/stats`).

Starlette answers the other spelling with an empty 307, which clients show as an error or follow without the
request body. Each route is registered once more under the other spelling, left out of the OpenAPI schema,
so the documented spelling stays the only one there and nothing is added per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from studytrack.web.flat import FlatRouter


def other_spelling(path: str) -> str:
    return path.removesuffix("/") if path.endswith("/") else path + "/"


class SlashTolerantRouter(FlatRouter):
    """Each operation under its documented path and, as an alias (`documented_path` set: metrics' label), under
    the other spelling. `flat.add_routes` tries every documented path before any alias."""

    def add_operation(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().add_operation(path, endpoint, **options)
        documented = self.routes[-1]
        if path.strip("/"):
            super().add_operation(other_spelling(path), endpoint, **(options | {"include_in_schema": False}))
            self.routes[-1].documented_path = documented.path  # type: ignore[attr-defined]
