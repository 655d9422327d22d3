"""Download counts are kept in memory and written in batches: one write a moment after a
burst of downloads, not a file operation (and a thread hop) for every download."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from anyio import to_thread

from ..logs import log_event

#: How long counts wait in memory before they are written (listings show them up to a
#: second later anyway).
FLUSH_DELAY_S = 0.5

logger = logging.getLogger("release_server.storage")


class DelayedFlush:
    """Run the blocking ``flush`` in a worker thread ``FLUSH_DELAY_S`` after the first
    ``soon()`` since the last run, and ``now()`` (when the application shuts down)."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self.flush = flush
        self._task: asyncio.Task[None] | None = None

    def soon(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(FLUSH_DELAY_S)
        await self.now()

    async def now(self) -> None:
        try:
            await to_thread.run_sync(self.flush)
        except OSError as error:  # S3Error is one; counts stay pending for the next try
            log_event(logger, "could not write download counts", logging.WARNING,
                      reason=error.strerror or str(error))  # fmt: skip
