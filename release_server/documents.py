"""JSON documents serialized once per version (of a listing, a release) and base URL, for
cheap polling.

Bodies depend on what they show and on the base URL (Host, X-Forwarded-*, prefix), so the
cache is keyed by both and bounded by its total size; the ETag is derived from the body
itself, so two different bodies never share one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from . import github
from .http import VARY_BASE_URL, json_bytes
from .package import Package

#: Total bytes of cached bodies; the oldest entries go first beyond it.
MAX_CACHE_BYTES = 64 * 1024 * 1024
#: Total bytes of encoded assets kept; all are dropped beyond it (and encoded anew).
MAX_ASSET_BYTES = 32 * 1024 * 1024


class DocumentCache:
    """(kind, key) -> the body and ETag for the newest version seen, least
    recently used first out once the bodies add up to more than ``max_bytes``."""

    def __init__(self, max_bytes: int = MAX_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._bytes = 0

    async def get(
        self,
        version: str,
        kind: str,
        key: str,
        build: Callable[[], Any],
        encode: Callable[[Any], bytes] = json_bytes,
    ) -> tuple[bytes, str]:
        """The body and ETag of a document (``encode(build())``: JSON unless told) of
        what has ``version`` (a listing's, a release's), built in a worker thread if not
        cached (a large one takes a while, and the event loop keeps serving meanwhile)."""
        cache_key = (kind, key)
        entry = self._entries.get(cache_key)
        if entry is not None and entry.version == version:
            self._entries.move_to_end(cache_key)
            return entry.body, entry.etag
        body = await to_thread.run_sync(lambda: encode(build()))
        etag = body_etag(body)
        self._store(cache_key, _Entry(version, body, etag))
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


class EncodedAssets:
    """Release documents whose assets are JSON-encoded once each, not at every rebuild.

    A release of 1,000 packages is a 1.4 MB document; encoding it whole takes ~30 ms that
    hold the GIL, so every request in the process waits while an upload's new version is
    rebuilt. With each asset's bytes kept (keyed by everything its document shows), a
    rebuild encodes the new asset and joins the others: a few milliseconds."""

    def __init__(self, max_bytes: int = MAX_ASSET_BYTES) -> None:
        self.max_bytes = max_bytes
        self._encoded: dict[tuple[object, ...], bytes] = {}
        self._bytes = 0

    def release_json(self, view: github.ReleaseView, links: github.Links) -> bytes:
        """``json_bytes(github.release_document(view, links))``, byte for byte."""
        user = github.user_document(links)
        head = json_bytes({**github.release_fields(view, links, user), "assets": []})
        assert head.endswith(b"[]}")  # assets is the last field
        assets = b",".join(self._asset(p, links, user, view) for p in view.assets)
        return head[:-2] + assets + b"]}"

    def releases_json(self, views: Iterable[github.ReleaseView], links: github.Links) -> bytes:
        """``json_bytes([release_document(view, links) for view in views])``, byte for byte."""
        return b"[" + b",".join(self.release_json(view, links) for view in views) + b"]"

    def _asset(
        self,
        package: Package,
        links: github.Links,
        user: dict[str, object],
        view: github.ReleaseView,
    ) -> bytes:
        label = view.labels.get(package.name, "")
        key = (package, links, view.key, label)
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = json_bytes(github.asset_document(package, links, user, view.key, label))
            if self._bytes + len(encoded) > self.max_bytes:
                self._encoded, self._bytes = {}, 0
            self._encoded[key] = encoded
            self._bytes += len(encoded)
        return encoded


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
