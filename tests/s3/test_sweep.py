"""The bucket sweep (in-process, on a real SeaweedFS): blobs nobody points to are removed
once their grace is over, and never while a reader holds them."""

from __future__ import annotations

import hashlib

import pytest

from release_server.errors import AlreadyExists
from release_server.storage.s3 import S3Storage
from release_server.storage.s3_io import BLOBS
from s3.weed import Weed

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def put(storage: S3Storage, key: str, data: bytes, overwrite: bool = False) -> None:
    writer = await storage.begin(key)
    try:
        await writer.write(data)
        await storage.publish(writer, hashlib.sha256(data).hexdigest(), overwrite)
    finally:
        await writer.discard()


def blobs(weed: Weed, storage: S3Storage) -> int:
    below = storage.bucket.key(BLOBS)
    page = weed.client.list_objects_v2(Bucket=storage.where.bucket, Prefix=below)
    return int(page.get("KeyCount", 0))


async def test_replaced_and_deleted_blobs_go_after_their_grace(weed: Weed, s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/p", weed.make_client())
    storage.prepare()
    await put(storage, "a.zip", b"one")
    await put(storage, "a.zip", b"two", overwrite=True)
    await put(storage, "b.zip", b"bee")
    reader = await storage.open("b.zip")
    await storage.delete("b.zip")
    assert blobs(weed, storage) == 3
    assert storage.remove_stale_uploads() == []  # within the grace: all kept
    storage.grace = 0
    removed = storage.remove_stale_uploads()
    assert len(removed) == 2 and blobs(weed, storage) == 1  # only what a.zip points to
    assert await storage.open("a.zip") is not None
    with pytest.raises(OSError):  # past its grace, a held-up reader fails; never mixes
        await reader.read(0, 10)
    await reader.close()


async def test_a_lost_create_leaves_no_blob(weed: Weed, s3_bucket: str) -> None:
    storage = S3Storage(f"s3://{s3_bucket}/p", weed.make_client())
    await put(storage, "a.zip", b"one")
    with pytest.raises(AlreadyExists):
        await put(storage, "a.zip", b"two")
    assert blobs(weed, storage) == 1
