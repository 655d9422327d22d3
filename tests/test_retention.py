"""Retention, files copied in by hand, and storage written by the earlier release-server."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import BOTH_BACKENDS, DIRECTORY_ONLY, ServerProcess, stored_names

pytestmark = BOTH_BACKENDS


def names(server: ServerProcess) -> list[str]:
    return [p["name"] for p in requests.get(f"{server.url}/packages", timeout=10).json()]


def test_newest_kept_and_pruned_returned(start_server) -> None:
    server = start_server(env={"MAX_PACKAGES": "3"})
    for index in range(3):
        assert server.upload(f"v{index}.zip", b"x").json()["pruned"] == []
    answer = server.upload("v3.zip", b"x").json()
    assert answer["pruned"] == ["v0.zip"]
    assert names(server) == ["v3.zip", "v2.zip", "v1.zip"]
    assert stored_names(server) == ["v1.zip", "v2.zip", "v3.zip"]
    assert any('"pruned"' in line and "v0.zip" in line for line in server.lines)


def test_overwrite_counts_as_newest(start_server) -> None:
    server = start_server(env={"MAX_PACKAGES": "2"})
    server.upload("a.zip", b"1")
    server.upload("b.zip", b"1")
    assert server.upload("a.zip", b"2", overwrite="true").json()["pruned"] == []
    assert server.upload("c.zip", b"1").json()["pruned"] == ["b.zip"]
    assert names(server) == ["c.zip", "a.zip"]


@DIRECTORY_ONLY("files copied in by hand")
def test_just_uploaded_never_pruned(start_server) -> None:
    """Files copied in by hand with future times look newer, yet the upload stays."""
    server = start_server(env={"MAX_PACKAGES": "2"})
    future = time.time() + 3600
    for name in ("future1.zip", "future2.zip"):
        (server.storage / name).write_bytes(b"f")
        os.utime(server.storage / name, (future, future))
    answer = server.upload("now.zip", b"n").json()
    assert answer["pruned"] == ["future2.zip"]
    assert sorted(names(server)) == ["future1.zip", "now.zip"]


def test_zero_means_unlimited(start_server) -> None:
    server = start_server(env={"MAX_PACKAGES": "0"})
    for index in range(15):
        assert server.upload(f"u{index}.bin", b"x").json()["pruned"] == []
    assert len(names(server)) == 15


def test_default_keeps_three_versions_per_family_and_no_cap(server: ServerProcess) -> None:
    for index in range(12):
        server.upload(f"d{index:02}.bin", b"x")  # no version: twelve families of one
    for minor in range(5):
        server.upload(f"tool-1.{minor}.zip", b"x")
    listed = names(server)
    assert len(listed) == 15
    assert [n for n in listed if n.startswith("tool-")] == [
        "tool-1.4.zip",
        "tool-1.3.zip",
        "tool-1.2.zip",
    ]


@DIRECTORY_ONLY("files copied in by hand")
def test_hand_copied_files_are_listed_served_and_counted(start_server, tmp_path) -> None:
    storage = tmp_path / "hand"
    storage.mkdir()
    (storage / "old.tar.gz").write_bytes(b"old bytes")
    os.utime(storage / "old.tar.gz", (1_000_000_000, 1_000_000_000))
    server = start_server(storage, env={"MAX_PACKAGES": "2"})
    listed = requests.get(f"{server.url}/packages", timeout=10).json()
    assert listed[0]["sha256"] == hashlib.sha256(b"old bytes").hexdigest()
    assert listed[0]["created_at"] == "2001-09-09T01:46:40Z"
    assert requests.get(f"{server.url}/assets/old.tar.gz", timeout=10).content == b"old bytes"
    (storage / "later.bin").write_bytes(b"later")  # added while running
    assert "later.bin" in names(server)
    assert server.upload("new1.zip", b"1").json()["pruned"] == ["old.tar.gz"]
    assert server.upload("new2.zip", b"2").json()["pruned"] == ["later.bin"]


@DIRECTORY_ONLY("hidden files and subdirectories in storage")
def test_hidden_and_odd_entries_are_ignored(server: ServerProcess) -> None:
    (server.storage / ".secret").write_bytes(b"s")
    (server.storage / "subdir").mkdir()
    server.upload("real.bin", b"r")
    assert names(server) == ["real.bin"]
    assert requests.get(f"{server.url}/assets/.secret", timeout=10).status_code == 400
    assert requests.get(f"{server.url}/assets/subdir", timeout=10).status_code == 404


@DIRECTORY_ONLY("the earlier release-server's sidecar files")
def test_legacy_sidecars(start_server, tmp_path) -> None:
    storage = tmp_path / "legacy"
    storage.mkdir()
    data = b"legacy package"
    digest = hashlib.sha256(data).hexdigest()
    (storage / "tool.zip").write_bytes(data)
    (storage / "tool.zip.sha256").write_text(digest)
    (storage / "other.zip").write_bytes(b"other")
    (storage / "other.zip.sha256").write_text("0" * 64)  # not the digest: a package
    (storage / "SHA256SUMS.sha256").write_text(f"{digest}  tool.zip\n")
    server = start_server(storage, env={"MAX_PACKAGES": "0"})
    listed = {p["name"]: p for p in requests.get(f"{server.url}/packages", timeout=10).json()}
    assert set(listed) == {"tool.zip", "other.zip", "other.zip.sha256", "SHA256SUMS.sha256"}
    assert listed["tool.zip"]["sha256"] == digest
    assert requests.delete(f"{server.url}/assets/tool.zip", headers=server.auth(), timeout=10)
    assert not (storage / "tool.zip.sha256").exists()


@DIRECTORY_ONLY("the earlier release-server's sidecar files")
def test_overwrite_removes_stale_sidecar(start_server, tmp_path) -> None:
    storage = tmp_path / "legacy2"
    storage.mkdir()
    (storage / "t.zip").write_bytes(b"v1")
    (storage / "t.zip.sha256").write_text(hashlib.sha256(b"v1").hexdigest())
    server = start_server(storage)
    assert server.upload("t.zip", b"v2", overwrite="true").status_code == 200
    assert names(server) == ["t.zip"]
    assert not (storage / "t.zip.sha256").exists()


@DIRECTORY_ONLY("the .meta directory")
def test_pruning_removes_metadata(start_server) -> None:
    server = start_server(env={"MAX_PACKAGES": "1"})
    server.upload("m1.bin", b"1")
    requests.get(f"{server.url}/assets/m1.bin", timeout=10)
    server.upload("m2.bin", b"2")
    meta = sorted(os.listdir(server.storage / ".meta"))
    assert len(meta) == 1 and meta[0].endswith(".sha256")


@pytest.mark.parametrize(
    ("servers", "workers"), [(1, "1"), (1, "2"), (2, "2")], ids=["1x1", "1x2", "2x2"]
)
def test_concurrent_uploads_leave_exactly_the_newest_n(
    start_server, tmp_path, servers: int, workers: str
) -> None:
    """Racing prunes (20 uploads at once, in one or two worker processes of one or two
    servers on the same storage) never remove more than the rule says: exactly
    MAX_PACKAGES remain."""
    started = [
        start_server(tmp_path / "race", env={"MAX_PACKAGES": "5"}, args=["--workers", workers])
        for _ in range(servers)
    ]

    def upload(index: int) -> requests.Response:
        return started[index % servers].upload(f"race-{index:02}.zip", b"x" * (index + 1))

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(upload, range(20)))
    assert [answer.status_code for answer in answers] == [200] * 20
    for server in started:  # a replica sees the other's writes within a second
        deadline = time.monotonic() + 3
        while len(listed := requests.get(f"{server.url}/packages", timeout=10).json()) != 5:
            assert time.monotonic() < deadline, [p["name"] for p in listed]
            time.sleep(0.1)
    pruned = {name for answer in answers for name in answer.json()["pruned"]}
    assert len(pruned) == 15 and pruned.isdisjoint(p["name"] for p in listed)
