"""Listings of a storage directory: built from the directory, cached, and revalidated
against the directory's mtime on every use, so no process ever serves a stale one."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import NotFound, no_such_package
from ..logs import log_event
from ..names import name_problem
from ..package import Package
from .base import Listing
from .fs_files import SIDECAR_SUFFIX, FileReader, is_sidecar
from .fs_meta import MetaDir, identity

#: A directory mtime this close to the time a listing was built may hide a later change
#: made within the same timestamp tick, so such a listing is not trusted (as git does).
#: The window is 2 s where timestamps are whole seconds (some NFS servers), else 50 ms.
RACY_NS = 2_000_000_000
RACY_FINE_NS = 50_000_000
#: How long download counts in a cached listing may lag behind the counters on disk.
COUNTS_TTL_NS = 1_000_000_000
#: Names known to be valid, kept up to this many.
MAX_VALID_NAMES = 100_000

logger = logging.getLogger("release_server.storage")


def settled(mtime_ns: int, read_ns: int) -> bool:
    """Whether what was read at ``read_ns`` of something last changed at ``mtime_ns`` is
    known to include that change: a later change cannot share its timestamp."""
    racy = RACY_NS if mtime_ns % 1_000_000_000 == 0 else RACY_FINE_NS
    return read_ns - mtime_ns >= racy


@dataclass(frozen=True, slots=True)
class _File:
    """One listed file as it was read: what identifies its version, and its package."""

    signature: tuple[int, int, int]  # inode, size, mtime: what ``identity`` is made of
    identity: str
    package: Package


@dataclass(frozen=True, slots=True)
class _Cached:
    """A listing with what is needed to revalidate it and to attach download counts."""

    listing: Listing
    dir_mtime_ns: int
    built_ns: int
    counts_ns: int
    #: Every file read, by name (sidecars included), so a rebuild reads only what changed.
    files: dict[str, _File]
    #: The download count of each package of ``listing`` (None: not counted yet).
    counts: tuple[int, ...] | None = None


class Skipped:
    """Entries that are not packages (symlinks, FIFOs, unreadable files), each with why;
    each is logged once."""

    def __init__(self) -> None:
        self.entries: dict[str, str] = {}
        self._logged: set[tuple[str, str]] = set()

    def note(self, key: str, why: str) -> NotFound:
        """Note (and log, once) an entry that is not served; the NotFound to raise."""
        if (key, why) not in self._logged:
            self._logged.add((key, why))
            log_event(logger, "skipped an entry that is not a package", logging.WARNING,
                      name=key, reason=why)  # fmt: skip
        self.entries[key] = why
        return no_such_package(key)


class Listings:
    """The cached listing of each release directory below ``root``."""

    def __init__(
        self,
        path: Callable[[str], Path],
        meta: MetaDir,
        skipped: Skipped,
        open_file: Callable[[str], FileReader],
    ) -> None:
        self.path = path
        self.meta = meta
        self.skipped = skipped
        self.open_file = open_file
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._valid_names: set[str] = set()

    def cached(self, release: str) -> Listing | None:
        """The listing if its directory is unchanged (its download counts may be older
        than COUNTS_TTL_NS: see ``counts_due``); None when it must be rebuilt."""
        cached = self._cache.get(release)
        if cached is None:
            return None
        return cached.listing if self._unchanged(release, cached) else None

    def counts_due(self, release: str) -> bool:
        """Whether the cached listing's download counts are older than COUNTS_TTL_NS."""
        cached = self._cache.get(release)
        return cached is not None and time.time_ns() - cached.counts_ns > COUNTS_TTL_NS

    def get(self, release: str) -> Listing:
        """The current listing: cached, with counts refreshed, or rebuilt. Blocks."""
        with self._lock:
            cached = self._cache.get(release)
            if cached is None or not self._unchanged(release, cached):
                cached = self._rebuild(release)
            elif time.time_ns() - cached.counts_ns > COUNTS_TTL_NS:
                cached = self._counted(cached.listing.packages, cached)
            self._cache[release] = cached
            return cached.listing

    def _valid(self, name: str) -> bool:
        """``name_problem`` is None, remembered: checking each character of 1,000 names
        was a third of a listing's rebuild (each upload rebuilds it)."""
        if name in self._valid_names:
            return True
        if name_problem(name):
            return False
        if len(self._valid_names) >= MAX_VALID_NAMES:
            self._valid_names.clear()
        self._valid_names.add(name)
        return True

    def _unchanged(self, release: str, cached: _Cached) -> bool:
        """True if the directory is as it was when ``cached`` was built, and that was long
        enough after its last change that a later change cannot share its timestamp."""
        try:
            mtime = os.stat(self.path(release)).st_mtime_ns
        except OSError:
            return False
        return mtime == cached.dir_mtime_ns and settled(mtime, cached.built_ns)

    def _rebuild(self, release: str) -> _Cached:
        """Read the directory again; a file whose inode, size and mtime are unchanged keeps
        what was read of it (during uploads the directory changes several times a second,
        and with 1,000 packages a full rebuild cost 8 ms of CPU each time)."""
        now = time.time_ns()
        directory = self.path(release)
        try:
            dir_mtime = os.stat(directory).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            if not release:
                raise  # the storage directory itself is gone: storage trouble, not empty
            return self._counted((), _Cached(Listing((), 0, ""), 0, now, 0, {}))
        previous = self._cache.get(release)
        known = previous.files if previous is not None else {}
        files: dict[str, _File] = {}
        for key in [k for k in self.skipped.entries if k.rpartition("/")[0] == release]:
            del self.skipped.entries[key]  # noted again below if still there
        for entry in os.scandir(directory):
            name = entry.name
            if name[:1] == "." or not self._valid(name):
                continue
            try:
                files[name] = self._read(release, entry, known.get(name))
            except NotFound:
                continue
        packages = [file.package for file in files.values()]
        sidecars = [name for name in files if name.endswith(SIDECAR_SUFFIX)]
        if sidecars:
            hidden = {
                name
                for name in sidecars
                if is_sidecar(directory, files[name].package, self._package(files, name))
            }
            packages = [p for p in packages if p.name not in hidden]
        packages.sort(key=lambda p: (-p.mtime_ns, p.name))
        return self._counted(
            packages, _Cached(Listing((), dir_mtime, ""), dir_mtime, now, 0, files)
        )

    @staticmethod
    def _package(files: dict[str, _File], sidecar: str) -> Package | None:
        """The package a sidecar's name points to, if it was listed."""
        target = files.get(sidecar.removesuffix(SIDECAR_SUFFIX))
        return target.package if target is not None else None

    def _read(self, release: str, entry: os.DirEntry[str], known: _File | None) -> _File:
        """What is listed of an entry (``known`` if the file is unchanged); NotFound (and a
        note) if it is no package."""
        key = f"{release}/{entry.name}" if release else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            raise no_such_package(key) from None
        if stat.S_ISDIR(st.st_mode):
            raise no_such_package(key)  # a repository or release directory, not a package
        if stat.S_ISLNK(st.st_mode):
            raise self.skipped.note(key, "a symbolic link")
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if known is not None and known.signature == signature:
            return known
        digest = self.meta.known_digest(st)
        if digest is None:
            reader = self.open_file(key)  # skips and logs what is not a readable regular file
            try:
                if identity(os.fstat(reader.fd)) != identity(st):
                    # replaced since it was listed: the next listing has it
                    raise no_such_package(key)
                digest = reader.package.sha256
            finally:
                os.close(reader.fd)
        package = Package(entry.name, st.st_size, st.st_mtime_ns, digest)
        return _File(signature, identity(st), package)

    def _counted(self, packages: tuple[Package, ...] | list[Package], cached: _Cached) -> _Cached:
        """``cached`` with the listing of ``packages`` and download counts read now; the
        same listing (and version) when no count changed, so caches of documents that show
        it stay valid."""
        counts = self.meta.download_counts()
        files = cached.files
        seen = tuple(counts.get(files[p.name].identity, 0) for p in packages)
        if seen == cached.counts:
            return replace(cached, counts_ns=time.time_ns())
        counted = tuple(  # not dataclasses.replace: that costs 4 ms per 1,000 packages
            p if p.downloads == n else Package(p.name, p.size, p.mtime_ns, p.sha256, n)
            for p, n in zip(packages, seen, strict=True)
        )
        version = hashlib.sha1(
            repr([(p.name, p.size, p.mtime_ns, p.downloads) for p in counted]).encode()
        ).hexdigest()[:20]
        listing = Listing(counted, cached.dir_mtime_ns, version)
        return replace(cached, listing=listing, counts_ns=time.time_ns(), counts=seen)
