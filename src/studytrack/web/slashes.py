"""Routers whose routes answer with or without the trailing slash (`/api/stats/` and `/api/stats`).

Starlette answers the other spelling with an empty 307, which clients show as an error or follow without the
request body. Each route is registered once more under the other spelling, left out of the OpenAPI schema,
so the documented spelling stays the only one there and nothing is added per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


def other_spelling(path: str) -> str:
    return path.removesuffix("/") if path.endswith("/") else path + "/"


class SlashTolerantRouter(APIRouter):
    """Documented routes first, in their order, then the other spellings: a request in the documented spelling
    is matched without trying any alias (routes are tried in order, on every request)."""

    _documented = 0

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().add_api_route(path, endpoint, **options)
        documented = self.routes.pop()
        self.routes.insert(self._documented, documented)
        self._documented += 1
        if path.strip("/"):
            super().add_api_route(other_spelling(path), endpoint, **(options | {"include_in_schema": False}))
            self.routes[-1].documented_path = documented.path  # type: ignore[attr-defined]  # metrics' label
