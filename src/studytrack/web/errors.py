"""One JSON shape for every 4xx and 5xx:

    {"status": 422, "code": "validation_error", "message": "minutes: ...", "details": [...]}

`message` is written for a person; `details` lists each bad field (`location`, `field`, `message`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from studytrack.events.errors import InvalidItemsError, InvalidRequestError
from studytrack.events.models import error_message
from studytrack.logs import request_id

log = logging.getLogger(__name__)
MAX_ERROR_DETAILS = 100  # an answer lists the first 100 faults and counts the rest: its size stays bounded


class ErrorDetail(BaseModel):
    location: str
    field: str
    message: str


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    details: list[ErrorDetail] = []


class ApiError(Exception):
    """Raised by the web layer for a client mistake that validation cannot see (e.g. an id clash)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[ErrorDetail] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(status=status, code=code, message=message, details=list(details))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _detail(error: dict[str, Any]) -> ErrorDetail:
    loc = list(error.get("loc", ()))
    location = str(loc.pop(0)) if loc and loc[0] in ("body", "query", "path", "header") else "body"
    return ErrorDetail(location=location, field=_field_path(loc), message=error_message(error))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | InvalidItemsError)
    errors = list(exc.errors()) if isinstance(exc, RequestValidationError) else exc.errors
    details = [_detail(error) for error in errors[:MAX_ERROR_DETAILS]]
    first = details[0] if details else ErrorDetail(location="body", field="", message="is invalid")
    summary = f"{first.field or first.location}: {first.message}"
    if len(errors) > 1:
        summary += f" (and {len(errors) - 1} more)"
    if len(errors) > MAX_ERROR_DETAILS:
        summary += f"; details lists the first {MAX_ERROR_DETAILS} of {len(errors)}"
    return error_response(422, "validation_error", summary, details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    message = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else phrase
    if exc.status_code == 404 and message == phrase:
        message = f"no route {request.method} {request.url.path}; see /docs for the API"
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    # The domain's refusal (too large a chart or batch, a foreign cursor): the client must change the request.
    assert isinstance(exc, InvalidRequestError)
    return error_response(422, exc.code, exc.message)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc.__class__.__name__)
    return error_response(
        503,
        "database_unavailable",
        "the database is unreachable; retry shortly",
        headers={"Retry-After": "5"},
    )


async def _no_connection(request: Request, exc: Exception) -> JSONResponse:
    # The pool had no connection to give in time: the database is down, or every connection is busy.
    seconds = request.app.state.settings.db_timeout_seconds
    log.warning("no database connection within %s s", seconds)
    message = f"no database connection within {seconds:g} s (the database is down or busy); retry shortly"
    return error_response(503, "database_unavailable", message, headers={"Retry-After": "5"})


async def _database_timeout(request: Request, exc: Exception) -> JSONResponse:
    seconds = request.app.state.settings.db_timeout_seconds
    log.warning("database statement cancelled after %s s: %s", seconds, exc.__class__.__name__)
    message = f"the database did not answer within {seconds:g} s (DB_TIMEOUT_SECONDS); retry shortly"
    return error_response(503, "database_timeout", message, headers={"Retry-After": "5"})


async def _database_contention(request: Request, exc: Exception) -> JSONResponse:
    log.warning("write gave up after retries: %s", exc.__class__.__name__)
    message = "concurrent writes of the same sessions kept colliding in the database; retry the request"
    return error_response(503, "database_contention", message, headers={"Retry-After": "1"})


async def _database_rejected(request: Request, exc: Exception) -> JSONResponse:
    # Input the database refuses (e.g. a time zone its tz data lacks) is the client's to fix.
    diag = getattr(exc, "diag", None)
    reason = getattr(diag, "message_primary", None) or "the database rejected a value"
    log.info("database rejected request input: %s", reason)
    return error_response(422, "invalid_value", reason)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    # Sent from outside every middleware: add the request id here, so the client can quote it.
    rid = request_id.get() or ""
    message = f"unexpected server error; it has been logged (request id {rid})" if rid else "unexpected server error"
    return error_response(500, "internal_error", message, headers={"X-Request-ID": rid} if rid else None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InvalidItemsError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InvalidRequestError, _invalid_request)
    app.add_exception_handler(PoolTimeout, _no_connection)
    for contention in (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
        app.add_exception_handler(contention, _database_contention)  # psycopg gives them no common base
    app.add_exception_handler(psycopg.errors.QueryCanceled, _database_timeout)
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(psycopg.DataError, _database_rejected)
    app.add_exception_handler(Exception, _unexpected)
