"""The storage directory: the first backend, and the source of truth for what is published.

One file per package under its own name (``owner/repo/tag/name`` below the root for other
releases). Only regular files are packages: symlinks, FIFOs, sockets and entries that
cannot be read are skipped and logged, never served. Hidden names hold the rest (see
fs_upload.py and fs_meta.py). No state lives only in one process: a listing is
revalidated against its directory's mtime on every use.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from anyio import to_thread

from ..errors import AlreadyExists, NotFound, no_such_package
from ..logs import log_event
from ..names import name_problem
from ..package import Package
from .base import Listing, Reader, Storage, Writer
from .fs_files import READ_FLAGS, FileReader, fsync_dir, is_sidecar, remove_sidecar
from .fs_meta import MetaDir, hash_file, identity
from .fs_upload import TempFile, disk_error, remove_stale_temp_files

#: A directory mtime this close to the time a listing was built may hide a later change
#: made within the same timestamp tick, so such a listing is not trusted (as git does).
#: The window is 2 s where timestamps are whole seconds (some NFS servers), else 50 ms.
RACY_NS = 2_000_000_000
RACY_FINE_NS = 50_000_000
#: How long download counts in a cached listing may lag behind the counters on disk.
COUNTS_TTL_NS = 1_000_000_000
#: Below this much free space the storage is reported as full (not ready).
MIN_FREE_BYTES = 64 * 1024

logger = logging.getLogger("release_server.storage")


@dataclass(frozen=True, slots=True)
class _Cached:
    """A listing with what is needed to revalidate it and to attach download counts."""

    listing: Listing
    dir_mtime_ns: int
    built_ns: int
    counts_ns: int
    identities: dict[str, str]


class DirectoryStorage(Storage):
    """Packages in one directory tree, safely shared by processes and replicas."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta = MetaDir(root)
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._skipped: dict[str, str] = {}
        self._logged: set[tuple[str, str]] = set()

    def path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/")) if key else self.root

    # -- start-up and readiness ----------------------------------------------------------------

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.meta.prepare()
        TempFile(self.root, "").discard_now()

    def remove_stale_uploads(self) -> list[str]:
        return remove_stale_temp_files(self.root)

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

    def cached_listing(self, release: str = "") -> Listing | None:
        cached = self._cache.get(release)
        if cached is None or time.time_ns() - cached.counts_ns > COUNTS_TTL_NS:
            return None
        return cached.listing if self._unchanged(release, cached) else None

    async def listing(self, release: str = "") -> Listing:
        listing = self.cached_listing(release)
        if listing is None:
            listing = await to_thread.run_sync(self._listing, release)
        return listing

    def _listing(self, release: str) -> Listing:
        with self._lock:
            cached = self._cache.get(release)
            if cached is None or not self._unchanged(release, cached):
                cached = self._rebuild(release)
            elif time.time_ns() - cached.counts_ns > COUNTS_TTL_NS:
                cached = self._counted(cached.listing.packages, cached)
            self._cache[release] = cached
            return cached.listing

    def _unchanged(self, release: str, cached: _Cached) -> bool:
        """True if the directory is as it was when ``cached`` was built, and that was long
        enough after its last change that a later change cannot share its timestamp."""
        try:
            mtime = os.stat(self.path(release)).st_mtime_ns
        except OSError:
            return False
        racy = RACY_NS if mtime % 1_000_000_000 == 0 else RACY_FINE_NS
        return mtime == cached.dir_mtime_ns and cached.built_ns - mtime >= racy

    def _rebuild(self, release: str) -> _Cached:
        now = time.time_ns()
        directory = self.path(release)
        try:
            dir_mtime = os.stat(directory).st_mtime_ns
        except FileNotFoundError:
            if not release:
                raise  # the storage directory itself is gone: storage trouble, not empty
            return self._counted((), _Cached(Listing((), 0, ""), 0, now, 0, {}))
        files: dict[str, tuple[os.stat_result, str]] = {}
        for key in [k for k in self._skipped if k.rpartition("/")[0] == release]:
            del self._skipped[key]  # noted again below if still there
        for entry in os.scandir(directory):
            if entry.name.startswith(".") or name_problem(entry.name):
                continue
            key = f"{release}/{entry.name}" if release else entry.name
            with contextlib.suppress(NotFound):
                files[entry.name] = self._stat_and_digest(key, entry)
        packages = [
            Package(name, st.st_size, st.st_mtime_ns, digest)
            for name, (st, digest) in files.items()
            if not is_sidecar(directory, name, files)
        ]
        packages.sort(key=lambda p: (-p.mtime_ns, p.name))
        identities = {name: identity(st) for name, (st, _) in files.items()}
        return self._counted(
            packages, _Cached(Listing((), dir_mtime, ""), dir_mtime, now, 0, identities)
        )

    def _stat_and_digest(self, key: str, entry: os.DirEntry[str]) -> tuple[os.stat_result, str]:
        """The stat and digest of a listed entry; NotFound (and a note) if it is no package."""
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            raise no_such_package(key) from None
        if stat.S_ISDIR(st.st_mode):
            raise no_such_package(key)  # a repository or release directory, not a package
        if stat.S_ISLNK(st.st_mode):
            raise self._skip(key, "a symbolic link")
        digest = self.meta.known_digest(st)
        if digest is None:
            reader = self._open(key)  # skips and logs what is not a readable regular file
            try:
                if identity(os.fstat(reader.fd)) != identity(st):
                    raise no_such_package(
                        key
                    )  # replaced since it was listed: the next listing has it
                digest = reader.package.sha256
            finally:
                os.close(reader.fd)
        return st, digest

    def _skip(self, key: str, why: str) -> NotFound:
        """Note (and log, once) an entry that is not served; the NotFound to raise."""
        if (key, why) not in self._logged:
            self._logged.add((key, why))
            log_event(logger, "skipped an entry that is not a package", logging.WARNING,
                      name=key, reason=why)  # fmt: skip
        self._skipped[key] = why
        return no_such_package(key)

    def skipped_entries(self) -> dict[str, str]:
        return dict(self._skipped)

    def _counted(self, packages: tuple[Package, ...] | list[Package], cached: _Cached) -> _Cached:
        """``cached`` with the listing of ``packages`` and download counts read now."""
        counts = self.meta.download_counts()
        ids = cached.identities
        counted = tuple(replace(p, downloads=counts.get(ids[p.name], 0)) for p in packages)
        version = hashlib.sha1(
            repr([(p.name, p.size, p.mtime_ns, p.downloads) for p in counted]).encode()
        ).hexdigest()[:20]
        listing = Listing(counted, cached.dir_mtime_ns, version)
        return replace(cached, listing=listing, counts_ns=time.time_ns())

    # -- reading -------------------------------------------------------------------------------

    async def exists(self, key: str) -> bool:
        return await to_thread.run_sync(os.path.lexists, self.path(key))

    async def open(self, key: str) -> Reader:
        return await to_thread.run_sync(self._open, key)

    def _open(self, key: str) -> FileReader:
        """Open a package by descriptor (no links, no blocking on FIFOs), then hash it if
        its digest is not cached: hashing the descriptor, never the name, keeps the digest
        true to the bytes sent even if the name changes meanwhile."""
        try:
            fd = os.open(self.path(key), READ_FLAGS)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise no_such_package(key) from None
        except OSError as error:
            raise self._skip(key, f"cannot be opened: {error.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(key)  # turned into a note below
            digest = self.meta.known_digest(st)
            if digest is None:
                digest = hash_file(fd)
                self.meta.remember_digest(st, digest)
                log_event(logger, "hashed a file added by hand", size=st.st_size, sha256=digest)
        except OSError as error:
            os.close(fd)
            raise self._skip(key, f"cannot be read: {error.strerror}") from None
        except NotFound:
            os.close(fd)
            raise self._skip(key, "not a regular file (a FIFO, socket or device)") from None
        name = key.rsplit("/", 1)[-1]
        return FileReader(fd, Package(name, st.st_size, st.st_mtime_ns, digest), identity(st))

    async def count_download(self, key: str, version: str) -> None:
        await to_thread.run_sync(self.meta.count_download, version)

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
            path.parent.mkdir(parents=True, exist_ok=True)
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
        except AlreadyExists:
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
            remove_sidecar(path)
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
        remove_sidecar(path)
        return Package(path.name, st.st_size, st.st_mtime_ns, digest)
