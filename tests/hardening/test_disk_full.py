"""Disk full: the storage directory on a real 8 MiB tmpfs that runs out of space.

An upload that does not fit must answer 507, leave no partial file, give the space back,
keep every earlier package intact, and not stop the next upload that fits. /readyz reports
the condition while it lasts.

Directory backend only: a bucket does not run out of space the way a filesystem does
(no ENOSPC to provoke), so there is no S3 counterpart of these tests.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import requests
from conftest import TOKEN, ServerProcess

from .helpers import (
    MiB,
    Reply,
    bearer,
    build_head,
    exchange,
    free_bytes,
    packages_on_disk,
    put_raw,
    server_connections,
    sha256,
    small_chunks,
    temp_files,
    upload_multipart,
    wait_until,
)

pytestmark = pytest.mark.hardening

#: Space a failed upload may leave in use (tmpfs pages of metadata, directory entries).
SLACK = 64 * 1024


def listed(server: ServerProcess) -> dict[str, str]:
    response = requests.get(f"{server.url}/packages", timeout=10)
    assert response.status_code == 200
    return {package["name"]: package["sha256"] for package in response.json()}


def assert_intact(server: ServerProcess, expected: dict[str, bytes]) -> None:
    """Every earlier package is still listed, on disk and downloadable, byte for byte."""
    digests = {name: sha256(data) for name, data in expected.items()}
    assert packages_on_disk(server.storage) == digests
    assert listed(server) == digests
    for name, data in expected.items():
        download = requests.get(f"{server.url}/assets/{name}", timeout=10)
        assert download.status_code == 200
        assert download.content == data


def assert_507(reply: Reply | None) -> None:
    assert reply is not None, "the server closed the connection instead of answering 507"
    assert reply.status == 507, reply
    detail = reply.json()
    assert isinstance(detail, dict)
    assert "full" in str(detail["detail"])


def fill(volume: Path) -> Path:
    """Write a file beside the storage directory until the volume has no space left."""
    filler = volume / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for piece in (MiB, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * piece)
            except OSError as error:
                assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert free_bytes(volume) == 0
    return filler


def test_upload_that_does_not_fit_answers_507_and_harms_nothing(
    small_volume: Path, start_server
) -> None:
    """Multipart, raw PUT and overwrite of an existing name, each larger than the volume."""
    server: ServerProcess = start_server(small_volume / "data")
    earlier = {"first.bin": os.urandom(2 * MiB), "second.tar.gz": os.urandom(MiB + 7)}
    for name, data in earlier.items():
        assert server.upload(name, data).status_code == 200
    free_before = free_bytes(small_volume)
    too_big = os.urandom(12 * MiB)

    attempts = {
        "multipart": lambda: upload_multipart(server.port, TOKEN, "huge.bin", too_big),
        "put": lambda: put_raw(server.port, TOKEN, "huge.bin", too_big),
        "overwrite": lambda: put_raw(server.port, TOKEN, "first.bin", too_big, overwrite=True),
        "overwrite-multipart": lambda: upload_multipart(
            server.port, TOKEN, "second.tar.gz", too_big, overwrite=True
        ),
    }
    for label, attempt in attempts.items():
        assert_507(attempt())
        assert temp_files(server.storage) == [], label
        assert free_bytes(small_volume) >= free_before - SLACK, f"{label}: space not freed"
        assert_intact(server, earlier)

    fits = os.urandom(3 * MiB)
    created = put_raw(server.port, TOKEN, "fits.bin", fits)
    assert created is not None and created.status == 201, created
    assert (server.storage / "fits.bin").read_bytes() == fits
    assert_intact(server, {**earlier, "fits.bin": fits})


def test_upload_filling_the_volume_exactly_fails_cleanly_then_space_is_reusable(
    small_volume: Path, start_server
) -> None:
    """Uploads until the volume is full: each is all-or-nothing, and a delete frees room."""
    server: ServerProcess = start_server(small_volume / "data", env={"MAX_PACKAGES": "0"})
    stored: dict[str, bytes] = {}
    refused = 0
    for index in range(12):  # about 9 MiB offered to an 8 MiB volume
        data = os.urandom(700 * 1024 + index * 1000)
        reply = put_raw(server.port, TOKEN, f"part-{index}.bin", data)
        assert reply is not None
        assert reply.status in (201, 507), reply
        if reply.status == 201:
            stored[f"part-{index}.bin"] = data
        else:
            refused += 1
        assert temp_files(server.storage) == []
    assert refused, "the volume never filled up; the test did not test anything"
    assert_intact(server, stored)
    victim = next(iter(stored))
    deleted = requests.delete(f"{server.url}/assets/{victim}", headers=server.auth(), timeout=10)
    assert deleted.status_code == 204
    del stored[victim]
    again = os.urandom(600 * 1024)
    reply = put_raw(server.port, TOKEN, "after-delete.bin", again)
    assert reply is not None and reply.status == 201, reply
    assert_intact(server, {**stored, "after-delete.bin": again})


def test_readyz_reports_a_full_volume_while_it_lasts(small_volume: Path, start_server) -> None:
    server: ServerProcess = start_server(small_volume / "data")
    kept = os.urandom(MiB)
    assert server.upload("kept.bin", kept).status_code == 200
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200

    filler = fill(small_volume)
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert "full" in ready.text
    assert_507(put_raw(server.port, TOKEN, "tiny.txt", b"x" * 10_000))
    assert_507(upload_multipart(server.port, TOKEN, "tiny.txt", b"x" * 10_000))
    assert temp_files(server.storage) == []
    # Reads keep working while the volume is full (download counters may not be saved).
    assert_intact(server, {"kept.bin": kept})
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 503

    filler.unlink()
    assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    later = os.urandom(MiB)
    reply = put_raw(server.port, TOKEN, "tiny.txt", later)
    assert reply is not None and reply.status == 201, reply
    assert_intact(server, {"kept.bin": kept, "tiny.txt": later})


def test_507_answer_releases_the_connection(small_volume: Path, start_server) -> None:
    """Once the 507 is sent the server lets go of the connection (it used to hold it, and
    its request task, until shutdown)."""
    server: ServerProcess = start_server(small_volume / "data", env={"KEEP_ALIVE_TIMEOUT": "1"})
    for attempt in range(3):
        head = build_head(
            "PUT",
            f"/assets/huge-{attempt}.bin",
            [bearer(TOKEN), ("Transfer-Encoding", "chunked"), ("Connection", "close")],
        )
        assert_507(exchange(server.port, head, small_chunks(os.urandom(12 * MiB))))
    assert wait_until(lambda: server_connections(server.port) == 0, timeout=4), (
        f"{server_connections(server.port)} connections still held after the clients left"
    )
