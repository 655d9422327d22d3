"""The last resort: whatever escapes the handlers still gets a JSON answer and one log line.

- The server shuts down (SIGTERM) while a request is still running past GRACEFUL_TIMEOUT:
  Hypercorn cancels it and would answer an empty 500. Answer 503 with ``Retry-After``
  instead, so clients (scripts/upload.sh) retry against the next instance.
- Storage fails under a request (directory gone, unreadable, I/O error): 503 with the
  reason /readyz gives (507 when the volume is full), not a 500.
- Anything else: 500, logged once, with the request id (Starlette's own handler would log
  nothing useful and re-raise it to the engine, which logs it a second time).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .http import send_error

logger = logging.getLogger("release_server")
INTERNAL = "Internal error; the server log has the details."
Cancelled = asyncio.CancelledError
#: Seconds a client is asked to wait before retrying after a shutdown or storage trouble.
RETRY_AFTER = "5"


class Failsafe:
    def __init__(self, app: ASGIApp, problem: Callable[[], Awaitable[str | None]]) -> None:
        self.app = app
        self.problem = problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        fields = {"path": scope["path"], "request_id": scope.get("state", {}).get("request_id")}

        async def fail(
            status: int, message: str, log: str, problem: BaseException, level: int = logging.ERROR
        ) -> None:
            logger.log(level, log, exc_info=problem, extra={"fields": fields})
            if not started:
                retry = RETRY_AFTER if status in (503, 507) else ""
                await send_error(send, status, message, close=isinstance(problem, Cancelled),
                                 retry_after=retry)  # fmt: skip

        try:
            await self.app(scope, receive, send_tracked)
        except Cancelled as problem:
            await fail(503, "The server is shutting down; retry in a few seconds.",
                       "request cut off by shutdown", problem, logging.WARNING)  # fmt: skip
            raise
        except (ConnectionError, TimeoutError) as problem:  # OSErrors, but not of storage
            await fail(500, INTERNAL, "connection error", problem)
        except OSError as problem:
            status = 507 if problem.errno in (errno.ENOSPC, errno.EDQUOT) else 503
            fields["reason"] = await self.problem() or f"storage error: {problem.strerror}"
            await fail(status, f"Storage is not usable: {fields['reason']}.", "storage error",
                       problem)  # fmt: skip
        except Exception as problem:
            await fail(500, INTERNAL, "unhandled error", problem)
