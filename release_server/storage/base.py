"""The storage seam: the one small interface the endpoints and services talk to.

A backend stores *objects* under *keys*: ``name`` for a package of the root release, and
``owner/repo/tag/name`` for an asset of any other release (SPEC §8.1), each segment a valid
name (names.py). Everything above this module sees only keys, ``Package`` records and the
objects below; never a path, a descriptor or a ``stat`` result. ``tests/test_storage.py``
is the contract every backend passes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..package import Package


@dataclass(frozen=True, slots=True)
class Listing:
    """A snapshot of one release's assets, newest first."""

    packages: tuple[Package, ...]
    #: When the release last changed (ns since the epoch): its time when it has no assets.
    changed_ns: int
    #: Changes whenever anything shown in a document changes; used for ETags and caches.
    version: str


@dataclass(frozen=True, slots=True)
class ReleaseEntry:
    """One release of a repository as ``Storage.repository_releases`` reads it."""

    tag: str
    listing: Listing
    #: Its metadata document, or None (a release copied in by hand has none).
    meta: bytes | None


class Reader(ABC):
    """One version of an object, pinned when opened: it stays readable, byte for byte, if
    the key is replaced or deleted while a download is in flight."""

    #: The version opened: name, size, upload time, sha256.
    package: Package
    #: Opaque id of this version, for ``Storage.count_download``.
    version: str

    @abstractmethod
    async def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; fewer only at the end of the object."""

    @abstractmethod
    async def close(self) -> None:
        """Release the pinned version. Safe to call twice."""

    async def local_path(self) -> str | None:
        """A file name of this very version that the HTTP engine may open itself and send
        without Python in the byte path (ASGI ``http.response.pathsend``), or None (the
        default) when the backend has none; the bytes are then ``read()``. The name stays
        valid for a while after ``close()``: the engine opens it on its own schedule."""
        return None


class Writer(ABC):
    """A new object being streamed in, invisible until ``Storage.publish``."""

    key: str

    @abstractmethod
    async def write(self, data: bytes) -> None:
        """Append ``data``. Raises DiskFull when there is no room."""

    @abstractmethod
    async def discard(self) -> None:
        """Drop whatever was written. Safe to call twice, and after publish."""


class Storage(ABC):
    """List, open, stream in, publish and delete objects; count downloads."""

    @abstractmethod
    def prepare(self) -> None:
        """Create what the backend needs and prove it can write; raise OSError if not.
        Called once at start-up, before serving."""

    @abstractmethod
    def remove_stale_uploads(self) -> list[str]:
        """Remove what uploads of dead processes left behind; returns what was removed."""

    @abstractmethod
    async def problem(self) -> str | None:
        """Why storage is not ready (unreadable, unwritable, full), or None when it is."""

    def skipped_entries(self) -> dict[str, str]:
        """Stored entries that are not served (not packages), each with why."""
        return {}

    @abstractmethod
    async def listing(self, release: str = "") -> Listing:
        """The assets of ``release`` ("" is the root release; else ``owner/repo/tag``)."""

    @abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether anything is stored under ``key`` (a quick check before a create)."""

    @abstractmethod
    async def open(self, key: str) -> Reader:
        """Pin the current version of ``key`` for reading. Raises NotFound."""

    @abstractmethod
    async def begin(self, key: str) -> Writer:
        """Start streaming a new object that ``publish`` will put under ``key``."""

    @abstractmethod
    async def publish(self, writer: Writer, sha256: str, overwrite: bool) -> tuple[Package, bool]:
        """Make the written bytes durable and visible under ``writer.key`` at once; returns
        (package, replaced). Without ``overwrite`` exactly one of racing creates wins and
        the others raise AlreadyExists. Its upload time is the time it was published."""

    @abstractmethod
    async def delete(self, key: str) -> Package:
        """Remove ``key`` and its metadata. Raises NotFound."""

    @abstractmethod
    async def close(self) -> None:
        """Write what is kept in memory (download counts) before the process ends."""

    @abstractmethod
    async def count_download(self, key: str, version: str) -> None:
        """Record one completed download of the version ``Reader.version`` named."""

    # -- releases below the root (SPEC §8.1) ---------------------------------------------------

    @abstractmethod
    async def children(self, prefix: str) -> list[str]:
        """The valid names one level below ``prefix`` that are levels themselves: owners
        below "", repositories below ``owner``, tags below ``owner/repo``."""

    @abstractmethod
    async def stamp(self, repository: str) -> int:
        """A number that changes whenever anything below ``repository`` (``owner/repo``)
        is written through this seam, by any process (0 when there is nothing): caches of
        a whole repository revalidate against it. Hand edits inside an existing release
        may leave it unchanged."""

    @abstractmethod
    async def read_meta(self, release: str) -> bytes | None:
        """The metadata document of ``release`` (``owner/repo/tag``), or None."""

    async def repository_releases(self, repository: str) -> list[ReleaseEntry]:
        """Every release of ``repository`` (``owner/repo``) by tag, with what ``listing``
        and ``read_meta`` give for it: the periodic re-read of a whole repository. This
        default asks for each release in turn; backends override it to read a repository
        of 1,000 releases in one go (one worker thread, one LIST) and to reuse what did
        not change."""
        return [
            ReleaseEntry(tag, await self.listing(f"{repository}/{tag}"),
                         await self.read_meta(f"{repository}/{tag}"))
            for tag in await self.children(repository)
        ]  # fmt: skip

    @abstractmethod
    async def write_meta(self, release: str, data: bytes) -> None:
        """Replace the metadata of ``release`` atomically; the release exists from then on."""

    @abstractmethod
    async def remove_release(self, release: str) -> None:
        """Remove the metadata of ``release``, and the release itself (and its repository
        and owner levels) once nothing else is left in them."""
