"""The storage directory: the first backend, and the source of truth for what is published.

One file per package under its own name (``owner/repo/tag/name`` below the root for other
releases). Only regular files are packages: symlinks, FIFOs, sockets and entries that
cannot be read are skipped and logged, never served. Hidden names hold the rest (see
fs_upload.py and fs_meta.py). No state lives only in one process: a listing is
revalidated against its directory's mtime on every use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
import uuid
from pathlib import Path

from anyio import to_thread

from ..errors import AlreadyExists, Conflict, NotFound, level_taken, no_such_package
from ..logs import log_event
from ..names import name_problem
from ..package import Package
from .base import Listing, Reader, ReleaseEntry, Storage, Writer
from .flush import DelayedFlush
from .fs_files import (
    READ_FLAGS,
    SEND_DIR,
    FileReader,
    fsync_dir,
    remove_send_links,
    remove_sidecar,
    remove_stale_send_links,
)
from .fs_listing import Listings, Skipped, settled
from .fs_meta import MetaDir, hash_file, identity
from .fs_upload import TempFile, disk_error, remove_stale_temp_files

#: The metadata of a release below the root, beside its assets (a hidden name).
META_FILE = ".release.json"
#: Below this much free space the storage is reported as full (not ready).
MIN_FREE_BYTES = 64 * 1024

logger = logging.getLogger("release_server.storage")


def make_levels(directory: Path, key: str) -> None:
    """Create the owner/repo/tag levels of ``key``; Conflict when one is a file."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise level_taken(key) from None


