"""What a bucket holds below a server's prefix, read with the engine's own client: the S3
counterpart of the hardening checks that read the storage directory (what is published,
what a dead upload left behind).

Layout (release_server/storage/s3.py): a package is a pointer naming an immutable blob in
``.blobs/``; ``.holds/`` marks blobs in use. An upload in progress is a multipart upload
not yet completed, or a blob stored but not yet pointed to (nor held).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from release_server.storage.s3 import Pointer, S3Storage
from release_server.storage.s3_io import BLOBS, HOLDS


def _keys(client: Any, bucket: str, prefix: str, delimiter: str = "") -> list[str]:
    extra = {"Delimiter": delimiter} if delimiter else {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **extra)
    return [item["Key"][len(prefix) :] for page in pages for item in page.get("Contents", [])]


@dataclass
class Contents:
    """One look at the bucket below ``prefix/``."""

    #: package name -> its pointer (the objects directly below the prefix)
    pointers: dict[str, Pointer]
    blobs: set[str]
    holds: set[str]
    #: keys (below the prefix) of multipart uploads neither completed nor aborted
    uploads: list[str]

    @property
    def unreferenced(self) -> set[str]:
        """Blobs no package points to: replaced, deleted, or never published."""
        return self.blobs - {pointer.blob for pointer in self.pointers.values()}

    @property
    def unfinished(self) -> list[str]:
        """What uploads in progress (or dead) hold: multipart uploads, and blobs stored
        but neither pointed to nor held (a replaced or deleted blob is held first)."""
        orphans = (f"{BLOBS}{blob}" for blob in self.unreferenced - self.holds)
        return sorted([*self.uploads, *orphans])


def contents(client: Any, bucket: str, prefix: str) -> Contents:
    below = f"{prefix}/"
    pointers = {}
    for name in _keys(client, bucket, below, "/"):
        data = client.get_object(Bucket=bucket, Key=below + name)["Body"].read()
        pointer = Pointer.parse(data)
        assert pointer is not None, f"{name}: not a pointer: {data[:200]!r}"
        pointers[name] = pointer
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=below).get("Uploads", [])
    return Contents(
        pointers,
        set(_keys(client, bucket, below + BLOBS)),
        set(_keys(client, bucket, below + HOLDS)),
        [upload["Key"].removeprefix(below) for upload in uploads],
    )


def packages(client: Any, bucket: str, prefix: str) -> dict[str, str]:
    """name -> sha256 of the bytes of the blob each pointer names (read from the bucket,
    so a pointer that names a partial or another blob shows)."""
    found = {}
    for name, pointer in contents(client, bucket, prefix).pointers.items():
        body = client.get_object(Bucket=bucket, Key=f"{prefix}/{BLOBS}{pointer.blob}")["Body"]
        found[name] = hashlib.sha256(body.read()).hexdigest()
    return found


def sweep_as_if_stale(client: Any, bucket: str, prefix: str) -> list[str]:
    """Sweep as every replica does, as if the grace and the time after which an upload is
    taken for dead were over (start-up cannot tell a dead upload from another replica's
    live one, so the sweep takes them once stale). Run it when no upload is in flight."""
    storage = S3Storage(f"s3://{bucket}/{prefix}", client)
    # LastModified has whole seconds: an hour "ago" leaves no doubt.
    storage.grace = storage.stale_upload = -3600.0
    return storage.remove_stale_uploads()
