"""github.py: GitHub's release shape, built from packages and links."""

from __future__ import annotations

from release_server.github import Links, asset_id, release_document, release_id, root_view

from .helpers import pkg


def test_release_document_shape() -> None:
    links = Links("http://h", "http://h/api/v3", "o/r")
    document = release_document(root_view([pkg("new", 2), pkg("old", 1)], 0), links)
    assets = document["assets"]
    assert isinstance(assets, list)
    assert [a["name"] for a in assets] == ["new", "old"]
    assert assets[0]["id"] == asset_id("new") != asset_id("old")
    assert document["url"] == "http://h/api/v3/repos/o/r/releases/1"
    assert assets[0]["browser_download_url"] == "http://h/assets/new"
    assert release_document(root_view([], 0), links)["published_at"] == "1970-01-01T00:00:00Z"


def test_ids_are_stable_and_distinct_between_releases() -> None:
    assert (
        asset_id("a.zip") != asset_id("a.zip", "acme/tool/v1") != asset_id("a.zip", "acme/tool/v2")
    )
    assert release_id("acme/tool/v1") == release_id("acme/tool/v1") != 1
    assert 1 < release_id("acme/tool/v1") < 2**53
