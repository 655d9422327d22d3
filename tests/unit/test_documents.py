"""documents.py: the document cache is bounded by bytes and its ETags follow the body."""

from __future__ import annotations

import anyio

from release_server import github
from release_server.documents import DocumentCache, EncodedAssets
from release_server.http import json_bytes
from release_server.package import Package


def test_cache_stays_under_its_byte_bound_and_etags_follow_bodies() -> None:
    async def main() -> None:
        cache = DocumentCache(max_bytes=10_000)
        built: list[str] = []

        def build(key: str) -> object:
            built.append(key)
            return "x" * 3_000 + key

        for index in range(20):
            key = f"http://host-{index:02}"
            await cache.get("v1", "release", key, lambda key=key: build(key))
        assert cache._bytes <= 10_000
        body, etag = await cache.get("v1", "release", "a", lambda: build("a"))
        again, same = await cache.get("v1", "release", "a", lambda: build("a"))
        assert (again, same) == (body, etag) and built.count("a") == 1
        other, other_etag = await cache.get("v1", "release", "b", lambda: build("b"))
        assert len(other) == len(body) and other_etag != etag
        await cache.get("v2", "release", "a", lambda: build("a"))
        assert built.count("a") == 2  # a new listing version builds anew
        huge, _ = await cache.get("v2", "huge", "k", lambda: "y" * 20_000)
        assert len(huge) > 10_000 and cache._bytes <= 10_000  # served, not kept

    anyio.run(main)


def test_encoded_assets_give_the_release_document_byte_for_byte() -> None:
    """Whatever was cached before, a release's bytes are exactly its document encoded."""
    links = github.Links("http://h", "http://h/api/v3", "acme/tool")
    packages = [
        Package(
            f"tool-{index}-ünï\u2028.zip",
            index * 7,
            1_700_000_000_000_000_000 + index,
            f"{index:064x}",
            downloads=index,
        )
        for index in range(40)
    ]
    encoded = EncodedAssets(max_bytes=20_000)  # small: dropped and refilled along the way
    for count in (0, 1, 10, 40, 39):
        labels = {packages[0].name: 'the "first" one'}
        view = github.ReleaseView(7, "v1", "One", "notes", False, True, 0,
                                  packages[:count], "acme/tool/v1", labels)  # fmt: skip
        assert encoded.release_json(view, links) == json_bytes(github.release_document(view, links))
        root = github.root_view(packages[:count], 0)
        assert encoded.release_json(root, links) == json_bytes(github.release_document(root, links))
        listed = encoded.releases_json([view, root, view], links)
        assert listed == json_bytes([github.release_document(v, links) for v in (view, root, view)])
    assert encoded.releases_json([], links) == b"[]"
    assert encoded._bytes <= 20_000
