"""The upload service: receive -> verify -> publish -> prune. It knows nothing of HTTP.

Every write path (multipart ``/upload``, raw ``PUT /assets/{name}``) goes through
``Publisher.publish``, so each gets the same guarantees: streamed, hashed, size-limited,
checksum-verified, atomic, and nothing left behind when anything goes wrong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .config import Settings
from .errors import (
    AlreadyExists,
    BadRequest,
    ChecksumMismatch,
    EmptyUpload,
    NotFound,
    RequestTimeout,
    UploadInterrupted,
)
from .logs import log_event
from .metrics import Metrics
from .names import check_name
from .package import Package
from .releases import Releases
from .retention import choose_pruned
from .storage import Storage
from .uploads import Incoming, OpenUpload

logger = logging.getLogger("release_server.publish")

#: Reads a request body, opening the upload by name through the given callback; returns
#: the sha256 a form sent along, if any.
Receiver = Callable[[OpenUpload], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Published:
    package: Package
    replaced: bool
    pruned: list[str]


class Publisher:
    """Stores uploads in one Storage and applies retention after each."""

    def __init__(self, storage: Storage, metrics: Metrics, settings: Settings) -> None:
        self.storage = storage
        self.metrics = metrics
        self.max_upload_size = settings.max_upload_size
        self.max_packages = settings.package_limit
        self.max_versions = settings.version_limit
        self.releases = Releases(storage, settings.version_limit)

    async def publish(
        self, receive: Receiver, overwrite: bool, expected: str | None, release: str = ""
    ) -> Published:
        """Receive one file, verify it against ``expected`` (and any digest the form sent),
        publish it atomically into ``release`` ("" for the root release, else a checked
        ``owner/repo/tag``, created if need be), then prune. Raises an HTTPError; nothing
        is left behind."""
        incoming: list[Incoming] = []

        async def open_upload(name: str) -> Incoming:
            key = f"{release}/{check_name(name)}" if release else check_name(name)
            if not overwrite and await self.storage.exists(key):
                raise AlreadyExists(name)
            upload = Incoming(await self.storage.begin(key), self.max_upload_size)
            incoming.append(upload)
            return upload

        try:
            sent = await receive(open_upload)
            upload = incoming[0]
            name = upload.writer.key.rsplit("/", 1)[-1]
            if sent and expected and sent != expected:
                raise BadRequest("The 'sha256' field and X-Checksum-Sha256 header disagree.")
            if upload.size == 0:
                raise EmptyUpload(name)
            digest = upload.sha256()
            wanted = expected or sent
            if wanted and wanted != digest:
                raise ChecksumMismatch(wanted, digest)
            package, replaced = await self.storage.publish(upload.writer, digest, overwrite)
        except (RequestTimeout, UploadInterrupted) as stopped:
            what = "timed out" if isinstance(stopped, RequestTimeout) else "aborted by the client"
            chosen = incoming[0].writer.key if incoming else None
            log_event(logger, f"upload {what}", logging.WARNING, name=chosen)
            raise
        finally:
            for upload in incoming:
                await upload.writer.discard()
        if release:
            repository, _, tag = release.rpartition("/")
            await self.releases.ensure(repository, tag)
            pruned = await self.releases.prune(repository, tag)
        else:
            pruned = await self.prune(package.name)
        self.metrics.count("uploads")
        self.metrics.count("upload_bytes", package.size)
        self.metrics.count("pruned", len(pruned))
        log_event(
            logger,
            "uploaded",
            name=f"{release}/{package.name}" if release else package.name,
            size=package.size,
            sha256=package.sha256,
            replaced=replaced,
        )
        return Published(package, replaced, pruned)

    async def prune(self, keep: str) -> list[str]:
        """Apply retention after an upload of ``keep``; returns the names removed."""
        listing = await self.storage.listing()
        pruned = []
        limits = (self.max_packages, self.max_versions)
        for name in choose_pruned(listing.packages, *limits, keep, time.time_ns()):
            try:
                package = await self.storage.delete(name)
            except NotFound:
                continue  # another process pruned it first
            pruned.append(name)
            log_event(logger, "pruned", name=name, size=package.size, sha256=package.sha256 or None)
        return pruned

    async def delete(self, key: str) -> Package:
        """Remove a package (``name``, or a checked ``owner/repo/tag/name``) on request.
        Raises NotFound."""
        package = await self.storage.delete(key)
        self.metrics.count("deletes")
        log_event(logger, "deleted", name=key, size=package.size, sha256=package.sha256 or None)
        return package
