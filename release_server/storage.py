"""The storage directory: the source of truth for what is published.

One file per package under its own name. Everything else lives under hidden names:
``.tmp-*`` files for uploads in flight, and ``.meta/`` for cached digests and download
counts, keyed by the file's identity (inode, size, mtime) so a cache entry can never be
mistaken for a newer version of the same name. No state lives only in one process: the
listing cache is revalidated against the directory's mtime on every use.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .logs import log_event
from .names import name_problem
from .package import Package

META_DIR = ".meta"
TMP_PREFIX = ".tmp-"
CHUNK_SIZE = 1 << 20
SIDECAR_SUFFIX = ".sha256"
#: A directory mtime this close to the time a listing was built may hide a later change
#: made within the same timestamp tick, so such a listing is not trusted (as git does).
#: The window is 2 s where timestamps are whole seconds (some NFS servers), else 50 ms
#: (several kernel clock ticks).
RACY_NS = 2_000_000_000
RACY_FINE_NS = 50_000_000
#: How long download counts in a cached listing may lag behind the counters on disk.
COUNTS_TTL_NS = 1_000_000_000
#: Below this much free space the storage is reported as full (not ready).
MIN_FREE_BYTES = 64 * 1024

_HEX64 = re.compile(rb"^[0-9a-f]{64}\s*$")
logger = logging.getLogger("release_server.storage")


class StorageError(Exception):
    """Base of the errors the routes turn into HTTP answers."""


class NotFound(StorageError):
    pass


class AlreadyExists(StorageError):
    pass


class TooLarge(StorageError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the limit of {limit} bytes")
        self.limit = limit


class ChecksumMismatch(StorageError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch: expected {expected}, received {actual}")
        self.expected = expected
        self.actual = actual


class DiskFull(StorageError):
    pass


def _identity(st: os.stat_result) -> str:
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Listing:
    """A snapshot of the directory: packages newest first."""

    packages: tuple[Package, ...]
    dir_mtime_ns: int
    built_ns: int
    counts_ns: int
    #: Changes whenever anything shown in a document changes; used for ETags and caches.
    version: str


class Upload:
    """A hidden temp file in the storage directory that an upload streams into.

    It hashes as bytes arrive and enforces the size limit; it holds an exclusive lock so
    start-up cleanup in another process can tell it is alive. Methods block: call them
    from a worker thread.
    """

    def __init__(self, root: Path, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.size = 0
        self.path = root / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        self._hash = hashlib.sha256()
        self._lock = threading.Lock()  # a write still in flight finishes before discard()
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as error:
            raise _disk_error(error) from error
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def write(self, data: bytes) -> None:
        with self._lock:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self.fd < 0:
            return  # discarded meanwhile
        self.size += len(data)
        if self.limit and self.size > self.limit:
            raise TooLarge(self.limit)
        self._hash.update(data)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as error:
            raise _disk_error(error) from error

    def finish(self, expected_sha256: str | None) -> str:
        """Make the bytes durable and return their digest; raise on a checksum mismatch."""
        digest = self._hash.hexdigest()
        if expected_sha256 and expected_sha256.lower() != digest:
            raise ChecksumMismatch(expected_sha256.lower(), digest)
        try:
            os.fsync(self.fd)
        except OSError as error:
            raise _disk_error(error) from error
        return digest

    def discard(self) -> None:
        """Remove the temp file (if still there) and release it. Safe to call twice."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.close()

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def _disk_error(error: OSError) -> Exception:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull("the storage volume is full")
    return error


