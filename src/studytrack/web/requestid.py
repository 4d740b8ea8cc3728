"""Request ids: every request gets one, answers with it in `X-Request-ID`, and logs it on every line.

The caller's own `X-Request-ID` is kept when it is sane (1-128 visible ASCII characters, no spaces), so a
proxy's or client's id can be followed through; otherwise the id is a new random UUID (version 4) in hex.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

HEADER = "X-Request-ID"
HEADER_NAME = HEADER.lower().encode()  # as ASGI header names are sent
_SANE = re.compile(r"[!-~]{1,128}")
_UUID4_CLEAR = ~(0xF000 << 64 | 0xC000 << 48)  # the version and variant bits of 128 random ones
_UUID4_SET = 4 << 76 | 0x8000 << 48  # version 4, RFC 4122 variant


def new_request_id() -> str:
    """A random version-4 UUID in hex, as `uuid.uuid4().hex` but from `random` (reseeded in each forked
    worker): a correlation id needs no system call per request, and no UUID object."""
    return (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16).hex()  # half a format's cost


def with_request_id(headers: Iterable[tuple[bytes, bytes]], value: bytes) -> list[tuple[bytes, bytes]]:
    """The response headers with X-Request-ID set to `value` (replaced if the answer already had one; ASGI
    header names are lower-case)."""
    if type(headers) is not list:  # any iterable, as ASGI allows: read once
        headers = list(headers)
    for name, _ in headers:
        if name == HEADER_NAME:
            return [header for header in headers if header[0] != HEADER_NAME] + [(HEADER_NAME, value)]
    return [*headers, (HEADER_NAME, value)]


def sane_request_id(value: bytes) -> str | None:
    """The caller's X-Request-ID when it is short and printable."""
    text = value.decode("latin-1")
    return text if _SANE.fullmatch(text) else None