class DirectoryStorage(Storage):
    """Packages in one directory tree, safely shared by processes and replicas."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta = MetaDir(root)
        self.counting = DelayedFlush(self.meta.write_counts)
        self.skipped = Skipped()
        self.listings = Listings(self.path, self.meta, self.skipped, self._open)
        #: Writes this process made below each repository (part of its stamp).
        self._writes: dict[str, int] = {}
        #: Refreshes of download counts running in the background, by release.
        self._counting: dict[str, asyncio.Future[Listing]] = {}
        #: release -> (identity of its metadata file, when read, its bytes).
        self._metas: dict[str, tuple[str, int, bytes]] = {}

    def path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/")) if key else self.root

    # -- start-up and readiness ----------------------------------------------------------------

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.meta.prepare()
        TempFile(self.root, "").discard_now()

    def remove_stale_uploads(self) -> list[str]:
        return remove_stale_temp_files(self.root) + remove_stale_send_links(self.root)

    async def problem(self) -> str | None:
        return await to_thread.run_sync(self._problem)

    def _problem(self) -> str | None:
        """Checked without writing, so readiness probes do not disturb the listing cache."""
        where = f"storage {str(self.root)!r}"
        try:
            os.listdir(self.root)
            if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
                return f"{where} is not writable by this process"
            space = os.statvfs(self.root)
        except OSError as error:
            return f"{where} is not usable: {error.strerror}"
        if space.f_flag & os.ST_RDONLY:
            return f"{where} is on a read-only filesystem"
        if space.f_bavail * space.f_frsize < MIN_FREE_BYTES:
            return f"{where} is full: uploads answer 507 until space is freed"
        return None

    # -- listing -------------------------------------------------------------------------------

    async def listing(self, release: str = "") -> Listing:
        """Rebuilt before answering when the directory changed (a write shows at once);
        download counts are refreshed in the background, so no request waits for them."""
        listing = self.listings.cached(release)
        if listing is None:
            return await to_thread.run_sync(self.listings.get, release)
        if self.listings.counts_due(release) and release not in self._counting:
            task = asyncio.ensure_future(to_thread.run_sync(self.listings.get, release))
            self._counting[release] = task
            task.add_done_callback(lambda done: self._recounted(release, done))
        return listing

    def _recounted(self, release: str, done: asyncio.Future[Listing]) -> None:
        del self._counting[release]
        if not done.cancelled() and done.exception() is not None:  # the next request says
            log_event(logger, "could not refresh download counts", logging.WARNING,
                      release=release, reason=str(done.exception()))  # fmt: skip

    def skipped_entries(self) -> dict[str, str]:
        return dict(self.skipped.entries)

    # -- reading -------------------------------------------------------------------------------

    async def exists(self, key: str) -> bool:
        return await to_thread.run_sync(os.path.lexists, self.path(key))

    async def open(self, key: str) -> Reader:
        """Opened on the event loop when the digest is known (an open and an fstat cost
        less than the hop to a worker thread, and listings stat on the loop too); a file
        that must be hashed first is opened in a worker thread."""
        reader = self._open_file(key, may_hash=False)
        return reader if reader is not None else await to_thread.run_sync(self._open, key)

    def _open(self, key: str) -> FileReader:
        reader = self._open_file(key, may_hash=True)
        assert reader is not None
        return reader

    def _open_file(self, key: str, may_hash: bool) -> FileReader | None:
        """Open a package by descriptor (no links, no blocking on FIFOs), then hash it if
        its digest is not cached: hashing the descriptor, never the name, keeps the digest
        true to the bytes sent even if the name changes meanwhile. None when it would have
        to hash and may not."""
        try:
            fd = os.open(self.path(key), READ_FLAGS)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise no_such_package(key) from None
        except OSError as error:
            raise self.skipped.note(key, f"cannot be opened: {error.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(key)  # turned into a note below
            digest = self.meta.known_digest(st)
            if digest is None and not may_hash:
                os.close(fd)
                return None
            if digest is None:
                digest = hash_file(fd)
                self.meta.remember_digest(st, digest)
                log_event(logger, "hashed a file added by hand", size=st.st_size, sha256=digest)
        except OSError as error:
            os.close(fd)
            raise self.skipped.note(key, f"cannot be read: {error.strerror}") from None
        except NotFound:
            os.close(fd)
            raise self.skipped.note(key, "not a regular file (a FIFO, socket or device)") from None
        name = key.rsplit("/", 1)[-1]
        package = Package(name, st.st_size, st.st_mtime_ns, digest)
        return FileReader(fd, package, identity(st), links=self.root / SEND_DIR)

    async def close(self) -> None:
        await self.counting.now()

    async def count_download(self, key: str, version: str) -> None:
        self.meta.count_download(version)
        self.counting.soon()

    # -- writing -------------------------------------------------------------------------------

    async def begin(self, key: str) -> Writer:
        return await to_thread.run_sync(TempFile, self.root, key)

    async def publish(self, writer: Writer, sha256: str, overwrite: bool) -> tuple[Package, bool]:
        assert isinstance(writer, TempFile)
        return await to_thread.run_sync(self._publish, writer, sha256, overwrite)

    def _publish(self, upload: TempFile, digest: str, overwrite: bool) -> tuple[Package, bool]:
        """Without ``overwrite`` a hard link is made, which fails if the name exists, so of
        two racing uploads exactly one wins. With it, an atomic rename replaces the old
        version; readers that opened it keep reading the old bytes. The mtime (the upload
        time) is stamped just before, so upload times follow the order of publishing."""
        path = self.path(upload.key)
        try:
            os.fsync(upload.fd)
            os.utime(upload.fd)
            st = os.fstat(upload.fd)
        except OSError as error:
            raise disk_error(error) from error
        self.meta.remember_digest(st, digest)
        old: os.stat_result | None = None
        try:
            make_levels(path.parent, upload.key)
            if overwrite:
                with contextlib.suppress(FileNotFoundError):
                    old = os.lstat(path)
                if old is not None and not stat.S_ISREG(old.st_mode):
                    raise AlreadyExists(upload.key)
                os.replace(upload.path, path)
            else:
                os.link(upload.path, path)
                os.unlink(upload.path)
        except FileExistsError:
            self.meta.forget(st)
            raise AlreadyExists(upload.key) from None
        except Conflict:
            self.meta.forget(st)
            raise
        except OSError as error:
            self.meta.forget(st)
            raise disk_error(error) from error
        finally:
            upload.close()
        fsync_dir(path.parent)
        if old is not None:
            self.meta.forget(old)
            remove_send_links(self.root, identity(old))
            remove_sidecar(path)
        self._touch(upload.key)
        name = path.name
        return Package(name, st.st_size, st.st_mtime_ns, digest), old is not None

    async def delete(self, key: str) -> Package:
        return await to_thread.run_sync(self._delete, key)

    def _delete(self, key: str) -> Package:
        path = self.path(key)
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                raise no_such_package(key)
            digest = self.meta.known_digest(st) or ""
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            raise no_such_package(key) from None
        self.meta.forget(st)
        remove_send_links(self.root, identity(st))
        remove_sidecar(path)
        self._touch(key)
        return Package(path.name, st.st_size, st.st_mtime_ns, digest)

    # -- releases below the root ---------------------------------------------------------------

    async def children(self, prefix: str) -> list[str]:
        return await to_thread.run_sync(self._children, prefix)

    def _children(self, prefix: str) -> list[str]:
        try:
            entries = list(os.scandir(self.path(prefix)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            entry.name
            for entry in entries
            if not name_problem(entry.name) and entry.is_dir(follow_symlinks=False)
        )

    async def stamp(self, repository: str) -> int:
        """The repository directory's mtime (a stat: no thread needed), combined with this
        process's own count of writes below it: on a file system whose timestamps are
        coarser than two writes, this process still sees each of its own at once."""
        try:
            mtime = os.stat(self.path(repository)).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return 0
        return hash((mtime, self._writes.get(repository, 0))) or 1

    def _touch(self, key: str) -> None:
        """Set the mtime of the repository ``key`` lies in to now, to the nanosecond (the
        kernel's own stamp may be a tick coarse), after a write below it: its stamp."""
        parts = key.split("/")
        if len(parts) >= 3:
            repository = "/".join(parts[:2])
            self._writes[repository] = self._writes.get(repository, 0) + 1
            now = time.time_ns()
            with contextlib.suppress(OSError):
                os.utime(self.path(repository), ns=(now, now))

    async def read_meta(self, release: str) -> bytes | None:
        return await to_thread.run_sync(self._read_meta, release)

    def _read_meta(self, release: str) -> bytes | None:
        """The metadata file, read again only when a stat says it changed (a rename or an
        edit in place changes its identity; the racy-timestamp rule covers an edit within
        the same timestamp tick as the last read)."""
        path = self.path(release) / META_FILE
        try:
            st = os.stat(path)
            known = self._metas.get(release)
            if known is not None and known[0] == identity(st) and settled(st.st_mtime_ns, known[1]):
                return known[2]
            read_ns = time.time_ns()
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            self._metas.pop(release, None)
            return None
        self._metas[release] = (identity(st), read_ns, data)
        return data

    async def repository_releases(self, repository: str) -> list[ReleaseEntry]:
        return await to_thread.run_sync(self._repository_releases, repository)

    def _repository_releases(self, repository: str) -> list[ReleaseEntry]:
        """In one worker thread: per release a stat of its directory and of its metadata
        file; only what changed is read again, and the download counters are scanned once
        (fs_meta.py) for the whole repository."""
        return [
            ReleaseEntry(tag, self.listings.get(f"{repository}/{tag}"),
                         self._read_meta(f"{repository}/{tag}"))
            for tag in self._children(repository)
        ]  # fmt: skip

    async def write_meta(self, release: str, data: bytes) -> None:
        await to_thread.run_sync(self._write_meta, release, data)

    def _write_meta(self, release: str, data: bytes) -> None:
        directory = self.path(release)
        make_levels(directory, release)
        temporary = directory / f"{META_FILE}.{uuid.uuid4().hex}"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, directory / META_FILE)
            self._touch(release)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise disk_error(error) from error
        fsync_dir(directory)

    async def remove_release(self, release: str) -> None:
        await to_thread.run_sync(self._remove_release, release)

    def _remove_release(self, release: str) -> None:
        directory = self.path(release)
        self._metas.pop(release, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / META_FILE)
        for level in (directory, directory.parent, directory.parent.parent):
            try:
                level.rmdir()  # only when empty: uploads in flight or new assets keep it
            except OSError:
                break
        self._touch(release)
