"""Bytes in and out of the bucket: a pinned reader and a multipart writer.

Every package's bytes are an immutable *blob* (``.blobs/<id>``), never rewritten; the key
a client sees is a small pointer to one blob (s3.py). So a reader that opened a version
keeps reading that blob whatever happens to the pointer, and a blob is only removed once
nothing points to it and nobody has read it for a while (s3_sweep.py): the reader
renews a *hold* on its blob while it reads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
from typing import Any

from anyio import to_thread

from ..package import Package
from .base import Reader, Writer
from .s3_client import Bucket, S3Error

BLOBS = ".blobs/"
HOLDS = ".holds/"
#: Upload parts: the smallest S3 allows (but the last), so memory stays flat and small.
PART_SIZE = 5 << 20
#: Parts of one upload sent at once (memory: this many parts, plus one filling).
PARTS_IN_FLIGHT = 2
#: mallopt's parameter numbers (glibc) and the values set (return_big_buffers).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 2 << 20
TRIM_THRESHOLD = 4 << 20
ARENA_MAX = 2
#: A reader renews the hold on its blob this often (s3_sweep.GRACE_S is well above it).
HOLD_EVERY_S = 300.0

#: Part uploads run here, beside the request that feeds them; reads (and read-ahead) too.
_parts = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="s3-part")
_reads = concurrent.futures.ThreadPoolExecutor(max_workers=128, thread_name_prefix="s3-read")


def return_big_buffers() -> None:
    """Keep memory flat and cheap. glibc raises its mmap threshold each time a big buffer
    is freed, after which the 5 MiB part buffers come from heaps it keeps for good: fixed
    at 2 MiB, they are mapped and given back to the system when an upload ends. The 1 MiB
    chunks of downloads come from the heap; by default glibc gave each freed one back at
    once (trim threshold 128 KiB) and the next was faulted in afresh, 230,000 page faults
    per GiB sent, a third of the server's CPU: the heap now keeps up to 4 MiB free, and at
    most two arenas (not one per thread that reads), so the pages are reused and the peak
    stays lower than before."""
    with contextlib.suppress(ImportError, OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        libc.mallopt(M_ARENA_MAX, ARENA_MAX)


def hold(bucket: Bucket, blob: str) -> None:
    """Mark ``blob`` as in use now, so no sweep removes it for a grace period."""
    bucket.put_bytes(HOLDS + blob, b"held")  # not empty: SeaweedFS stalls the next request


class BlobReader(Reader):
    """One blob, read through one streaming ranged GET at a time: reads that follow each
    other continue the stream; a read elsewhere (a Range request) starts a GET there.
    While the caller sends one chunk, the next is already being read (one chunk ahead),
    so the bucket and the client are never waiting for each other."""

    def __init__(self, bucket: Bucket, blob: str, package: Package) -> None:
        self.bucket = bucket
        self.blob = blob
        self.package = package
        self.version = blob
        self._lock = threading.Lock()
        self._body: Any = None
        self._position = -1
        self._held = time.monotonic()
        self._closed = False
        self._ahead: asyncio.Future[bytes] | None = None
        self._ahead_at = (-1, -1)

    async def read(self, offset: int, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        ahead, self._ahead = self._ahead, None
        if ahead is not None and self._ahead_at == (offset, size):
            data = await ahead
        else:
            if ahead is not None:
                with contextlib.suppress(Exception):
                    await ahead
            data = await loop.run_in_executor(_reads, self._read, offset, size)
        following = offset + len(data)
        if data and following < self.package.size:
            self._ahead_at = (following, size)
            self._ahead = loop.run_in_executor(_reads, self._read, following, size)
        return data

    def _read(self, offset: int, size: int) -> bytes:
        with self._lock:
            size = min(size, self.package.size - offset)
            if size <= 0 or self._closed:
                return b""
            if self._body is None or self._position != offset:
                self._drop_body()
                answer = self.bucket.call(
                    "get_object", Key=self.bucket.key(BLOBS + self.blob), Range=f"bytes={offset}-"
                )
                self._body, self._position = answer["Body"], offset
            chunks = []
            wanted = size
            try:
                while wanted:
                    chunk = self._body.read(wanted)
                    if not chunk:
                        raise S3Error(f"blob {self.blob} ended early: the object was changed")
                    chunks.append(chunk)
                    wanted -= len(chunk)
            except S3Error:
                self._drop_body()
                raise
            except Exception as error:
                self._drop_body()
                raise S3Error(f"reading blob {self.blob} failed: {error}") from None
            self._position += size
            if time.monotonic() - self._held > HOLD_EVERY_S:
                self._held = time.monotonic()
                hold(self.bucket, self.blob)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _drop_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with contextlib.suppress(Exception):
                body.close()

    async def close(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            with contextlib.suppress(Exception):
                await ahead
        await to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_body()


class BlobWriter(Writer):
    """A new blob streamed in: one PUT when small, else a multipart upload whose parts go
    out while the next fills. Nothing is visible until s3.py points a key at it."""

    def __init__(self, bucket: Bucket, key: str) -> None:
        self.bucket = bucket
        self.key = key
        self.blob = uuid.uuid4().hex
        self.object_key = bucket.key(BLOBS + self.blob)
        self.size = 0
        self._buffer: bytearray | None = None  # the part being filled
        self._filled = 0
        self._spare: list[bytearray] = []  # PART_SIZE buffers of parts sent, for reuse
        self._upload_id: str | None = None
        self._parts: list[asyncio.Future[dict[str, Any]]] = []
        self._stored = False  # the blob exists (complete) and is not yet pointed to
        self.published = False

    async def write(self, data: bytes) -> None:
        """Add ``data`` to the part being filled, which is sent as soon as it is full. The
        first part's buffer grows with what arrives (a small upload holds only its own
        bytes); later ones are PART_SIZE buffers reused from part to part (a new one for
        each part would be faulted in afresh: a quarter of a million page faults per GiB).
        At most PARTS_IN_FLIGHT + 1 exist; none is ever copied to be sent."""
        self.size += len(data)
        view = memoryview(data)
        while view:
            if self._buffer is None:
                first = not self._parts
                self._buffer = (
                    self._spare.pop() if self._spare else bytearray(0 if first else PART_SIZE)
                )
                self._filled = 0
            piece = view[: PART_SIZE - self._filled]
            end = self._filled + len(piece)
            self._buffer[self._filled : end] = piece  # appends to a short buffer
            self._filled = end
            view = view[len(piece) :]
            if self._filled == PART_SIZE:
                await self._send_part()

    def _take_filled(self) -> bytearray:
        """The part being filled, cut to what it holds (the last part: not reused)."""
        buffer, filled = self._buffer, self._filled
        self._buffer, self._filled = None, 0
        if buffer is None:
            return bytearray()
        del buffer[filled:]
        return buffer

    async def _send_part(self) -> None:
        if self._upload_id is None:
            answer = await to_thread.run_sync(
                lambda: self.bucket.call("create_multipart_upload", Key=self.object_key)
            )
            self._upload_id = answer["UploadId"]
        pending = [part for part in self._parts if not part.done()]
        if len(pending) >= PARTS_IN_FLIGHT:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for part in self._parts:
            if part.done():
                part.result()  # a failed part fails the upload now
        data = self._take_filled()
        number = len(self._parts) + 1
        loop = asyncio.get_running_loop()
        self._parts.append(loop.run_in_executor(_parts, self._upload_part, number, data))

    def _upload_part(self, number: int, data: bytearray) -> dict[str, Any]:
        answer = self.bucket.call(
            "upload_part", Key=self.object_key, UploadId=self._upload_id, PartNumber=number,
            Body=data,
        )  # fmt: skip
        if len(data) == PART_SIZE:
            self._spare.append(data)  # sent: free for the next part
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def store(self) -> None:
        """Make the blob complete and durable (not yet visible under any key)."""
        if self._upload_id is None:
            data = self._take_filled()
            await to_thread.run_sync(
                lambda: self.bucket.call("put_object", Key=self.object_key, Body=data)
            )
        else:
            if self._filled:
                await self._send_part()
            parts = [await part for part in self._parts]
            # On AWS a multipart object is dated when it was begun: hold it, so no sweep
            # takes it for a blob left long ago before it is pointed to.
            await to_thread.run_sync(hold, self.bucket, self.blob)
            await to_thread.run_sync(
                lambda: self.bucket.call(
                    "complete_multipart_upload", Key=self.object_key, UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
            )  # fmt: skip
            self._upload_id = None
        self._stored = True

    async def discard(self) -> None:
        if self.published:
            return
        for part in self._parts:
            with contextlib.suppress(Exception):
                await part
        self._parts = []
        self._buffer, self._spare = None, []
        upload_id, self._upload_id = self._upload_id, None
        stored, self._stored = self._stored, False
        with contextlib.suppress(S3Error):
            if upload_id is not None:
                await to_thread.run_sync(
                    lambda: self.bucket.call(
                        "abort_multipart_upload", Key=self.object_key, UploadId=upload_id
                    )
                )
            if stored:
                await to_thread.run_sync(self.bucket.delete, BLOBS + self.blob)
