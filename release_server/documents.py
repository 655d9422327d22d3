"""JSON documents serialized once per listing version and base URL, for cheap polling.

Bodies depend on the listing and on the base URL (Host, X-Forwarded-*, prefix), so the
cache is keyed by both and bounded by its total size; the ETag is derived from the body
itself, so two different bodies never share one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from .http import VARY_BASE_URL, json_bytes
from .storage import Listing

#: Total bytes of cached bodies; the oldest entries go first beyond it.
MAX_CACHE_BYTES = 64 * 1024 * 1024


class DocumentCache:
    """(kind, key) -> the body and ETag for the newest listing version seen, least
    recently used first out once the bodies add up to more than ``max_bytes``."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._bytes = 0

    async def get(
        self,
        listing: Listing,
        kind: str,
        key: str,
        build: Callable[[], Any],
        encode: Callable[[Any], bytes] = json_bytes,
    ) -> tuple[bytes, str]:
        """The body and ETag of a document (``encode(build())``: JSON unless told), built
        in a worker thread if not cached (a large one takes a while, and the event loop
        keeps serving meanwhile)."""
        cache_key = (kind, key)
        entry = self._entries.get(cache_key)
        if entry is not None and entry.version == listing.version:
            self._entries.move_to_end(cache_key)
            return entry.body, entry.etag
        body = await to_thread.run_sync(lambda: encode(build()))
        etag = body_etag(body)
        self._store(cache_key, _Entry(listing.version, body, etag))
        return body, etag

    def _store(self, cache_key: tuple[str, str], entry: _Entry) -> None:
        old = self._entries.pop(cache_key, None)
        if old is not None:
            self._bytes -= len(old.body)
        if len(entry.body) > self.max_bytes:
            return
        self._entries[cache_key] = entry
        self._bytes += len(entry.body)
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)


@dataclass(frozen=True, slots=True)
class _Entry:
    version: str
    body: bytes
    etag: str


def cached_response(
    request: Request, body: bytes, etag: str, media: str, vary: str = VARY_BASE_URL
) -> Response:
    """200 with the body, or 304 when the client already has exactly this body."""
    headers = {"etag": etag, "cache-control": "no-cache", "vary": vary}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type=media)


def document_response(request: Request, document: object, status: int = 200) -> Response:
    """A JSON document built now (small: one release), with the ETag every document has."""
    body = json_bytes(document)
    etag = body_etag(body)
    if status != 200:
        headers = {"etag": etag, "cache-control": "no-cache", "vary": VARY_BASE_URL}
        return Response(body, status, headers, media_type="application/json")
    return cached_response(request, body, etag, "application/json")


def body_etag(body: bytes) -> str:
    """A strong ETag derived from the body itself, so two bodies never share one."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
