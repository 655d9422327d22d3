"""The GitHub-shaped documents: /latest and the /repos/... REST routes, at / and /api/v3."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from conftest import ServerProcess

RELEASE_KEYS = {
    "url", "html_url", "assets_url", "upload_url", "tarball_url", "zipball_url", "id",
    "node_id", "tag_name", "target_commitish", "name", "body", "draft", "prerelease",
    "immutable", "created_at", "published_at", "author", "assets",
}  # fmt: skip
ASSET_KEYS = {
    "url", "id", "node_id", "name", "label", "uploader", "content_type", "state", "size",
    "digest", "download_count", "created_at", "updated_at", "browser_download_url",
}  # fmt: skip
USER_KEYS = {
    "login", "id", "node_id", "avatar_url", "gravatar_id", "url", "html_url", "followers_url",
    "following_url", "gists_url", "starred_url", "subscriptions_url", "organizations_url",
    "repos_url", "events_url", "received_events_url", "type", "site_admin",
}  # fmt: skip


@pytest.fixture
def published(server: ServerProcess) -> ServerProcess:
    for index, name in enumerate(["first.tar.gz", "second.zip", "third file é.json"]):
        assert server.upload(name, f"content {index}".encode()).status_code == 200
    requests.get(f"{server.url}/assets/second.zip", timeout=10)
    return server


def urls_in(document: object) -> list[str]:
    """Every URL-valued string in a JSON document, with URI templates removed."""
    found: list[str] = []
    if isinstance(document, dict):
        for value in document.values():
            found += urls_in(value)
    elif isinstance(document, list):
        for value in document:
            found += urls_in(value)
    elif isinstance(document, str) and re.match(r"^https?://", document):
        found.append(re.sub(r"\{[^}]*\}", "", document))
    return found


def test_latest_has_every_github_key(published: ServerProcess) -> None:
    release = requests.get(f"{published.url}/latest", timeout=10).json()
    assert set(release) >= RELEASE_KEYS
    assert release["tag_name"] == "latest"
    assert release["draft"] is False and release["prerelease"] is False
    assert set(release["author"]) >= USER_KEYS
    assert [a["name"] for a in release["assets"]] == [
        "third file é.json",
        "second.zip",
        "first.tar.gz",
    ]
    for asset in release["assets"]:
        assert set(asset) >= ASSET_KEYS
        assert asset["state"] == "uploaded"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", asset["digest"])
        assert isinstance(asset["id"], int) and 0 < asset["id"] < 2**53
    by_name = {a["name"]: a for a in release["assets"]}
    assert by_name["third file é.json"]["content_type"] == "application/json"
    assert by_name["second.zip"]["download_count"] >= 0


def test_asset_ids_are_stable_across_restarts(start_server, tmp_path) -> None:
    server = start_server(tmp_path / "d")
    server.upload("stable.bin", b"1")
    first = requests.get(f"{server.url}/latest", timeout=10).json()["assets"][0]["id"]
    server.stop()
    again = start_server(tmp_path / "d")
    assert requests.get(f"{again.url}/latest", timeout=10).json()["assets"][0]["id"] == first


@pytest.mark.parametrize("prefix", ["", "/api/v3"])
def test_every_url_in_the_documents_resolves(published: ServerProcess, prefix: str) -> None:
    documents = [
        f"{published.url}/latest",
        f"{published.url}{prefix}/repos/local/packages/releases/latest",
        f"{published.url}{prefix}/repos/local/packages/releases",
    ]
    seen: set[str] = set()
    for document_url in documents:
        document = requests.get(document_url, timeout=10).json()
        for url in urls_in(document):
            assert url.startswith(published.url), url
            if document_url != documents[0]:
                # Downloads, the page, the avatar, and the upload URL (GitHub Enterprise's
                # /api/uploads, whatever the API prefix) are outside the API prefix.
                api_url = not url.startswith(
                    tuple(f"{published.url}{path}"
                          for path in ("/assets/", "/packages", "/avatar.svg", "/api/uploads/"))
                )  # fmt: skip
                if api_url:
                    assert url.startswith(published.url + prefix), url
            if url in seen:
                continue
            seen.add(url)
            response = requests.get(url, timeout=10)
            assert response.status_code == 200, (url, response.status_code)
    assert len(seen) > 10


@pytest.mark.parametrize("prefix", ["", "/api/v3"])
def test_repo_routes(published: ServerProcess, prefix: str) -> None:
    base = f"{published.url}{prefix}/repos/local/packages/releases"
    latest = requests.get(f"{base}/latest", timeout=10).json()
    assert latest["url"] == f"{base}/1"
    assert requests.get(f"{base}/tags/latest", timeout=10).json()["id"] == 1
    assert requests.get(f"{base}/1", timeout=10).json()["tag_name"] == "latest"
    assert requests.get(f"{base}/2", timeout=10).status_code == 404
    assert requests.get(f"{base}/tags/v9", timeout=10).status_code == 404
    releases = requests.get(base, timeout=10)
    assert [r["id"] for r in releases.json()] == [1]
    assets = requests.get(f"{base}/1/assets", timeout=10).json()
    assert [a["name"] for a in assets] == [a["name"] for a in latest["assets"]]
    one = latest["assets"][0]
    assert requests.get(one["url"], timeout=10).json()["name"] == one["name"]
    raw = requests.get(one["url"], headers={"Accept": "application/octet-stream"}, timeout=10)
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.content == requests.get(one["browser_download_url"], timeout=10).content
    assert raw.history == []
    assert requests.get(f"{base}/assets/12345", timeout=10).status_code == 404


def test_asset_octet_stream_content_type(published: ServerProcess) -> None:
    asset = requests.get(f"{published.url}/latest", timeout=10).json()["assets"][0]
    raw = requests.get(asset["url"], headers={"Accept": "application/octet-stream"}, timeout=10)
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.content == b"content 2"


def test_pagination_and_link_headers(server: ServerProcess) -> None:
    for index in range(5):
        server.upload(f"p{index}.bin", b"x")
    base = f"{server.url}/repos/local/packages/releases/1/assets"
    page1 = requests.get(base, params={"per_page": 2}, timeout=10)
    assert len(page1.json()) == 2
    assert 'rel="next"' in page1.headers["link"] and 'rel="last"' in page1.headers["link"]
    page3 = requests.get(base, params={"per_page": 2, "page": 3}, timeout=10)
    assert len(page3.json()) == 1
    assert 'rel="prev"' in page3.headers["link"] and 'rel="next"' not in page3.headers["link"]
    names = [a["name"] for page in (1, 2, 3) for a in requests.get(
        base, params={"per_page": 2, "page": page}, timeout=10).json()]  # fmt: skip
    assert sorted(names) == [f"p{i}.bin" for i in range(5)]
    assert requests.get(base, params={"per_page": "x"}, timeout=10).status_code == 422


def test_links_follow_host_and_forwarded_headers(start_server) -> None:
    server = start_server(env={"TRUST_PROXY": "1", "REPOSITORY": "team/templates"})
    server.upload("a.zip", b"a")
    plain = requests.get(f"{server.url}/latest", timeout=10).json()
    assert plain["url"] == f"{server.url}/repos/team/templates/releases/1"
    proxied = requests.get(
        f"{server.url}/latest",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "releases.example"},
        timeout=10,
    ).json()
    assert proxied["assets"][0]["browser_download_url"] == "https://releases.example/assets/a.zip"


def test_forwarded_headers_ignored_without_trust_proxy(server: ServerProcess) -> None:
    server.upload("a.zip", b"a")
    document = requests.get(
        f"{server.url}/latest",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
        timeout=10,
    ).json()
    assert document["assets"][0]["browser_download_url"] == f"{server.url}/assets/a.zip"


def test_public_url_setting(start_server) -> None:
    server = start_server(env={"PUBLIC_URL": "https://dl.example/releases/"})
    server.upload("a.zip", b"a")
    document = requests.get(f"{server.url}/latest", timeout=10).json()
    assert document["html_url"] == "https://dl.example/releases/packages"
    assert document["assets"][0]["browser_download_url"] == (
        "https://dl.example/releases/assets/a.zip"
    )


def test_download_count_is_real(server: ServerProcess) -> None:
    server.upload("counted.bin", b"c" * 1000)
    for _ in range(3):
        requests.get(f"{server.url}/assets/counted.bin", timeout=10)
    requests.head(f"{server.url}/assets/counted.bin", timeout=10)
    requests.get(f"{server.url}/assets/counted.bin", headers={"Range": "bytes=0-9"}, timeout=10)
    deadline = time.monotonic() + 5
    while True:
        asset = requests.get(f"{server.url}/latest", timeout=10).json()["assets"][0]
        if asset["download_count"] == 3 or time.monotonic() > deadline:
            break
    assert asset["download_count"] == 3
    listed = requests.get(f"{server.url}/packages", timeout=10).json()[0]
    assert listed["downloads"] == 3


def test_download_counts_written_at_a_graceful_stop(start_server) -> None:
    """Counts wait half a second in memory; a SIGTERM right after the downloads still
    writes them, and every request's access line (two workers: engines end worker
    processes without running atexit)."""
    first = start_server(args=["--workers", "2"])
    first.upload("counted.bin", b"c" * 1000)
    for _ in range(4):
        assert requests.get(f"{first.url}/assets/counted.bin", timeout=10).status_code == 200
    assert first.stop() == 0
    logged = [json.loads(line) for line in first.lines if line.startswith("{")]
    requested = [(e["method"], e["path"]) for e in logged if e.get("msg") == "request"]
    assert requested.count(("GET", "/assets/counted.bin")) == 4
    second = start_server(storage=first.storage)
    asset = requests.get(f"{second.url}/latest", timeout=10).json()["assets"][0]
    assert asset["download_count"] == 4


def test_empty_storage_latest(server: ServerProcess) -> None:
    release = requests.get(f"{server.url}/latest", timeout=10)
    assert release.status_code == 200
    assert release.json()["assets"] == []


def test_latest_etag_304(server: ServerProcess) -> None:
    server.upload("e.bin", b"e")
    first = requests.get(f"{server.url}/latest", timeout=10)
    again = requests.get(
        f"{server.url}/latest", headers={"If-None-Match": first.headers["etag"]}, timeout=10
    )
    assert again.status_code == 304
    server.upload("f.bin", b"f")
    changed = requests.get(
        f"{server.url}/latest", headers={"If-None-Match": first.headers["etag"]}, timeout=10
    )
    assert changed.status_code == 200
    assert len(changed.json()["assets"]) == 2
