"""Races and faults: racing uploads, crashes, disconnects, in-flight replacement, two servers."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import requests
from conftest import BOTH_BACKENDS, ServerProcess, settle, stored_names

pytestmark = BOTH_BACKENDS


def visible_files(server: ServerProcess) -> list[str]:
    return [n for n in stored_names(server) if not n.startswith(".")]


def temp_files(server: ServerProcess) -> list[str]:
    return [n for n in stored_names(server) if n.startswith(".tmp-")]


def upload_under_way(server: ServerProcess) -> None:
    """Wait until the half-sent upload is being stored: its temp file shows in the
    directory; on S3 nothing shows before the bytes are complete, so give it a moment."""
    if server.s3 is None:
        assert wait_for(lambda: temp_files(server))
    else:
        time.sleep(0.5)


def test_racing_uploads_of_one_new_name(server: ServerProcess) -> None:
    bodies = [bytes([65 + i]) * 300_000 for i in range(2)]
    barrier = threading.Barrier(2)
    results: list[int] = [0, 0]

    def send(index: int) -> None:
        barrier.wait()
        results[index] = requests.put(
            f"{server.url}/assets/race.bin", data=bodies[index], headers=server.auth(), timeout=30
        ).status_code

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 409]
    assert requests.get(f"{server.url}/assets/race.bin", timeout=10).content in bodies
    assert stored_names(server) == ["race.bin"]  # no temp file left either


def raw_upload_start(server: ServerProcess, name: str, total: int, sent: bytes) -> socket.socket:
    """Begin a PUT that declares ``total`` bytes but sends only ``sent``."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"PUT /assets/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
        f"Content-Length: {total}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def wait_for(condition, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_sigkill_mid_upload_leaves_no_partial_package(start_server, tmp_path) -> None:
    storage = tmp_path / "kill"
    server = start_server(storage)
    server.upload("safe.bin", b"kept")
    sock = raw_upload_start(server, "partial.bin", 10_000_000, b"p" * 2_000_000)
    upload_under_way(server)
    server.stop(signal.SIGKILL)
    sock.close()
    assert visible_files(server) == ["safe.bin"]
    again = start_server(storage)
    listed = [p["name"] for p in requests.get(f"{again.url}/packages", timeout=10).json()]
    assert listed == ["safe.bin"]
    assert temp_files(again) == []  # the dead upload's temp file is cleaned at start-up
    assert requests.get(f"{again.url}/assets/partial.bin", timeout=10).status_code == 404


def test_client_disconnect_mid_upload_leaves_nothing(server: ServerProcess) -> None:
    server.upload("v.bin", b"version one")
    sock = raw_upload_start(server, "v.bin?overwrite=true", 5_000_000, b"x" * 1_000_000)
    upload_under_way(server)
    sock.close()
    assert wait_for(lambda: not temp_files(server))
    assert visible_files(server) == ["v.bin"]
    assert requests.get(f"{server.url}/assets/v.bin", timeout=10).content == b"version one"
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_download_in_flight_survives_replace_and_delete(server: ServerProcess) -> None:
    old = os.urandom(1024) * 16 * 1024  # 16 MiB
    server.upload("big.bin", old)
    for action in ("replace", "delete"):
        if action == "delete":
            server.upload("big.bin", old, overwrite="true")
        response = requests.get(f"{server.url}/assets/big.bin", stream=True, timeout=30)
        received = bytearray(next(response.iter_content(65536)))
        if action == "replace":
            assert server.upload("big.bin", b"new", overwrite="true").status_code == 200
        else:
            assert (
                requests.delete(
                    f"{server.url}/assets/big.bin", headers=server.auth(), timeout=10
                ).status_code
                == 204
            )
        for chunk in response.iter_content(1 << 20):
            received += chunk
        assert bytes(received) == old, action


def test_two_servers_share_one_directory(start_server, tmp_path) -> None:
    storage = tmp_path / "shared"
    one = start_server(storage)
    two = start_server(storage)
    assert requests.get(f"{two.url}/packages", timeout=10).json() == []
    for round_ in range(5):
        one.upload(f"r{round_}.bin", b"x")
        settle(two)
        listed = [p["name"] for p in requests.get(f"{two.url}/packages", timeout=10).json()]
        assert f"r{round_}.bin" in listed
        latest = requests.get(f"{two.url}/latest", timeout=10).json()
        assert latest["assets"][0]["name"] == f"r{round_}.bin"
    requests.delete(f"{two.url}/assets/r4.bin", headers=two.auth(), timeout=10)
    settle(one)
    assert "r4.bin" not in [p["name"] for p in requests.get(f"{one.url}/packages").json()]
    requests.get(f"{one.url}/assets/r3.bin", timeout=10)
    requests.get(f"{two.url}/assets/r3.bin", timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        counts = [
            requests.get(f"{s.url}/packages", timeout=10).json()[0]["downloads"] for s in (one, two)
        ]
        if counts == [2, 2]:
            break
        time.sleep(0.2)
    assert counts == [2, 2]


def test_workers_share_changes(start_server) -> None:
    server = start_server(args=["--workers", "2"])
    for round_ in range(6):
        server.upload(f"w{round_}.bin", b"w")
        settle(server)
        for _ in range(3):  # new connections land on either worker
            with requests.Session() as session:
                listed = session.get(f"{server.url}/packages", timeout=10).json()
            assert listed[0]["name"] == f"w{round_}.bin"


def test_sigterm_finishes_in_flight_download_and_exits_0(server: ServerProcess) -> None:
    server.upload("slow.bin", b"s" * 8_000_000)
    response = requests.get(f"{server.url}/assets/slow.bin", stream=True, timeout=30)
    first = next(response.iter_content(1024))
    server.proc.send_signal(signal.SIGTERM)
    rest = b"".join(response.iter_content(1 << 20))
    assert len(first) + len(rest) == 8_000_000
    assert server.proc.wait(20) == 0
