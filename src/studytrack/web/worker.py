"""The gunicorn worker: `uvicorn_worker.UvicornWorker` that also honours gunicorn's quick shutdown.

Gunicorn's master answers SIGINT and SIGQUIT with a quick shutdown: it sends SIGQUIT to its workers and
SIGKILLs those still alive after `graceful_timeout`. uvicorn-worker's SIGQUIT handler only sets gunicorn's
`alive` flag, which the Uvicorn server never reads, so a worker would live on until that SIGKILL (30 s, logged
as "Perhaps out of memory?"). Here SIGQUIT stops the Uvicorn server itself: in-flight requests get
`QUICK_SHUTDOWN_SECONDS` (less than the 2 s gunicorn allows a quick shutdown that interrupts a graceful one),
then the application's shutdown closes the database pool. SIGTERM is unchanged: a graceful drain.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker as _UvicornWorker

QUICK_SHUTDOWN_SECONDS = 1


def _quick_exit(server: Server) -> None:
    if server.should_exit:  # already draining after SIGTERM: stop waiting for the requests
        server.force_exit = True
    else:
        server.config.timeout_graceful_shutdown = QUICK_SHUTDOWN_SECONDS
        server.should_exit = True


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    """`worker_class = "studytrack.web.worker.UvicornWorker"` (see `gunicorn_conf.py`)."""

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = Server(config=self.config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, _quick_exit, server)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