class Storage:
    """List, open, save and delete packages in one directory, safely across processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta = root / META_DIR
        self._lock = threading.Lock()
        self._digests: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._listing: Listing | None = None

    # -- start-up and readiness ----------------------------------------------------------------

    def prepare(self) -> None:
        """Create the directories and prove a file can be written; raise OSError if not."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.meta.mkdir(exist_ok=True)
        Upload(self.root, "", 0).discard()

    def problem(self) -> str | None:
        """Why storage is not ready (unreadable, unwritable or full), or None when it is.

        Checked without writing, so readiness probes do not disturb the listing cache."""
        try:
            os.listdir(self.root)
            if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
                return f"storage {str(self.root)!r} is not writable by this process"
            space = os.statvfs(self.root)
        except OSError as error:
            return f"storage {str(self.root)!r} is not usable: {error.strerror}"
        if space.f_flag & os.ST_RDONLY:
            return f"storage {str(self.root)!r} is on a read-only filesystem"
        if space.f_bavail * space.f_frsize < MIN_FREE_BYTES:
            return f"storage {str(self.root)!r} is full: uploads answer 507 until space is freed"
        return None

    def remove_stale_temp_files(self) -> list[str]:
        """Delete temp files of uploads that died (their lock is free). Returns their names."""
        removed = []
        for entry in os.scandir(self.root):
            if not entry.name.startswith(TMP_PREFIX):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # an upload in another process is still writing it
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
            finally:
                os.close(fd)
        return removed

    # -- listing -------------------------------------------------------------------------------

    def cached_listing(self) -> Listing | None:
        """The cached listing if the directory has not changed and its download counts
        are fresh; None when listing() has work to do."""
        listing = self._listing
        if listing is None or time.time_ns() - listing.counts_ns > COUNTS_TTL_NS:
            return None
        return listing if self._unchanged(listing) else None

    def listing(self) -> Listing:
        """The current listing: cached, with counts refreshed, or rebuilt. Blocks."""
        with self._lock:
            listing = self._listing
            if listing is None or not self._unchanged(listing):
                return self._rebuild()
            if time.time_ns() - listing.counts_ns > COUNTS_TTL_NS:
                self._listing = self._counted(
                    listing.packages, listing.dir_mtime_ns, listing.built_ns
                )
            return self._listing

    def _unchanged(self, listing: Listing) -> bool:
        """True if the directory is as it was when ``listing`` was built, and that was long
        enough after its last change that a later change cannot share its timestamp."""
        try:
            mtime = os.stat(self.root).st_mtime_ns
        except OSError:
            return False
        racy = RACY_NS if mtime % 1_000_000_000 == 0 else RACY_FINE_NS
        return mtime == listing.dir_mtime_ns and listing.built_ns - mtime >= racy

    def _rebuild(self) -> Listing:
        now = time.time_ns()
        dir_mtime = os.stat(self.root).st_mtime_ns
        files: dict[str, os.stat_result] = {}
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") or name_problem(entry.name):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                files[entry.name] = st
        digests: dict[str, str] = {}
        for name, st in files.items():
            with contextlib.suppress(NotFound):
                digests[_identity(st)] = self._digest(name, st)
        self._digests = digests
        packages = [
            Package(name, st.st_size, st.st_mtime_ns, digests[_identity(st)])
            for name, st in files.items()
            if _identity(st) in digests and not self._is_sidecar(name, files, digests)
        ]
        packages.sort(key=lambda p: (-p.mtime_ns, p.name))
        self._keys = {name: _identity(st) for name, st in files.items()}
        self._listing = self._counted(packages, dir_mtime, now)
        return self._listing

    def _counted(self, packages: Sequence[Package], dir_mtime: int, built_ns: int) -> Listing:
        """The listing of ``packages`` with download counts read now from ``.meta``."""
        counts = self._download_counts()
        counted = tuple(replace(p, downloads=counts.get(self._keys[p.name], 0)) for p in packages)
        version = hashlib.sha1(
            repr([(p.name, p.size, p.mtime_ns, p.downloads) for p in counted]).encode()
        ).hexdigest()[:20]
        return Listing(counted, dir_mtime, built_ns, time.time_ns(), version)

    def _is_sidecar(
        self, name: str, files: dict[str, os.stat_result], digests: dict[str, str]
    ) -> bool:
        """A legacy ``<name>.sha256`` holding exactly the digest of ``<name>``."""
        if not name.endswith(SIDECAR_SUFFIX) or files[name].st_size not in (64, 65):
            return False
        target = files.get(name.removesuffix(SIDECAR_SUFFIX))
        if target is None or _identity(target) not in digests:
            return False
        try:
            content = (self.root / name).read_bytes()
        except OSError:
            return False
        return bool(_HEX64.match(content)) and content[:64].decode() == digests[_identity(target)]

    # -- digests and counters ------------------------------------------------------------------

    def known_digest(self, st: os.stat_result) -> str | None:
        """The digest of this file version if memory or the meta cache knows it."""
        key = _identity(st)
        digest = self._digests.get(key)
        if digest is None:
            try:
                text = (self.meta / f"{key}.sha256").read_bytes()
            except OSError:
                return None
            if not _HEX64.match(text):
                return None
            digest = self._digests[key] = text[:64].decode()
        return digest

    def _digest(self, name: str, st: os.stat_result) -> str:
        digest = self.known_digest(st)
        if digest is None:
            fd, opened = self.open(name)
            try:
                if _identity(opened) != _identity(st):
                    raise NotFound(name)  # replaced since it was listed: the next listing has it
                digest = self.digest(fd, opened)
            finally:
                os.close(fd)
        return digest

    def digest(self, fd: int, st: os.stat_result) -> str:
        """The digest of the open file ``fd`` (whose fstat is ``st``): cached, or hashed
        now and cached under its identity. Hashing the descriptor, never the name, keeps
        the digest true to the bytes sent even if the name changes meanwhile. Blocks."""
        digest = self.known_digest(st)
        if digest is None:
            digest = hash_file(fd)
            self._write_digest(st, digest)
            log_event(logger, "hashed a file added by hand", size=st.st_size, sha256=digest)
        return digest

    def _write_digest(self, st: os.stat_result, digest: str) -> None:
        key = _identity(st)
        self._digests[key] = digest
        with contextlib.suppress(OSError):  # a read-only cache only costs a re-hash
            (self.meta / f"{key}.sha256").write_text(digest)

    def _download_counts(self) -> dict[str, int]:
        """Completed downloads per file identity: the sizes of the ``.downloads`` files."""
        counts = {}
        with contextlib.suppress(OSError), os.scandir(self.meta) as entries:
            for entry in entries:
                if entry.name.endswith(".downloads"):
                    with contextlib.suppress(FileNotFoundError):
                        counts[entry.name.removesuffix(".downloads")] = entry.stat().st_size
        return counts

    def count_download(self, st: os.stat_result) -> None:
        """Record one completed download: one byte appended (atomic across processes)."""
        with contextlib.suppress(OSError):
            fd = os.open(
                self.meta / f"{_identity(st)}.downloads",
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o644,
            )
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)

    def _forget(self, st: os.stat_result) -> None:
        key = _identity(st)
        self._digests.pop(key, None)
        for suffix in (".sha256", ".downloads"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.meta / f"{key}{suffix}")

    def _remove_sidecar(self, name: str) -> None:
        sidecar = self.root / f"{name}{SIDECAR_SUFFIX}"
        with contextlib.suppress(OSError):
            if sidecar.stat().st_size in (64, 65) and _HEX64.match(sidecar.read_bytes()):
                sidecar.unlink()

    # -- reading -------------------------------------------------------------------------------

    def open(self, name: str) -> tuple[int, os.stat_result]:
        """Open a package for reading; the descriptor keeps this version readable even if
        the name is replaced or deleted meanwhile. Raise NotFound."""
        try:
            fd = os.open(self.root / name, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(name) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise NotFound(name)
        return fd, st

    # -- writing -------------------------------------------------------------------------------

    def begin_upload(self, name: str, limit: int) -> Upload:
        """Start receiving a package called ``name`` (published later by publish())."""
        return Upload(self.root, name, limit)

    def publish(
        self, upload: Upload, name: str, digest: str, overwrite: bool
    ) -> tuple[Package, bool]:
        """Move a finished upload into place under ``name``. Returns (package, replaced).

        Without ``overwrite`` a hard link is made, which fails if the name exists, so of
        two racing uploads exactly one wins. With it, an atomic rename replaces the old
        version; readers that opened it keep reading the old bytes.
        """
        path = self.root / name
        st = os.fstat(upload.fd)
        self._write_digest(st, digest)
        old: os.stat_result | None = None
        try:
            if overwrite:
                with contextlib.suppress(FileNotFoundError):
                    old = os.stat(path)
                if old is not None and not stat.S_ISREG(old.st_mode):
                    raise AlreadyExists(name)
                os.replace(upload.path, path)
            else:
                os.link(upload.path, path)
                os.unlink(upload.path)
        except FileExistsError:
            self._forget(st)
            raise AlreadyExists(name) from None
        except AlreadyExists:
            self._forget(st)
            raise
        except OSError as error:
            self._forget(st)
            raise _disk_error(error) from error
        finally:
            upload.close()
        _fsync_dir(self.root)
        if old is not None:
            self._forget(old)
            self._remove_sidecar(name)
        return Package(name, st.st_size, st.st_mtime_ns, digest), old is not None

    def delete(self, name: str) -> Package:
        """Remove a package and its metadata. Raise NotFound."""
        path = self.root / name
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(name)
            digest = self.known_digest(st) or ""
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(name) from None
        self._forget(st)
        self._remove_sidecar(name)
        return Package(name, st.st_size, st.st_mtime_ns, digest)
