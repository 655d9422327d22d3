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
from dataclasses import dataclass

from starlette.types import Send

from .http import send_error

logger = logging.getLogger("release_server")
INTERNAL = "Internal error; the server log has the details."
Cancelled = asyncio.CancelledError
#: Seconds a client is asked to wait before retrying after a shutdown or storage trouble.
RETRY_AFTER = "5"
#: Says what is wrong with storage (the reason /readyz gives), or None.
StorageProblem = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Failure:
    """What an exception that escaped the handlers is answered and logged as."""

    status: int
    message: str
    log: str
    level: int = logging.ERROR
    #: Storage trouble: the reason /readyz gives.
    reason: str | None = None


async def failure(problem: BaseException, storage_problem: StorageProblem) -> Failure:
    """How to answer ``problem``; ``storage_problem`` says what is wrong with storage."""
    if isinstance(problem, Cancelled):
        return Failure(503, "The server is shutting down; retry in a few seconds.",
                       "request cut off by shutdown", logging.WARNING)  # fmt: skip
    if isinstance(problem, (ConnectionError, TimeoutError)):  # OSErrors, but not of storage
        return Failure(500, INTERNAL, "connection error")
    if isinstance(problem, OSError):
        status = 507 if problem.errno in (errno.ENOSPC, errno.EDQUOT) else 503
        reason = await storage_problem() or f"storage error: {problem.strerror}"
        return Failure(status, f"Storage is not usable: {reason}.", "storage error", reason=reason)
    return Failure(500, INTERNAL, "unhandled error")


async def fail(
    problem: BaseException,
    storage_problem: StorageProblem,
    fields: dict[str, object],
    send: Send | None,
) -> None:
    """Log ``problem`` once and, through ``send`` (None once an answer has begun), answer
    it as this API's JSON error."""
    answer = await failure(problem, storage_problem)
    if answer.reason is not None:
        fields["reason"] = answer.reason
    logger.log(answer.level, answer.log, exc_info=problem, extra={"fields": fields})
    if send is not None:
        retry = RETRY_AFTER if answer.status in (503, 507) else ""
        await send_error(send, answer.status, answer.message,
                         close=isinstance(problem, Cancelled), retry_after=retry)  # fmt: skip
