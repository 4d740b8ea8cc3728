"""Waiting for work with a bound, without waiting for a hung database to confirm a cancel.

Cancelling a query on a database that never answers makes psycopg wait up to 10 s more for the server: so
past the bound the caller gets its TimeoutError at once and the cancelled task finishes in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def retrieve(task: asyncio.Task[Any]) -> None:
    """A done-callback for abandoned work: its outcome is read (no "never retrieved" warning) and logged."""
    if not task.cancelled() and task.exception() is not None:
        log.info("abandoned work ended with %s", task.exception().__class__.__name__)


async def within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result, or TimeoutError after `seconds` without waiting for its cancellation to complete."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(retrieve)
    raise TimeoutError(f"no answer within {seconds:g} s")
