"""The ``.meta`` directory of a storage directory: cached digests and download counters.

Both are keyed by a file version's identity (inode, size, mtime), so an entry can never be
mistaken for a newer version of the same name, and both are plain files, so every process
sharing the directory sees the same values.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path

META_DIR = ".meta"
CHUNK_SIZE = 1 << 20
HEX64 = re.compile(rb"^[0-9a-f]{64}\s*$")


def identity(st: os.stat_result) -> str:
    """A key that changes whenever the file behind a name changes."""
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


def hash_file(fd: int) -> str:
    """sha256 of an open file, read in large chunks (hashlib releases the GIL)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, CHUNK_SIZE, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


#: How long one scan of the download counters is reused (they may lag this much more).
COUNTS_REUSE_NS = 250_000_000


class MetaDir:
    """Digests (``<identity>.sha256``) and download counts (``<identity>.downloads``, one
    byte per completed download, appended atomically across processes). Methods block,
    except ``count_download``."""

    def __init__(self, root: Path) -> None:
        self.path = root / META_DIR
        self._digests: dict[str, str] = {}
        self._counts: tuple[int, dict[str, int]] = (0, {})
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()

    def prepare(self) -> None:
        self.path.mkdir(exist_ok=True)

    def known_digest(self, st: os.stat_result) -> str | None:
        """The digest of this file version if memory or the cache on disk knows it."""
        key = identity(st)
        digest = self._digests.get(key)
        if digest is None:
            try:
                text = (self.path / f"{key}.sha256").read_bytes()
            except OSError:
                return None
            if not HEX64.match(text):
                return None
            digest = self._digests[key] = text[:64].decode()
        return digest

    def remember_digest(self, st: os.stat_result, digest: str) -> None:
        key = identity(st)
        self._digests[key] = digest
        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash
            (self.path / f"{key}.sha256").write_text(digest)

    def forget(self, st: os.stat_result) -> None:
        """Drop everything known about one file version (it was replaced or deleted)."""
        key = identity(st)
        self._digests.pop(key, None)
        with self._lock:
            self._pending.pop(key, None)
        for suffix in (".sha256", ".downloads"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path / f"{key}{suffix}")

    def download_counts(self) -> dict[str, int]:
        """Completed downloads per file identity: the sizes of the ``.downloads`` files.
        One scan serves every listing refreshed within ``COUNTS_REUSE_NS`` (a repository
        of 1,000 releases refreshes 1,000 listings, and each scan reads every counter)."""
        scanned_ns, counts = self._counts
        now = time.monotonic_ns()
        if now - scanned_ns < COUNTS_REUSE_NS:
            return counts
        counts = {}
        with contextlib.suppress(OSError), os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.endswith(".downloads"):
                    with contextlib.suppress(FileNotFoundError):
                        counts[entry.name.removesuffix(".downloads")] = entry.stat().st_size
        self._counts = (now, counts)
        return counts

    def count_download(self, key: str) -> None:
        """Note one completed download of the file version ``key`` (an identity); it is
        written by the next ``write_counts``. Does not block."""
        with self._lock:
            self._pending[key] += 1

    def write_counts(self) -> None:
        """Append the downloads noted since the last call to their counters."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        for key, count in pending.items():
            with contextlib.suppress(OSError):
                fd = os.open(
                    self.path / f"{key}.downloads", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
                )
                try:
                    os.write(fd, b"." * count)
                finally:
                    os.close(fd)
