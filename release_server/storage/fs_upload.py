"""Uploads in flight on a storage directory: hidden ``.tmp-*`` files, locked while alive.

The temp file lives in the storage directory itself, so publishing it is a link or rename
on the same filesystem (atomic), and an upload never spools through a system temp dir.
Each holds an exclusive ``flock`` so start-up cleanup in another process can tell a live
upload from one whose process died.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from anyio import to_thread

from ..errors import DiskFull
from .base import Writer

TMP_PREFIX = ".tmp-"
#: Bytes written after which their write-back to disk is started, so the fsync before
#: publishing finds little left to write (a 256 MiB upload's fsync: 140 -> 4 ms here).
WRITEBACK_EVERY = 8 << 20
#: sync_file_range(2): start writing the range's dirty pages, without waiting for them.
SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def start_writeback() -> Callable[[int, int, int], object] | None:
    """sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) from the C library
    (Linux), or None where there is none: then the fsync alone does the writing."""
    import ctypes  # here: not every start-up needs it

    try:
        function = ctypes.CDLL(None).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return lambda fd, offset, length: function(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def disk_error(error: OSError) -> Exception:
    """DiskFull for a full volume or quota; the OSError itself otherwise."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull()
    return error


class TempFile(Writer):
    """A hidden temp file that one upload streams into."""

    def __init__(self, root: Path, key: str) -> None:
        self.key = key
        self.path = root / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        self._lock = threading.Lock()  # a write still in flight finishes before discard()
        self.written = 0
        self.written_back = 0  # bytes whose write-back has been started
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise disk_error(error) from error
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    async def write(self, data: bytes) -> None:
        await to_thread.run_sync(self._write, data)

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self.fd < 0:
                return  # discarded meanwhile
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError as error:
                raise disk_error(error) from error
            self.written += len(data)
            pending = self.written - self.written_back
            if pending >= WRITEBACK_EVERY and (writeback := start_writeback()) is not None:
                writeback(self.fd, self.written_back, pending)  # errors: the fsync tells
                self.written_back = self.written

    async def discard(self) -> None:
        await to_thread.run_sync(self.discard_now)

    def discard_now(self) -> None:
        """Remove the temp file (if still there) and release it. Blocks."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.close()

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def remove_stale_temp_files(root: Path) -> list[str]:
    """Delete temp files of uploads that died (their lock is free). Returns their names."""
    removed = []
    for entry in os.scandir(root):
        if not entry.name.startswith(TMP_PREFIX):
            continue
        try:
            # Non-blocking and no-follow: a FIFO or link planted under this name must not
            # hang start-up or reach outside the directory.
            fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # an upload in another process is still writing it
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.name)
        finally:
            os.close(fd)
    return removed
