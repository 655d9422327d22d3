"""documents.py: the document cache is bounded by bytes and its ETags follow the body."""

from __future__ import annotations

import anyio

from release_server.documents import DocumentCache
from release_server.storage import Listing


def listing(version: str) -> Listing:
    return Listing((), 0, version)


def test_cache_stays_under_its_byte_bound_and_etags_follow_bodies() -> None:
    async def main() -> None:
        cache = DocumentCache(max_bytes=10_000)
        built: list[str] = []

        def build(key: str) -> object:
            built.append(key)
            return "x" * 3_000 + key

        for index in range(20):
            key = f"http://host-{index:02}"
            await cache.get(listing("v1"), "release", key, lambda key=key: build(key))
        assert cache._bytes <= 10_000
        body, etag = await cache.get(listing("v1"), "release", "a", lambda: build("a"))
        again, same = await cache.get(listing("v1"), "release", "a", lambda: build("a"))
        assert (again, same) == (body, etag) and built.count("a") == 1
        other, other_etag = await cache.get(listing("v1"), "release", "b", lambda: build("b"))
        assert len(other) == len(body) and other_etag != etag
        await cache.get(listing("v2"), "release", "a", lambda: build("a"))
        assert built.count("a") == 2  # a new listing version builds anew
        huge, _ = await cache.get(listing("v2"), "huge", "k", lambda: "y" * 20_000)
        assert len(huge) > 10_000 and cache._bytes <= 10_000  # served, not kept

    anyio.run(main)
