"""Send a stored file: conditional requests, single byte ranges, and a streamed body.

The file is read from a storage Reader pinned before the headers are sent, so a download
in flight when the name is replaced or deleted completes with the old bytes, intact.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import quote

import anyio
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .errors import RangeNotSatisfiable
from .logs import log_event
from .media import content_type
from .storage import Reader

READ_SIZE = 1 << 20
#: The ASGI extension by which an engine (Granian) sends a file by name, without Python.
PATHSEND = "http.response.pathsend"
#: Smaller files are cheaper to read and send than to link for the engine and unlink.
PATHSEND_MIN_BYTES = 64 * 1024
logger = logging.getLogger("release_server.download")
#: Positions longer than 18 digits are beyond any file; such a header is ignored.
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and an RFC 6266 ``filename*`` when needed."""
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace('"', "_")
    ascii_name = ascii_name.replace("?", "_") if ascii_name != name else ascii_name
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One byte range as (first, last); None when the header is malformed or asks for
    several ranges (the whole file is sent). Raises RangeNotSatisfiable."""
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or match.group(1) == match.group(2) == "":
        return None
    first_text, last_text = match.groups()
    if first_text == "":
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(size - length, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, min(int(last_text) if last_text else size - 1, size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def _not_modified_since(header: str, mtime: float) -> bool:
    try:
        return int(mtime) <= parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


class FileDownload(Response):
    """The answer to GET/HEAD of a package, built from a pinned Reader it then owns.
    Raises RangeNotSatisfiable (the caller still owns the reader then)."""

    def __init__(
        self,
        reader: Reader,
        request_headers: Headers,
        *,
        head: bool,
        media_type: str | None = None,
        on_complete: Callable[[], Awaitable[None]] | None = None,
        stall_timeout: float = 60.0,
    ) -> None:
        self.reader = reader
        package = reader.package
        name = self.name = package.name
        self.stall_timeout = stall_timeout
        self.head = head
        self.on_complete = on_complete
        self.background = None
        size = package.size
        mtime = package.mtime_ns / 1e9
        etag = f'"{package.sha256}"'
        headers = {
            "etag": etag,
            "last-modified": formatdate(mtime, usegmt=True),
            "accept-ranges": "bytes",
            "cache-control": "no-cache",
        }
        self.first, self.length = 0, size
        self.status_code = 200
        if_none_match = request_headers.get("if-none-match")
        if_modified_since = request_headers.get("if-modified-since")
        if (if_none_match is not None and _etag_matches(if_none_match, etag)) or (
            if_none_match is None
            and if_modified_since
            and _not_modified_since(if_modified_since, mtime)
        ):
            self.status_code, self.length = 304, 0
        else:
            headers["content-type"] = media_type or content_type(name)
            headers["content-disposition"] = content_disposition(name)
            wanted = self._range(request_headers, size, etag)
            if wanted:
                self.status_code = 206
                self.first, last = wanted
                self.length = last - self.first + 1
                headers["content-range"] = f"bytes {self.first}-{last}/{size}"
            headers["content-length"] = str(self.length)
        self.full = self.status_code == 200
        self.sent_all = False
        self.body = b""
        self.init_headers(headers)

    @staticmethod
    def _range(request_headers: Headers, size: int, etag: str) -> tuple[int, int] | None:
        header = request_headers.get("range")
        if header is None:
            return None
        if_range = request_headers.get("if-range")
        if if_range is not None and if_range.strip() != etag:
            return None
        return parse_range(header, size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self._by_path(scope):
                path = await self.reader.local_path()
                if path is not None:
                    await self._send_path(send, path)
                    return
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if self.head or self.length == 0:
                await send({"type": "http.response.body", "body": b""})
                return
            if self.length <= READ_SIZE:  # one read, one send: nothing to watch meanwhile
                await self._stream(send)
            else:
                await self._stream_watched(send, receive)
            if self.full and self.sent_all and self.on_complete is not None:
                await self.on_complete()
        finally:
            with anyio.CancelScope(shield=True):
                await self.reader.close()

    async def _stream_watched(self, send: Send, receive: Receive) -> None:
        """Stream a body of several chunks, stopping as soon as the client disconnects."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._cancel_on_disconnect, receive, group.cancel_scope)
            await self._stream(send)
            group.cancel_scope.cancel()

    def _by_path(self, scope: Scope) -> bool:
        """Whether the engine should send this answer itself: a whole, large file."""
        large = self.length >= PATHSEND_MIN_BYTES
        return self.full and not self.head and large and PATHSEND in scope.get("extensions", {})

    async def _send_path(self, send: Send, path: str) -> None:
        """The engine sends the file itself (zero-copy); it only says it has taken it over,
        so the download is counted then. A client that stops reading is dropped by the
        kernel (TCP_USER_TIMEOUT on the listening socket, READ_TIMEOUT)."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": PATHSEND, "path": path})
        if self.on_complete is not None:
            await self.on_complete()

    async def _stream(self, send: Send) -> None:
        offset, remaining = self.first, self.length
        while remaining > 0:
            chunk = await self.reader.read(offset, min(READ_SIZE, remaining))
            if not chunk:
                raise OSError("file shrank while it was being sent")
            offset += len(chunk)
            remaining -= len(chunk)
            message = {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
            # A client that stops reading makes send() wait; give up after READ_TIMEOUT
            # (the kernel drops the connection too: see cli.ServerConfig).
            with anyio.move_on_after(self.stall_timeout) as waited:
                await send(message)
            if waited.cancelled_caught:
                log_event(logger, "download abandoned: the client stopped reading", name=self.name)
                return
        self.sent_all = True

    @staticmethod
    async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return
