"""The S3 backend: packages in a bucket, shared by any number of replicas with no volume.

Layout below ``s3://bucket/prefix/``::

    <key>                       a pointer: {"blob", "size", "sha256", "published_ns"}
    owner/repo/tag/.release.json  a release's metadata
    .blobs/<id>                 the bytes of one upload, never rewritten (s3_io.py)
    .holds/<id>                 "in use": keeps an unreferenced blob a while (s3_sweep.py)
    .downloads/<replica>.json   each process's download counts (s3_counts.py)

Why pointers: a create is one conditional PUT of the pointer (``If-None-Match: *``: one
winner across replicas), a replace is one PUT of a new pointer (atomic, never torn), and a
reader opens the blob the pointer named, which stays as it is for as long as it is read.
Upload time is the ``published_ns`` stamped just before the pointer is written.
Listings are rebuilt from a LIST at most LISTING_TTL_S after the last one (pointers are
fetched only when their ETag changed), so a change made through one replica shows through
every other within a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from ..errors import AlreadyExists, NotFound, level_taken, no_such_package
from ..logs import log_event
from ..names import name_problem
from ..package import Package
from .base import Listing, Reader, ReleaseEntry, Storage, Writer
from .flush import DelayedFlush
from .s3_client import Bucket, Location, Missing, PreconditionFailed, S3Error
from .s3_counts import Counts, replica_id
from .s3_io import BlobReader, BlobWriter, hold, return_big_buffers
from .s3_sweep import GRACE_S, STALE_UPLOAD_S, sweep

META_FILE = ".release.json"
#: How long a listing is served without asking the bucket again.
LISTING_TTL_S = 0.5
#: A pointer is a small JSON document; a bigger object under a key is something else.
MAX_POINTER = 4096
#: How often each replica sweeps (the sweep also runs at start-up).
SWEEP_EVERY_S = 600.0

logger = logging.getLogger("release_server.storage")
_fetch = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="s3-list")


def is_asset(name: str) -> bool:
    """Whether an object named ``name`` in a release may be one of its assets (a pointer)."""
    return not name.startswith(".") and not name_problem(name)


@dataclass(frozen=True, slots=True)
class Pointer:
    blob: str
    size: int
    sha256: str
    published_ns: int

    def to_json(self) -> bytes:
        return json.dumps(
            {"blob": self.blob, "size": self.size, "sha256": self.sha256,
             "published_ns": self.published_ns}
        ).encode()  # fmt: skip

    @classmethod
    def parse(cls, data: bytes) -> Pointer | None:
        """The pointer in ``data``, or None when the object is not one (copied in by hand)."""
        try:
            doc = json.loads(data)
            pointer = cls(str(doc["blob"]), int(doc["size"]), str(doc["sha256"]),
                          int(doc["published_ns"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None
        return pointer if len(pointer.blob) == 32 and len(pointer.sha256) == 64 else None

    def package(self, key: str, downloads: int = 0) -> Package:
        name = key.rsplit("/", 1)[-1]
        return Package(name, self.size, self.published_ns, self.sha256, downloads)


class S3Storage(Storage):
    """Packages in an S3-compatible bucket (``STORAGE_URL=s3://bucket/prefix``)."""

    def __init__(self, url: str, client: Any = None) -> None:
        self.where = Location.parse(url)
        return_big_buffers()
        self.bucket = Bucket(self.where, client)
        self.counts = Counts(self.bucket, replica_id())
        self.counting = DelayedFlush(self.counts.flush)
        self.grace = GRACE_S
        self.stale_upload = STALE_UPLOAD_S
        self._pointers: dict[str, tuple[str, Pointer | None]] = {}  # key -> (ETag, pointer)
        self._metas: dict[str, tuple[str, bytes]] = {}  # release -> (ETag, metadata)
        self._listings: dict[str, tuple[float, Listing]] = {}
        self._building: dict[str, asyncio.Lock] = {}
        self._written: dict[str, float] = {}  # release -> when this replica last changed it
        self._stamps: dict[str, tuple[float, int]] = {}  # prefix -> (when read, stamp)
        self._stamping: dict[str, asyncio.Lock] = {}
        #: prefix -> when this replica last wrote below it (a stamp read before is stale).
        self._changed_below: dict[str, float] = {}
        #: repository -> (when asked, when answered, the LIST its stamp was made of).
        self._lists: dict[str, tuple[float, float, list[dict[str, Any]]]] = {}
        self._skipped: dict[str, str] = {}
        self._sweeping = threading.Lock()
        self._swept = time.monotonic()

    # -- start-up and readiness ----------------------------------------------------------------

    def prepare(self) -> None:
        """Proves the bucket is there and writable (a probe object, removed at once)."""
        self.bucket.call("head_bucket")
        probe = f".probe/{self.counts.name.rsplit('/', 1)[-1]}"
        self.bucket.put_bytes(probe, b"probe")
        self.bucket.delete(probe)

    def remove_stale_uploads(self) -> list[str]:
        """Sweep the bucket (s3_sweep.py); a failing bucket is logged, not raised: the
        next sweep catches up, and /readyz reports the bucket meanwhile."""
        self._swept = time.monotonic()
        with self._sweeping:
            try:
                return sweep(self.bucket, self._referenced, grace=self.grace,
                             stale_upload=self.stale_upload)  # fmt: skip
            except S3Error as error:
                log_event(logger, "sweep failed", logging.WARNING, reason=error.strerror)
                return []

    def _referenced(self) -> Iterable[str]:
        """Every blob a key points to now (all pointers below the prefix)."""
        objects, _ = self.bucket.entries("")
        candidates = [o for o in objects if not any(s.startswith(".") for s in o["Key"].split("/"))]
        return [p.blob for p in self._read_pointers(candidates).values() if p is not None]

    def _maybe_sweep(self) -> None:
        """Sweep in the background when this replica has not for SWEEP_EVERY_S."""
        if time.monotonic() - self._swept < SWEEP_EVERY_S or self._sweeping.locked():
            return
        self._swept = time.monotonic()

        def run() -> None:
            removed = self.remove_stale_uploads()
            if removed:
                log_event(logger, "swept the bucket", removed=removed)

        threading.Thread(target=run, name="s3-sweep", daemon=True).start()

    async def problem(self) -> str | None:
        try:
            await to_thread.run_sync(lambda: self.bucket.call("head_bucket"))
        except S3Error as error:
            return f"storage {self.where} is not usable: {error.strerror}"
        return None

    def skipped_entries(self) -> dict[str, str]:
        return dict(self._skipped)

    # -- listing -------------------------------------------------------------------------------

    def _cached_listing(self, release: str) -> Listing | None:
        cached = self._listings.get(release)
        if cached is None or time.monotonic() - cached[0] > LISTING_TTL_S:
            return None
        if cached[0] <= self._written.get(release, -1.0):
            return None  # begun before this replica changed the release: not trusted
        return cached[1]

    async def listing(self, release: str = "") -> Listing:
        listing = self._cached_listing(release)
        if listing is None:
            # One rebuild at a time per release: requests arriving meanwhile wait for it
            # rather than each listing the bucket again.
            lock = self._building.setdefault(release, asyncio.Lock())
            async with lock:
                listing = self._cached_listing(release)
                if listing is None:
                    listing = await to_thread.run_sync(self._build, release)
        return listing

    def _build(self, release: str) -> Listing:
        started = time.monotonic()
        below = f"{release}/" if release else ""
        objects, _ = self.bucket.entries(below, "/")
        candidates = [item for item in objects if is_asset(item["Key"][len(below) :])]
        return self._assemble(release, objects, self._read_pointers(candidates),
                              self.counts.totals(), started)  # fmt: skip

    def _assemble(
        self,
        release: str,
        objects: list[dict[str, Any]],
        pointers: dict[str, Pointer | None],
        counts: Mapping[str, int],
        started: float,
    ) -> Listing:
        """The listing of ``release`` from the LIST of its ``objects`` and their pointers,
        kept as its cached listing from ``started`` (when the LIST was asked for)."""
        below = f"{release}/" if release else ""
        changed_ns = 0
        for item in objects:
            if item["Key"] == f"{below}{META_FILE}":
                changed_ns = int(item["LastModified"].timestamp() * 1e9)
        packages = [
            pointer.package(key, counts.get(pointer.blob, 0))
            for item in objects
            if (pointer := pointers.get(key := item["Key"])) is not None
        ]
        packages.sort(key=lambda p: (-p.mtime_ns, p.name))
        if packages:
            changed_ns = max(changed_ns, packages[0].mtime_ns)
        version = hashlib.sha1(
            repr([(p.name, p.size, p.mtime_ns, p.downloads) for p in packages]).encode()
        ).hexdigest()[:20]
        listing = Listing(tuple(packages), changed_ns, version)
        self._listings[release] = (started, listing)
        return listing

    def _read_pointers(self, objects: list[dict[str, Any]]) -> dict[str, Pointer | None]:
        """The pointer behind each listed object: from memory when its ETag is unchanged,
        else fetched (in parallel). None for objects that are not pointers (noted)."""
        found: dict[str, Pointer | None] = {}
        wanted = []
        for item in objects:
            key, etag = item["Key"], item.get("ETag", "")
            known = self._pointers.get(key)
            if known is not None and known[0] == etag:
                found[key] = known[1]
            elif item.get("Size", 0) > MAX_POINTER:
                self._not_a_pointer(key, etag)
                found[key] = None
            else:
                wanted.append(key)
        for key, fetched in zip(wanted, _fetch.map(self._fetch_pointer, wanted), strict=True):
            if fetched is not None:
                found[key] = fetched[1]
        return found

    def _fetch_pointer(self, key: str) -> tuple[str, Pointer | None] | None:
        try:
            data, etag = self.bucket.get_bytes(key)
        except Missing:
            return None  # removed since it was listed
        pointer = Pointer.parse(data)
        if pointer is None:
            self._not_a_pointer(key, etag)
            return etag, None
        self._pointers[key] = (etag, pointer)
        self._skipped.pop(key, None)
        return etag, pointer

    def _not_a_pointer(self, key: str, etag: str) -> None:
        if key not in self._skipped:
            log_event(logger, "skipped an object that is not a package", logging.WARNING, name=key)
        self._skipped[key] = "not written by release-server: upload it through the API"
        self._pointers[key] = (etag, None)

    def _changed(self, key: str) -> None:
        """Forget the cached listing of the release ``key`` is in (this replica wrote it)."""
        self._release_changed(key.rpartition("/")[0])

    def _release_changed(self, release: str) -> None:
        now = self._written[release] = time.monotonic()
        self._listings.pop(release, None)
        parts = release.split("/")
        for depth in range(len(parts)):
            self._stamps.pop("/".join(parts[:depth]), None)
            self._changed_below["/".join(parts[:depth])] = now

    # -- reading -------------------------------------------------------------------------------

    async def exists(self, key: str) -> bool:
        return await to_thread.run_sync(self._exists, key)

    def _exists(self, key: str) -> bool:
        try:
            self.bucket.call("head_object", Key=self.bucket.key(key))
            return True
        except Missing:
            return "/" not in key and self._is_level(key)

    def _is_level(self, name: str) -> bool:
        page = self.bucket.call("list_objects_v2", Prefix=self.bucket.key(f"{name}/"), MaxKeys=1)
        return bool(page.get("KeyCount") or page.get("Contents"))

    def _pointer(self, key: str) -> Pointer:
        """The current pointer of ``key``, read from the bucket. Raises NotFound."""
        try:
            data, _ = self.bucket.get_bytes(key)
        except Missing:
            raise no_such_package(key) from None
        pointer = Pointer.parse(data)
        if pointer is None:
            raise no_such_package(key)
        return pointer

    async def open(self, key: str) -> Reader:
        pointer = await to_thread.run_sync(self._pointer, key)
        return BlobReader(self.bucket, pointer.blob, pointer.package(key))

    async def close(self) -> None:
        await self.counting.now()

    async def count_download(self, key: str, version: str) -> None:
        self.counts.add(version)
        self.counting.soon()

    # -- writing -------------------------------------------------------------------------------

    async def begin(self, key: str) -> Writer:
        return BlobWriter(self.bucket, key)

    async def publish(self, writer: Writer, sha256: str, overwrite: bool) -> tuple[Package, bool]:
        assert isinstance(writer, BlobWriter)
        await writer.store()
        return await to_thread.run_sync(self._point, writer, sha256, overwrite)

    def _check_levels(self, key: str) -> None:
        """Conflict when a level of ``key`` is a root package (as a file blocks a directory)."""
        if "/" in key:
            try:
                self.bucket.call("head_object", Key=self.bucket.key(key.split("/", 1)[0]))
            except Missing:
                return
            raise level_taken(key)
        if self._is_level(key):
            raise AlreadyExists(key)

    def _point(self, writer: BlobWriter, sha256: str, overwrite: bool) -> tuple[Package, bool]:
        """Point ``writer.key`` at the stored blob: one PUT, atomic; create-only when
        ``overwrite`` is false. The replaced blob is held first, for readers in flight."""
        key = writer.key
        self._check_levels(key)
        size = writer.size
        old: Pointer | None = None
        if overwrite:
            try:
                old = self._pointer(key)
                hold(self.bucket, old.blob)
            except NotFound:
                pass
        pointer = Pointer(writer.blob, size, sha256, time.time_ns())
        try:
            self.bucket.put_bytes(key, pointer.to_json(), create_only=not overwrite)
        except PreconditionFailed:
            raise AlreadyExists(key) from None
        writer.published = True
        self._changed(key)
        if old is not None:
            self._maybe_sweep()
        return pointer.package(key), old is not None

    async def delete(self, key: str) -> Package:
        return await to_thread.run_sync(self._delete, key)

    def _delete(self, key: str) -> Package:
        pointer = self._pointer(key)
        hold(self.bucket, pointer.blob)
        self.bucket.delete(key)
        self._changed(key)
        self._maybe_sweep()
        return pointer.package(key)

    # -- releases below the root ---------------------------------------------------------------

    async def children(self, prefix: str) -> list[str]:
        return await to_thread.run_sync(self._children, prefix)

    def _children(self, prefix: str) -> list[str]:
        below = f"{prefix}/" if prefix else ""
        _, levels = self.bucket.entries(below, "/")
        names = [level[len(below) :].rstrip("/") for level in levels]
        valid = [name for name in names if not name_problem(name)]
        # Some engines (SeaweedFS) keep a level whose objects are all gone: not a level.
        kept = _fetch.map(lambda name: self._is_level(below + name), valid)
        return sorted(name for name, keep in zip(valid, kept, strict=True) if keep)

    async def stamp(self, repository: str) -> int:
        """A hash of what a LIST shows below ``repository``: every key and ETag below an
        ``owner/repo``; the levels one down below the root and an owner (what their stamps
        are asked for: a repository or owner added or gone). Asked again at most every
        LISTING_TTL_S, and at once after this replica's own write, so a write through any
        replica changes it within a second."""
        cached = self._stamps.get(repository)
        if cached is not None and time.monotonic() - cached[0] <= LISTING_TTL_S:
            return cached[1]
        # One LIST at a time per prefix (a repository of 1,000 releases is 11 pages):
        # requests arriving meanwhile take its answer.
        async with self._stamping.setdefault(repository, asyncio.Lock()):
            cached = self._stamps.get(repository)
            if cached is not None and time.monotonic() - cached[0] <= LISTING_TTL_S:
                return cached[1]
            started = time.monotonic()
            stamp = await to_thread.run_sync(self._stamp, repository, started)
            if self._changed_below.get(repository, -1.0) < started:  # else not kept: stale
                self._stamps[repository] = (time.monotonic(), stamp)
            return stamp

    def _stamp(self, repository: str, started: float) -> int:
        below = f"{repository}/" if repository else ""
        if repository.count("/") == 1:
            objects, _ = self.bucket.entries(below)
            self._lists[repository] = (started, time.monotonic(), objects)
            seen: list[object] = [(item["Key"], item.get("ETag")) for item in objects]
        else:
            seen = list(self.bucket.entries(below, "/")[1])
        return (hash(tuple(seen)) or 1) if seen else 0

    async def read_meta(self, release: str) -> bytes | None:
        try:
            data, _ = await to_thread.run_sync(self.bucket.get_bytes, f"{release}/{META_FILE}")
        except Missing:
            return None
        return data

    async def repository_releases(self, repository: str) -> list[ReleaseEntry]:
        return await to_thread.run_sync(self._repository_releases, repository)

    def _repository_releases(self, repository: str) -> list[ReleaseEntry]:
        """One LIST of the whole repository and one of the download counters; pointers and
        metadata are fetched only when their ETag changed (in parallel)."""
        below = f"{repository}/"
        started, objects = self._listed(repository)
        by_tag: dict[str, list[dict[str, Any]]] = {}
        for item in objects:
            tag, slash, rest = item["Key"][len(below) :].partition("/")
            if slash and not name_problem(tag):  # a level: a release, as ``children`` says
                by_tag.setdefault(tag, [])
                if "/" not in rest:
                    by_tag[tag].append(item)
        candidates = [item for items in by_tag.values() for item in items
                      if is_asset(item["Key"].rpartition("/")[2])]  # fmt: skip
        pointers = self._read_pointers(candidates)
        counts = self.counts.totals()
        metas = self._read_metas({f"{below}{tag}": items for tag, items in by_tag.items()})
        return [
            ReleaseEntry(tag, self._assemble(f"{below}{tag}", items, pointers, counts, started),
                         metas.get(f"{below}{tag}"))
            for tag, items in sorted(by_tag.items())
        ]  # fmt: skip

    def _listed(self, repository: str) -> tuple[float, list[dict[str, Any]]]:
        """(when asked, every object below ``repository``): the LIST its stamp was just
        made of (a repository of 1,000 releases is 11 pages of LIST, whose parsing is most
        of a re-read) unless older than LISTING_TTL_S or begun before this replica wrote
        below it; else a LIST now."""
        listed = self._lists.pop(repository, None)
        written = self._changed_below.get(repository, -1.0)
        if listed and written < listed[0] and time.monotonic() - listed[1] <= LISTING_TTL_S:
            return listed[0], listed[2]
        started = time.monotonic()
        return started, self.bucket.entries(f"{repository}/")[0]

    def _read_metas(self, releases: dict[str, list[dict[str, Any]]]) -> dict[str, bytes]:
        """The metadata of each release (given its listed objects) that has some: from
        memory when its ETag is unchanged, else fetched (in parallel)."""
        found: dict[str, bytes] = {}
        wanted: list[str] = []
        for release, items in releases.items():
            key = f"{release}/{META_FILE}"
            etag = next((item.get("ETag", "") for item in items if item["Key"] == key), None)
            known = self._metas.get(release)
            if etag is None:
                self._metas.pop(release, None)
            elif known is not None and known[0] == etag:
                found[release] = known[1]
            else:
                wanted.append(release)

        def fetch(release: str) -> bytes | None:
            try:
                data, etag = self.bucket.get_bytes(f"{release}/{META_FILE}")
            except Missing:
                return None  # removed since it was listed
            self._metas[release] = (etag, data)
            return data

        for release, data in zip(wanted, _fetch.map(fetch, wanted), strict=True):
            if data is not None:
                found[release] = data
        return found

    async def write_meta(self, release: str, data: bytes) -> None:
        def write() -> None:
            self._check_levels(release)
            self.bucket.put_bytes(f"{release}/{META_FILE}", data)
            self._release_changed(release)

        await to_thread.run_sync(write)

    async def remove_release(self, release: str) -> None:
        """Deletes the metadata; in a bucket a level with nothing left in it is gone."""

        def remove() -> None:
            self.bucket.delete(f"{release}/{META_FILE}")
            self._release_changed(release)

        await to_thread.run_sync(remove)
