"""Routers whose routes each app adds as its own (`add_routes`), instead of including the routers.

FastAPI matches an included router through a wrapper that walks the router's routes on every request, and
once more to handle the request it matched: a request to the last of several routers paid for every route
of the routers before it, several times over. Added as the app's own, each route costs one regular
expression per request it is tried for, and the hot ones are tried first.

A router records the operations declared on it; `routes_for(app)` builds them again for that app, so they
honour `app.dependency_overrides` as included routes do (a route is built with its overrides' provider).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from studytrack.web.direct import serve_directly


class FlatRouter(APIRouter):
    """An APIRouter that can build its routes again for an app (`routes_for`). API routes only."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._settings = settings
        self._operations: list[tuple[str, Callable[..., Any], dict[str, Any]]] = []

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        self._operations.append((path, endpoint, options))
        self.add_operation(path, endpoint, **options)

    def add_operation(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        """The routes of one declared operation (one here; a subclass may add more)."""
        super().add_api_route(path, endpoint, **options)
        apply_marks(self.routes[-1], endpoint)

    def routes_for(self, app: FastAPI) -> list[BaseRoute]:
        router = type(self)(**self._settings, dependency_overrides_provider=app)
        for path, endpoint, options in self._operations:
            router.add_api_route(path, endpoint, **options)
        if len(router.routes) != len(self.routes):
            raise TypeError(f"{type(self).__name__} rebuilds API routes only (operations: {len(self._operations)})")
        return router.routes


def apply_marks(route: BaseRoute, endpoint: Callable[..., Any]) -> None:
    """The route as its endpoint's marks ask: served by `direct.DirectHandler` (`@served_directly`), then its
    ASGI app wrapped in the endpoint's `asgi_guard` (`auth.token_scope`), which runs before the body is read."""
    if isinstance(route, APIRoute):
        serve_directly(route, endpoint)
    guard = getattr(endpoint, "asgi_guard", None)
    if guard is not None:
        route.app = guard(route.app)  # type: ignore[attr-defined]


def is_alias(route: BaseRoute) -> bool:
    """A route that answers an undocumented spelling of another route's path (see `slashes.py`)."""
    return hasattr(route, "documented_path")


def add_routes(app: FastAPI, routers: Sequence[FlatRouter]) -> None:
    """The routers' routes, ahead of the app's own (its docs): documented paths in the routers' order, then
    every alias, so a request in a documented spelling is matched without trying any alias."""
    routes = [route for router in routers for route in router.routes_for(app)]
    ordered = [route for route in routes if not is_alias(route)] + [route for route in routes if is_alias(route)]
    app.router.routes[:0] = ordered
