"""The single-event POST served without FastAPI's request handler: a pure-ASGI one in its place.

For every request FastAPI's handler builds the request's parameters through its dependency machinery,
validates the endpoint's answer again against the response model and renders it through several layers:
about 50 us of the ~80 us our no-op took in-process, more than all our middleware (bench/README.md, "Served
directly"). An endpoint marked `@served_directly(Model)` keeps its FastAPI declaration (routing, OpenAPI),
but its route's ASGI app becomes `DirectHandler`, which does the same for the one shape it serves:

* the body is read as JSON (a Content-Type of `application/json`, `application/*+json`, or none, as FastAPI
  reads it) and validated as `Model`: a 422 in the usual error shape naming the faulty field otherwise;
* the endpoint is called with that model, the `Request` and a `Response` whose status code it may change
  (its headers and cookies are not sent: no such endpoint sets any);
* its return value is written as JSON of the route's response model, with the route's status code.

The endpoint takes no dependencies (`Depends`, and so `app.dependency_overrides`, would not reach it).

Errors raise into the app's exception handlers, as from any route. `flat.apply_marks` puts the token check
in front of it, so a request without a valid token is refused before its body is read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

DIRECT_BODY = "direct_body"  # the endpoint's attribute naming the body model it is served with
_JSON = b"application/json"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])


def served_directly(body: type[BaseModel]) -> Callable[[Endpoint], Endpoint]:
    """Marks an endpoint of signature `(body: Model, request, response) -> answer` for `DirectHandler`."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, DIRECT_BODY, body)
        return endpoint

    return mark


def _is_json(content_type: str | None) -> bool:
    """As FastAPI reads a body: JSON without a Content-Type, or with `application/json` or `application/*+json`."""
    if not content_type:
        return True
    kind, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _invalid_body(message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "body", "loc": ("body",), "msg": message}])


def parse_body(body: bytes, content_type: str | None, model: type[BaseModel]) -> BaseModel:
    """The body as `model`; a `RequestValidationError` (422) when it is not JSON of that shape.

    Decoded by `json` and then validated, as FastAPI does: pydantic's own JSON parser refuses some text that
    `json` reads (an escaped lone surrogate), which the model's validators then name by its field."""
    if not _is_json(content_type):
        raise _invalid_body("must be JSON: send it with Content-Type: application/json")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise _invalid_body(f"is not valid JSON: {exc.msg} at character {exc.pos}") from None
    except (ValueError, RecursionError):  # ValueError: not UTF-8, or an integer of over 4,300 digits
        raise _invalid_body("is not JSON that can be read: not UTF-8, a number too long, or nested too deep") from None
    try:
        return model.model_validate(value, from_attributes=True)  # as FastAPI validates a body: the same messages
    except ValidationError as exc:
        errors = [{"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise RequestValidationError(errors) from None


class DirectHandler:
    """Pure ASGI in place of FastAPI's handler for one route (see the module's docstring)."""

    def __init__(self, route: APIRoute, endpoint: Callable[..., Awaitable[Any]], body: type[BaseModel]) -> None:
        if route.response_model is None or route.status_code is None:
            raise TypeError(f"{route.path}: a directly served route declares its response_model and status_code")
        self.endpoint = endpoint
        self.body = body
        self.status_code = route.status_code
        self.answer = TypeAdapter(route.response_model)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            body = await request.body()
        except ClientDisconnect:  # answered as FastAPI does, for the metrics: the caller is gone
            raise HTTPException(400, "the client went away before its body arrived") from None
        value = parse_body(body, request.headers.get("content-type"), self.body)
        response = Response(status_code=self.status_code)
        content = self.answer.dump_json(await self.endpoint(value, request, response), by_alias=True)
        headers = [(b"content-type", _JSON), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def serve_directly(route: APIRoute, endpoint: Callable[..., Any]) -> None:
    """The route's ASGI app becomes a `DirectHandler` when its endpoint is marked `@served_directly`."""
    body = getattr(endpoint, DIRECT_BODY, None)
    if body is not None:
        route.app = DirectHandler(route, endpoint, body)
