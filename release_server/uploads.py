"""Read an upload body (raw, or multipart with a ``file`` field) into storage.

Bytes go straight from the socket to the storage backend's writer: no spooling to a
system temp dir, no whole-file buffer. They are counted against MAX_UPLOAD_SIZE and hashed
as they arrive; writes and hashing run in worker threads, batched so the event loop stays
free.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from anyio import to_thread
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from .errors import BadRequest, HTTPError, RequestTimeout, TooLarge, UploadInterrupted
from .names import check_name
from .storage import Writer

#: Bytes gathered before one hop to the writer thread.
BATCH_SIZE = 1 << 20
#: Multipart framing allowed on top of MAX_UPLOAD_SIZE before Content-Length is refused.
MULTIPART_SLACK = 64 * 1024
_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


def parse_checksum(value: str | None, source: str) -> str | None:
    """Accept ``<hex>`` or ``sha256:<hex>``; anything else is a 400."""
    if value is None or not value.strip():
        return None
    match = _SHA256.match(value.strip())
    if not match:
        raise BadRequest(f"{source} must be a sha256 digest: 64 hexadecimal characters.")
    return match.group(1).lower()


class Incoming:
    """One upload's bytes on their way into storage: counted against the limit, hashed."""

    def __init__(self, writer: Writer, limit: int) -> None:
        self.writer = writer
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.limit and self.size > self.limit:
            raise TooLarge(self.limit)
        # Both let the GIL go: hashed and written side by side, on two cores.
        await asyncio.gather(to_thread.run_sync(self._hash.update, data), self.writer.write(data))

    def sha256(self) -> str:
        return self._hash.hexdigest()


#: Opens the Incoming for a file name (validating it, refusing a taken name).
OpenUpload = Callable[[str], Awaitable[Incoming]]


def html5_unescape(filename: str) -> str:
    """Undo the escapes browsers and urllib3 apply to form file names (WHATWG HTML:
    ``"`` as %22, CR as %0D, LF as %0A), so the server sees the name the client meant."""
    return filename.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


class Body:
    """The request body as an async iterator that remembers whether it was read to the end
    and gives up (RequestTimeout, 408) when the client sends nothing for ``idle_timeout`` seconds.

    This is READ_TIMEOUT. It is enforced here, on request bodies only, rather than by
    hypercorn, whose read timeout also runs while a long download is being sent and would
    cut it off."""

    def __init__(self, stream: AsyncIterator[bytes], idle_timeout: float) -> None:
        self._stream = stream
        self.idle_timeout = idle_timeout
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._stream)
        while True:
            try:
                with anyio.fail_after(self.idle_timeout):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise RequestTimeout(
                    f"No bytes arrived for {self.idle_timeout:g} s; nothing was stored."
                ) from None
            except ClientDisconnect:
                raise UploadInterrupted() from None
            yield chunk
        self.complete = True


class BatchedWriter:
    """Collects chunks and writes them to the Incoming a batch at a time, while the next
    batch is being received (at most one write in flight)."""

    def __init__(self, upload: Incoming | None) -> None:
        self.upload = upload
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.writing: asyncio.Future[None] | None = None

    def add(self, data: bytes) -> None:
        self.pending.append(data)
        self.pending_size += len(data)

    async def flush(self, force: bool = False) -> None:
        """Hand a full batch (any batch with ``force``) to the writer; with ``force``,
        also wait until everything is written. Write errors surface here."""
        if self.upload and self.pending and (force or self.pending_size >= BATCH_SIZE):
            batch = b"".join(self.pending)
            self.pending.clear()
            self.pending_size = 0
            await self._written()
            self.writing = asyncio.ensure_future(self.upload.write(batch))
            # Retrieved here if the request ends before the next flush (the writer
            # serializes a late write with discard()).
            self.writing.add_done_callback(lambda done: done.cancelled() or done.exception())
        if force:
            await self._written()

    async def _written(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing


async def receive_raw(body: Body, upload: Incoming) -> None:
    """Stream a raw request body (``curl -T``) into ``upload``."""
    writer = BatchedWriter(upload)
    async for chunk in body:
        writer.add(chunk)
        await writer.flush()
    await writer.flush(force=True)


class MultipartReceiver:
    """Parse ``multipart/form-data`` as it arrives; the ``file`` part goes to an Incoming.

    ``open_upload(name)`` is called once the file part's headers name the file, so the
    caller can refuse a bad or taken name before any byte of it is stored.
    """

    def __init__(self, content_type: str, open_upload: OpenUpload) -> None:
        if not content_type.lower().startswith("multipart/form-data"):
            raise BadRequest("Send the file as multipart/form-data in field 'file'.")
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise BadRequest("Send the file as multipart/form-data with a boundary.")
        self.open_upload = open_upload
        self.name: str | None = None
        self.writer: BatchedWriter | None = None
        self.sha256: str | None = None
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._target: str | None = None
        self._small = bytearray()
        self._finished = False
        try:
            self.parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": self._part_begin,
                    "on_header_field": self._header_field,
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_end": self._end,
                },
            )
        except Exception as error:
            raise BadRequest(f"Bad multipart boundary: {error}") from None

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = self._value = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"").decode("latin-1")
        _, params = parse_options_header(disposition)
        field = params.get(b"name", b"").decode("latin-1")
        self._small.clear()
        self._target = field
        if field != "file":
            return
        if self.name is not None:
            raise BadRequest("Send exactly one 'file' field; this request has several.")
        raw_name = params.get(b"filename")
        if raw_name is None:
            raise BadRequest("The 'file' field has no filename; send it as a file upload.")
        try:
            self.name = check_name(html5_unescape(raw_name.decode("utf-8")))
        except UnicodeDecodeError:
            raise BadRequest("The file name is not valid UTF-8.") from None
        self.writer = BatchedWriter(None)  # opened by feed() once the parser returns

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "file":
            assert self.writer is not None
            self.writer.add(data[start:end])
        elif self._target == "sha256":
            self._small += data[start:end]
            if len(self._small) > 200:
                raise BadRequest("The 'sha256' field must be a 64-character hex digest.")

    def _part_end(self) -> None:
        if self._target == "sha256":
            self.sha256 = parse_checksum(self._small.decode("latin-1"), "The 'sha256' field")
        self._target = None

    def _end(self) -> None:
        self._finished = True

    async def feed(self, body: Body) -> None:
        """Consume the whole body; raise BadRequest for a malformed or incomplete form."""
        async for chunk in body:
            try:
                self.parser.write(chunk)
            except HTTPError:
                raise
            except Exception as error:
                raise BadRequest(f"Malformed multipart body: {error}") from None
            if self.writer is not None:
                if self.writer.upload is None:
                    assert self.name is not None
                    self.writer.upload = await self.open_upload(self.name)
                await self.writer.flush()
        if self.writer is not None:
            await self.writer.flush(force=True)
        if not self._finished:
            raise BadRequest("The multipart body ended early; send the complete form.")
        if self.name is None:
            raise BadRequest("No 'file' field in the form; send the package as field 'file'.")
