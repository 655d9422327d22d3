"""``/`` is the index of the root release and the repositories (SPEC §8.4), and the release
pages list what the REST API lists: JSON for clients, a page for browsers."""

from __future__ import annotations

import time

import requests
from conftest import ServerProcess

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def put(server: ServerProcess, repository: str, tag: str, name: str) -> None:
    url = f"{server.url}/{repository}/releases/download/{tag}/{name}"
    answer = requests.put(url, data=name.encode(), headers=server.auth(), timeout=10)
    assert answer.status_code == 201, answer.text
    time.sleep(0.01)


def test_the_index_lists_the_root_release_and_every_repository(server: ServerProcess) -> None:
    empty = requests.get(server.url + "/", timeout=10)
    assert empty.status_code == 200 and empty.headers["content-type"] == "application/json"
    assert empty.json()["repositories"] == []
    assert empty.json()["root"]["packages"] == 0
    server.upload("app-1.0.zip", b"root")
    put(server, "acme/tool", "v1.0.0", "tool-1.0.0.zip")
    put(server, "acme/tool", "v2.0.0-rc.1", "tool-2.0.0-rc.1.zip")
    put(server, "acme/beta", "v0.1.0-beta", "beta.zip")  # only a pre-release
    index = requests.get(server.url + "/", timeout=10).json()
    assert index["root"] == {
        "full_name": "local/packages", "tag_name": "latest", "packages": 1,
        "updated_at": index["root"]["updated_at"], "html_url": f"{server.url}/packages",
        "url": f"{server.url}/latest",
    }  # fmt: skip
    assert [(r["full_name"], r["releases"], r["latest"]) for r in index["repositories"]] == [
        ("acme/beta", 1, None),
        ("acme/tool", 2, "v1.0.0"),
    ]
    tool = index["repositories"][1]
    assert tool["html_url"] == f"{server.url}/acme/tool/releases"
    assert tool["url"] == f"{server.url}/repos/acme/tool"
    for url in (tool["html_url"], tool["url"], index["root"]["url"]):
        assert requests.get(url, timeout=10).status_code == 200, url
    latest = requests.get(f"{tool['url']}/releases/latest", timeout=10).json()
    assert latest["tag_name"] == tool["latest"]

    page = requests.get(server.url + "/", headers=HTML, timeout=10)
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["vary"].startswith("Accept")
    assert "Content-Security-Policy" in page.headers
    for text in ("acme/tool", "acme/beta", "local/packages", "/acme/tool/releases/tag/v1.0.0"):
        assert text in page.text, text
    forced = requests.get(server.url + "/?format=json", headers=HTML, timeout=10)
    assert forced.json() == index
    assert requests.get(server.url + "/?format=xml", timeout=10).status_code == 422


def test_release_pages_show_the_files_and_mark_the_latest(server: ServerProcess) -> None:
    put(server, "acme/tool", "v1.0.0", "tool-1.0.0-linux.tar.gz")
    put(server, "acme/tool", "v1.1.0", "tool-1.1.0-linux.tar.gz")
    put(server, "acme/tool", "v1.1.0", "checksums.txt")
    listing = requests.get(f"{server.url}/acme/tool/releases", timeout=10)
    assert listing.status_code == 200
    assert listing.text.index("v1.1.0") < listing.text.index("v1.0.0")
    assert listing.text.count('class="badge latest"') == 1
    tag = requests.get(f"{server.url}/acme/tool/releases/tag/v1.1.0", timeout=10)
    assert tag.status_code == 200
    assert 'class="files"' in tag.text and 'class="badge latest"' in tag.text
    assert f'data-latest="{server.url}/acme/tool/releases/latest/download/"' in tag.text
    assert f"{server.url}/acme/tool/releases/download/v1.1.0/checksums.txt" in tag.text
    older = requests.get(f"{server.url}/acme/tool/releases/tag/v1.0.0", timeout=10)
    assert 'class="badge latest"' not in older.text
    # The default repository's page lists its root release, which is its latest.
    server.upload("app-1.0.zip", b"root")
    own = requests.get(f"{server.url}/local/packages/releases", timeout=10)
    assert own.status_code == 200 and f'href="{server.url}/packages"' in own.text
    assert requests.get(f"{server.url}/nobody/none/releases", timeout=10).status_code == 404
