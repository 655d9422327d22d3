"""Read an upload body (raw, or multipart with a ``file`` field) into a storage Upload.

Bytes go straight from the socket into a hidden temp file in the storage directory: no
spooling to a system temp dir, no whole-file buffer. Disk writes and hashing run in a
worker thread, batched so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from .names import InvalidName, check_name
from .storage import Upload

#: Bytes gathered before one hop to the writer thread.
BATCH_SIZE = 1 << 20
#: Multipart framing allowed on top of MAX_UPLOAD_SIZE before Content-Length is refused.
MULTIPART_SLACK = 64 * 1024
_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


class Rejected(Exception):
    """The upload cannot be accepted; ``status`` and ``message`` form the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_checksum(value: str | None, source: str) -> str | None:
    """Accept ``<hex>`` or ``sha256:<hex>``; anything else is a 400."""
    if value is None or not value.strip():
        return None
    match = _SHA256.match(value.strip())
    if not match:
        raise Rejected(400, f"{source} must be a sha256 digest: 64 hexadecimal characters.")
    return match.group(1).lower()


def html5_unescape(filename: str) -> str:
    """Undo the escapes browsers and urllib3 apply to form file names (WHATWG HTML:
    ``"`` as %22, CR as %0D, LF as %0A), so the server sees the name the client meant."""
    return filename.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


class Body:
    """The request body as an async iterator that remembers whether it was read to the end
    and gives up (Rejected 408) when the client sends nothing for ``idle_timeout`` seconds.

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
                raise Rejected(
                    408, f"No bytes arrived for {self.idle_timeout:g} s; nothing was stored."
                ) from None
            yield chunk
        self.complete = True


class BatchedWriter:
    """Collects chunks and writes them to the Upload in a worker thread a batch at a time,
    while the next batch is being received (at most one write in flight)."""

    def __init__(self, upload: Upload) -> None:
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
        if self.pending and (force or self.pending_size >= BATCH_SIZE):
            batch = b"".join(self.pending)
            self.pending.clear()
            self.pending_size = 0
            await self._written()
            self.writing = asyncio.ensure_future(run_in_threadpool(self.upload.write, batch))
            # Retrieved here if the request ends before the next flush (Upload serializes
            # a late write with discard()).
            self.writing.add_done_callback(lambda done: done.cancelled() or done.exception())
        if force:
            await self._written()

    async def _written(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing


async def receive_raw(body: AsyncIterator[bytes], upload: Upload) -> None:
    """Stream a raw request body (``curl -T``) into ``upload``."""
    writer = BatchedWriter(upload)
    async for chunk in body:
        writer.add(chunk)
        await writer.flush()
    await writer.flush(force=True)


class MultipartReceiver:
    """Parse ``multipart/form-data`` as it arrives; the ``file`` part goes to an Upload.

    ``open_upload(name)`` is called once the file part's headers name the file, so the
    caller can refuse a bad or taken name before any byte of it is stored.
    """

    def __init__(self, content_type: str, open_upload: Callable[[str], Upload]) -> None:
        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise Rejected(400, "Send the file as multipart/form-data with a boundary.")
        self.open_upload = open_upload
        self.upload: Upload | None = None
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
            raise Rejected(400, f"Bad multipart boundary: {error}") from None

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
        if self.upload is not None:
            raise Rejected(400, "Send exactly one 'file' field; this request has several.")
        raw_name = params.get(b"filename")
        if raw_name is None:
            raise Rejected(400, "The 'file' field has no filename; send it as a file upload.")
        try:
            name = check_name(html5_unescape(raw_name.decode("utf-8")))
        except UnicodeDecodeError:
            raise Rejected(400, "The file name is not valid UTF-8.") from None
        except InvalidName as error:
            raise Rejected(400, str(error)) from None
        self.upload = self.open_upload(name)
        self.writer = BatchedWriter(self.upload)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "file":
            assert self.writer is not None
            self.writer.add(data[start:end])
        elif self._target == "sha256":
            self._small += data[start:end]
            if len(self._small) > 200:
                raise Rejected(400, "The 'sha256' field must be a 64-character hex digest.")

    def _part_end(self) -> None:
        if self._target == "sha256":
            self.sha256 = parse_checksum(self._small.decode("latin-1"), "The 'sha256' field")
        self._target = None

    def _end(self) -> None:
        self._finished = True

    async def feed(self, body: AsyncIterator[bytes]) -> None:
        """Consume the whole body; raise Rejected for a malformed or incomplete form."""
        async for chunk in body:
            try:
                self.parser.write(chunk)
            except Rejected:
                raise
            except Exception as error:
                raise Rejected(400, f"Malformed multipart body: {error}") from None
            if self.writer is not None:
                await self.writer.flush()
        if self.writer is not None:
            await self.writer.flush(force=True)
        if not self._finished:
            raise Rejected(400, "The multipart body ended early; send the complete form.")
        if self.upload is None:
            raise Rejected(400, "No 'file' field in the form; send the package as field 'file'.")
