"""Releases below the root at GitHub's web paths, written with curl-style PUTs (SPEC §8.1,
§8.3, §8.4, §8.5): the bytes, the guarantees of §4, the latest link, hand-copied release
directories, and retention that keeps whole releases."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import requests
from conftest import ServerProcess

WEB = "/acme/tool/releases/download"


def put(server: ServerProcess, tag: str, name: str, data: bytes, **params: str):
    return requests.put(
        f"{server.url}{WEB}/{tag}/{name}", data=data, params=params, headers=server.auth(),
        timeout=10,
    )  # fmt: skip


def test_put_creates_the_release_and_get_serves_the_bytes(server: ServerProcess) -> None:
    created = put(server, "v1.0.0", "tool-1.0.0.zip", b"one")
    assert created.status_code == 201, created.text
    url = f"{server.url}{WEB}/v1.0.0/tool-1.0.0.zip"
    assert created.json()["url"] == url and created.headers["location"] == url
    download = requests.get(url, timeout=10)
    assert download.content == b"one"
    assert download.headers["etag"] == f'"{hashlib.sha256(b"one").hexdigest()}"'
    assert download.headers["content-disposition"] == 'attachment; filename="tool-1.0.0.zip"'
    part = requests.get(url, headers={"Range": "bytes=1-"}, timeout=10)
    assert part.status_code == 206 and part.content == b"ne"
    assert requests.head(url, timeout=10).headers["content-length"] == "3"
    # The root release is untouched.
    assert requests.get(server.url + "/packages", timeout=10).json() == []


def test_the_rules_of_every_write_path_hold(server: ServerProcess) -> None:
    assert put(server, "v1.0.0", "a.zip", b"first").status_code == 201
    taken = put(server, "v1.0.0", "a.zip", b"second")
    assert taken.status_code == 409
    assert put(server, "v1.0.0", "a.zip", b"", overwrite="true").status_code == 422
    wrong = requests.put(
        f"{server.url}{WEB}/v1.0.0/a.zip?overwrite=true", data=b"third", timeout=10,
        headers={**server.auth(), "X-Checksum-Sha256": "0" * 64},
    )  # fmt: skip
    assert wrong.status_code == 422
    assert requests.get(f"{server.url}{WEB}/v1.0.0/a.zip", timeout=10).content == b"first"
    replaced = put(server, "v1.0.0", "a.zip", b"fourth", overwrite="true")
    assert replaced.status_code == 200
    unauthorized = requests.put(f"{server.url}{WEB}/v1.0.0/b.zip", data=b"x", timeout=10)
    assert unauthorized.status_code == 401
    assert not list(server.storage.rglob(".tmp-*"))


@pytest.mark.parametrize(
    ("tag", "name"),
    [("latest", "a.zip"), ("v1", ".hidden"), ("v1", "%FF.zip"), ("%2E%2E", "a.zip"),
     ("v1", "a%5Cb.zip"), ("v" + "1" * 101, "a.zip")],
)  # fmt: skip
def test_bad_tags_and_names_are_400(server: ServerProcess, tag: str, name: str) -> None:
    answer = put(server, tag, name, b"x")
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"]
    assert not [p for p in server.storage.rglob("*") if ".meta" not in p.parts and p.is_file()]


def test_delete_and_missing_assets(server: ServerProcess) -> None:
    put(server, "v1.0.0", "a.zip", b"a")
    url = f"{server.url}{WEB}/v1.0.0/a.zip"
    assert requests.delete(url, timeout=10).status_code == 401
    assert requests.delete(url, headers=server.auth(), timeout=10).status_code == 204
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.delete(url, headers=server.auth(), timeout=10).status_code == 404


def test_latest_download_skips_pre_releases_and_follows_families(server: ServerProcess) -> None:
    put(server, "v1.0.0", "tool-1.0.0-linux.tar.gz", b"1.0")
    put(server, "v1.1.0", "tool-1.1.0-linux.tar.gz", b"1.1")
    put(server, "v1.1.0", "checksums.txt", b"sums")
    put(server, "v2.0.0-rc.1", "tool-2.0.0-rc.1-linux.tar.gz", b"rc")  # a pre-release
    latest = f"{server.url}/acme/tool/releases/latest/download"
    for name, target in (
        ("tool-linux.tar.gz", "v1.1.0/tool-1.1.0-linux.tar.gz"),
        ("tool-1.1.0-linux.tar.gz", "v1.1.0/tool-1.1.0-linux.tar.gz"),
        ("checksums.txt", "v1.1.0/checksums.txt"),
    ):
        answer = requests.get(f"{latest}/{name}", allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        assert answer.headers["location"] == f"{server.url}{WEB}/{target}"
    assert requests.get(f"{latest}/tool-linux.tar.gz", timeout=10).content == b"1.1"
    assert requests.get(f"{latest}/nothing.zip", timeout=10).status_code == 404
    assert (
        requests.get(f"{server.url}/nobody/none/releases/latest/download/a", timeout=10).status_code
        == 404
    )


def test_a_release_directory_copied_in_by_hand_is_published(server: ServerProcess) -> None:
    folder = server.storage / "acme" / "tool" / "v3.0.0"
    folder.mkdir(parents=True)
    (folder / "tool-3.0.0.zip").write_bytes(b"by hand")
    beta = server.storage / "acme" / "tool" / "v4.0.0-beta"
    beta.mkdir(parents=True)
    (beta / "tool-4.0.0-beta.zip").write_bytes(b"beta")
    answer = requests.get(f"{server.url}/acme/tool/releases/latest/download/tool.zip", timeout=10)
    assert answer.status_code == 200 and answer.content == b"by hand"


def test_hand_edits_inside_a_listed_release_show_within_seconds(server: ServerProcess) -> None:
    """A copy into an existing release and an edit of its metadata in place change
    neither the repository's stamp nor a cached listing at once; both show in every REST
    view within the ~2 s the README promises."""
    put(server, "v1.0.0", "a.zip", b"a")
    api = f"{server.url}/repos/acme/tool/releases"
    assert [a["name"] for a in requests.get(api, timeout=10).json()[0]["assets"]] == ["a.zip"]
    assert requests.get(f"{api}/tags/v1.0.0", timeout=10).status_code == 200
    folder = server.storage / "acme" / "tool" / "v1.0.0"
    (folder / "b.zip").write_bytes(b"by hand")
    meta = json.loads((folder / ".release.json").read_bytes())
    (folder / ".release.json").write_bytes(json.dumps({**meta, "body": "by hand"}).encode())
    deadline = time.monotonic() + 6
    while True:
        documents = [requests.get(url, timeout=10).json()
                     for url in (api, f"{api}/tags/v1.0.0", f"{api}/latest")]  # fmt: skip
        seen = [(sorted(a["name"] for a in d["assets"]), d["body"])
                for d in (documents[0][0], *documents[1:])]  # fmt: skip
        if seen == [(["a.zip", "b.zip"], "by hand")] * 3:
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def test_retention_keeps_the_newest_releases_whole(start_server) -> None:
    server = start_server(env={"MAX_VERSIONS": "2"})
    for tag in ("v1.0.0", "v1.1.0"):
        for name in (f"tool-{tag}-linux.zip", f"tool-{tag}-mac.zip"):
            assert put(server, tag, name, tag.encode()).json()["pruned"] == []
        time.sleep(0.01)
    answer = put(server, "v1.2.0", "tool-v1.2.0-linux.zip", b"new").json()
    assert sorted(answer["pruned"]) == [
        "acme/tool/v1.0.0/tool-v1.0.0-linux.zip",
        "acme/tool/v1.0.0/tool-v1.0.0-mac.zip",
    ]
    assert not (server.storage / "acme" / "tool" / "v1.0.0").exists()
    # A late asset for an old release: that release is never pruned by its own upload.
    late = put(server, "v1.1.0", "tool-v1.1.0-win.zip", b"late").json()
    assert late["pruned"] == []
    tags = sorted(p.name for p in (server.storage / "acme" / "tool").iterdir())
    assert tags == ["v1.1.0", "v1.2.0"]
    assert any(json.loads(line).get("msg") == "pruned a release" for line in server.lines)


def test_a_root_package_named_like_an_owner_is_a_conflict(server: ServerProcess) -> None:
    assert server.upload("acme", b"a root package").status_code == 200
    answer = put(server, "v1.0.0", "tool.zip", b"x")
    assert answer.status_code == 409, answer.text
    assert "already a package" in answer.json()["detail"]
    assert requests.get(f"{server.url}{WEB}/v1.0.0/tool.zip", timeout=10).status_code == 404
    assert requests.get(f"{server.url}/assets/acme", timeout=10).content == b"a root package"


def test_atom_feed_and_release_pages(server: ServerProcess) -> None:
    """What electron-updater's github provider reads: the feed's entries, newest first,
    each linking to /{o}/{r}/releases/tag/{tag}; and the pages those links open."""
    from xml.etree import ElementTree

    put(server, "v1.0.0", "app-1.0.0.AppImage", b"one")
    time.sleep(0.01)
    put(server, "v1.1.0", "app-1.1.0.AppImage", b"two")
    feed = requests.get(f"{server.url}/acme/tool/releases.atom", timeout=10)
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("application/atom+xml")
    atom = "{http://www.w3.org/2005/Atom}"
    entries = ElementTree.fromstring(feed.content).findall(f"{atom}entry")
    links = [e.find(f"{atom}link").get("href") for e in entries]  # type: ignore[union-attr]
    assert links == [
        f"{server.url}/acme/tool/releases/tag/v1.1.0",
        f"{server.url}/acme/tool/releases/tag/v1.0.0",
    ]
    for link in links:
        page = requests.get(link, timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/acme/tool/releases/download/" in page.text
    listing = requests.get(f"{server.url}/acme/tool/releases", timeout=10)
    assert listing.status_code == 200 and "v1.1.0" in listing.text and "v1.0.0" in listing.text
    assert requests.get(f"{server.url}/nobody/none/releases.atom", timeout=10).status_code == 404


def test_drafts_and_odd_tags_through_the_rest_api(server: ServerProcess) -> None:
    put(server, "v1.0.0", "a.zip", b"a")
    api = f"{server.url}/repos/acme/tool/releases"
    draft = requests.post(
        api, json={"tag_name": "v2.0.0", "draft": True}, headers=server.auth(), timeout=10
    )
    assert draft.status_code == 201, draft.text
    draft_id = draft.json()["id"]
    for url in (f"{api}/tags/v2.0.0", f"{api}/{draft_id}"):
        assert requests.get(url, timeout=10).status_code == 404
        assert requests.get(url, headers=server.auth(), timeout=10).json()["draft"] is True
    assert [r["tag_name"] for r in requests.get(api, timeout=10).json()] == ["v1.0.0"]
    for odd in ("%2E%2E", "..%2Fv1.0.0", "latest"):
        assert requests.get(f"{api}/tags/{odd}", timeout=10).status_code == 404, odd
    assert requests.get(f"{api}/tags/v1.0.0", timeout=10).json()["assets"][0]["name"] == "a.zip"


def test_the_default_repository_s_latest_download_is_its_root_release(
    server: ServerProcess,
) -> None:
    """REST ``/repos/{default}/releases/latest`` answers the root release, so its web path
    ``/{default}/releases/latest/download/NAME`` serves the root release's files too."""
    server.upload("app-1.0.zip", b"root one")
    server.upload("app-1.1.zip", b"root newer")
    below = requests.put(
        f"{server.url}/local/packages/releases/download/v9.0.0/app-9.0.zip", data=b"below",
        headers=server.auth(), timeout=10,
    )  # fmt: skip
    assert below.status_code == 201, below.text
    rest = requests.get(f"{server.url}/repos/local/packages/releases/latest", timeout=10).json()
    assert rest["tag_name"] == "latest"
    urls = {asset["name"]: asset["browser_download_url"] for asset in rest["assets"]}
    latest = f"{server.url}/local/packages/releases/latest/download"
    for name, target in (("app.zip", "app-1.1.zip"), ("app-1.0.zip", "app-1.0.zip")):
        answer = requests.get(f"{latest}/{name}", allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        assert answer.headers["location"] == urls[target]
    assert requests.get(f"{latest}/app.zip", timeout=10).content == b"root newer"
    missing = requests.get(f"{latest}/app-9.0.zip", timeout=10)
    assert missing.status_code == 404 and "root release" in missing.json()["detail"]


def test_cached_release_lists_follow_writes_of_other_processes_at_once(start_server) -> None:
    """Each server keeps a repository's releases between requests (1,000 releases are too
    many to read per request), revalidated against the repository's stamp, which every
    write by any process changes; a hand edit inside a release shows within seconds."""
    one = start_server()
    two = start_server(storage=one.storage)
    releases = "/repos/acme/tool/releases"
    put(one, "v1.0.0", "a.zip", b"a")
    assert [r["tag_name"] for r in requests.get(two.url + releases, timeout=10).json()] == [
        "v1.0.0"]  # fmt: skip
    for server, tag in ((one, "v1.1.0"), (two, "v1.2.0"), (one, "v1.3.0")):
        put(server, tag, "a.zip", tag.encode())
        for reader in (one, two):
            listed = requests.get(reader.url + releases, timeout=10).json()
            assert listed[0]["tag_name"] == tag
            latest = requests.get(f"{reader.url}/acme/tool/releases/latest/download/a.zip",
                                  timeout=10)  # fmt: skip
            assert latest.content == tag.encode()
    assert requests.delete(f"{two.url}{WEB}/v1.3.0/a.zip", headers=two.auth(), timeout=10).ok
    assets = requests.get(one.url + releases, timeout=10).json()[0]["assets"]
    assert assets == []
    (one.storage / "acme" / "tool" / "v1.2.0" / "by-hand.txt").write_bytes(b"hand")
    deadline = time.monotonic() + 10
    while True:
        listed = requests.get(one.url + releases, timeout=10).json()
        names = [a["name"] for r in listed if r["tag_name"] == "v1.2.0" for a in r["assets"]]
        if "by-hand.txt" in names:
            break
        assert time.monotonic() < deadline, names
        time.sleep(0.2)
