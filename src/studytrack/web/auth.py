"""Who may call what: `Authorization: Bearer <token>` checked against `api_tokens`, by scope.

A route declares its scope as a dependency (`ReadAccess`, ...) or, on the hot ingest path, with
`@token_scope(...)`: a pure-ASGI guard around the route that checks the token before FastAPI reads the body,
without the dependency machinery (about 10 us a request: bench/README.md); the endpoint reads `principal(request)`.

The token may also come as the password of HTTP Basic auth (any user name), so clients that can only put
credentials in a URL (`http://tracker:TOKEN@host:8000`, e.g. `requests`) work unchanged.

401 when the token is missing or unknown, 403 when it lacks the scope or reaches for another user's
events. Verified tokens are cached in-process for `TOKEN_CACHE_SECONDS`, so a revoked token stops
working within that time in every worker.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from cachetools import TTLCache
from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from studytrack.auth.tokens import Principal, verify_token
from studytrack.web.deps import primary_or_stand_in
from studytrack.web.errors import ApiError, ErrorBody

TOKEN_CACHE_SECONDS = 30.0
OPEN_ACCESS = Principal(name="auth-disabled", scopes=frozenset({"admin"}))
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

PRINCIPAL_KEY = "studytrack.principal"  # where `TokenGuard` leaves the caller in the ASGI scope
TOKEN_CACHE_SIZE = 4096  # verified tokens per worker; beyond it the oldest are checked again
TokenCache = TTLCache[bytes, Principal]


def token_cache() -> TokenCache:
    """Verified tokens by the SHA-256 of their secret, each for TOKEN_CACHE_SECONDS (revocation's delay)."""
    return TTLCache(maxsize=TOKEN_CACHE_SIZE, ttl=TOKEN_CACHE_SECONDS)


# The answers of every route that takes a token, for its `responses=` (OpenAPI).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API token, or an unknown or revoked one."},
    403: {"model": ErrorBody, "description": "The token lacks the scope, or is bound to another user."},
}


def _authorization(scope: Scope) -> str:
    """The Authorization header ("" without one), read from the raw headers: no Headers object per request."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            return header
    return ""


def _presented_token(header: str, query_token: str | None) -> str:
    """The token the request presents (Bearer, Basic's password, or `?token=`); a 401 without one."""
    scheme, _, token = header.partition(" ")
    if not header and query_token:
        scheme, token = "bearer", query_token
    if scheme.lower() == "basic":
        scheme, token = "bearer", _basic_password(token)
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing_token", "send an API token: Authorization: Bearer <token>", headers=_CHALLENGE)
    return token.strip()


class TokenCheck:
    """One app's token check (`app.state.token_check`): whether checks are off, and the tokens verified in the
    last TOKEN_CACHE_SECONDS (`cache`, by the SHA-256 of the secret). Route guards keep it after their first
    request: `app.state` costs an exception per lookup, twice a request's token check."""

    __slots__ = ("app", "cache", "disabled")

    def __init__(self, app: FastAPI, *, disabled: bool) -> None:
        self.app, self.disabled = app, disabled
        self.cache = token_cache()

    def known(self, scope: Scope, query_token: str | None = None) -> Principal | None:
        """The caller, when checks are off or its token was verified lately; None when it must be verified.
        A 401 without a token."""
        if self.disabled:
            return OPEN_ACCESS
        token = _presented_token(_authorization(scope), query_token)
        try:
            return self.cache[hashlib.sha256(token.encode()).digest()]
        except KeyError:  # not verified in the last TOKEN_CACHE_SECONDS
            return None

    async def principal(self, scope: Scope, query_token: str | None = None) -> Principal:
        """The caller the request's token names; a 401 without a known one."""
        known = self.known(scope, query_token)
        return known or await self.verified(_presented_token(_authorization(scope), query_token))

    async def verified(self, token: str) -> Principal:
        """The token checked against the database (the primary: a revocation counts at once), then cached."""
        async with primary_or_stand_in(self.app).connection() as conn:
            principal = await verify_token(conn, token)
        if principal is None:
            raise ApiError(401, "invalid_token", "the API token is unknown or revoked", headers=_CHALLENGE)
        self.cache[hashlib.sha256(token.encode()).digest()] = principal
        return principal


async def _principal(request: Request, query_token: str | None = None) -> Principal:
    check: TokenCheck = request.app.state.token_check
    return await check.principal(request.scope, query_token)


def _basic_password(credentials: str) -> str:
    """The password of `Basic base64(user:password)`; empty when the credentials are not decodable."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def _allowed(principal: Principal, scope: str) -> Principal:
    if not principal.allows(scope):
        raise ApiError(403, "missing_scope", f"this token lacks the `{scope}` scope")
    return principal


def require(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        return _allowed(await _principal(request), scope)

    return dependency


class TokenGuard:
    """Pure ASGI, around one route's app: a 401 or 403 (raised to the app's error handlers) unless the token
    has `scope`; the caller is left in the ASGI scope for `principal(request)`."""

    def __init__(self, app: ASGIApp, *, scope: str) -> None:
        self.app = app
        self.scope = scope
        self._check: TokenCheck | None = None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Not a coroutine while the token is cached: the route's own awaitable, one coroutine fewer."""
        check = self._check
        if check is None or check.app is not scope["app"]:  # the first request (routes are built per app)
            check = self._check = scope["app"].state.token_check
        principal = check.known(scope)
        if principal is None:
            return self._verify_then_call(check, scope, receive, send)
        scope[PRINCIPAL_KEY] = _allowed(principal, self.scope)
        return self.app(scope, receive, send)

    async def _verify_then_call(self, check: TokenCheck, scope: Scope, receive: Receive, send: Send) -> None:
        scope[PRINCIPAL_KEY] = _allowed(await check.principal(scope), self.scope)
        await self.app(scope, receive, send)


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def token_scope(scope: str) -> Callable[[Endpoint], Endpoint]:
    """Marks an endpoint whose route is guarded by `TokenGuard` (`flat.apply_marks` wraps the route)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, "asgi_guard", functools.partial(TokenGuard, scope=scope))  # noqa: B010 (a function)
        return endpoint

    return mark


def principal(request: Request) -> Principal:
    """The caller that a `@token_scope` route's guard let through."""
    found: Principal = request.scope[PRINCIPAL_KEY]
    return found


async def badge_access(request: Request, token: str | None = None) -> Principal | None:
    """Badges are embedded in READMEs, which send no headers: a read token may come as `?token=`.

    With PUBLIC_BADGES=true a badge of everyone's total needs no token; one person's (`user_id`) still needs a
    token that may read that person's sessions, so a public badge never reveals per-user data."""
    if request.app.state.settings.public_badges and "user_id" not in request.query_params:
        return None
    caller = await _principal(request, query_token=token)
    if not caller.allows("read"):
        raise ApiError(403, "missing_scope", "this token lacks the `read` scope")
    return caller


def user_scope(principal: Principal, requested: str | None) -> str | None:
    """The user a request may act for: a per-user token acts for its user only."""
    if principal.user_id is None or requested in (None, principal.user_id):
        return principal.user_id or requested
    raise ApiError(403, "other_user", f"this token is bound to user `{principal.user_id}` and cannot act for another")


IngestAccess = Annotated[Principal, Depends(require("ingest"))]
ReadAccess = Annotated[Principal, Depends(require("read"))]
AdminAccess = Annotated[Principal, Depends(require("admin"))]
BadgeAccess = Annotated[Principal | None, Depends(badge_access)]
