"""The two engines: Granian (``--engine granian``, what ``auto`` picks from the source tree
where ``release-server[fast]`` is installed, as in CI) and Hypercorn (the pyz, and here from
the source tree too where their behaviour differs). The rest of the black-box suite runs
on both through ``server_command``: source (auto, so Granian) and pyz (Hypercorn)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT, ServerProcess

HAS_GRANIAN = importlib.util.find_spec("granian") is not None
needs_granian = pytest.mark.skipif(not HAS_GRANIAN, reason="pip install 'release-server[fast]'")
SOURCE = [sys.executable, "-m", "release_server"]


def start(tmp_path: Path, engine: str, *args: str) -> ServerProcess:
    storage = tmp_path / "data"
    storage.mkdir(exist_ok=True)
    return ServerProcess(storage, command=[*SOURCE, "--engine", engine], args=list(args))


def send_links(server: ServerProcess) -> list[Path]:
    """The links an engine sends files from (one directory per pinned version)."""
    return [path for path in (server.storage / ".meta" / "send").glob("*/*") if path.is_file()]


def access_lines(server: ServerProcess, path: str) -> list[dict[str, object]]:
    entries = [json.loads(line) for line in server.lines if line.startswith("{")]
    return [e for e in entries if e.get("msg") == "request" and e.get("path") == path]


@needs_granian
def test_auto_picks_granian_where_it_is_installed(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, command=SOURCE)
    try:
        assert server.engine == "granian"
        answer = requests.get(f"{server.url}/healthz", timeout=10)
        assert answer.status_code == 200 and "x-request-id" in answer.headers
    finally:
        assert server.stop() == 0
    # Granian's own lines are JSON lines like ours.
    entries = [json.loads(line) for line in server.lines]
    assert any(entry["logger"].startswith("_granian") for entry in entries)


@needs_granian
def test_zero_copy_download_survives_replace_and_delete(tmp_path: Path) -> None:
    """A whole-file GET is sent by Granian itself (pathsend) from a hard link to the pinned
    version, so a slow download finishes with the old bytes though the name is replaced,
    then deleted, while it is read."""
    server = start(tmp_path, "granian")
    try:
        old = os.urandom(1 << 20) * 32  # 32 MiB: far more than the socket buffers hold
        assert server.upload("big.bin", old).status_code == 200
        for action in ("replace", "delete"):
            if action == "delete":
                assert server.upload("big.bin", old, overwrite="true").status_code == 200
            response = requests.get(f"{server.url}/assets/big.bin", stream=True, timeout=30)
            received = bytearray(next(response.iter_content(65536)))
            assert send_links(server), "the download did not go through pathsend"
            if action == "replace":
                assert server.upload("big.bin", b"new", overwrite="true").status_code == 200
            else:
                gone = requests.delete(
                    f"{server.url}/assets/big.bin", headers=server.auth(), timeout=10
                )
                assert gone.status_code == 204
            time.sleep(0.5)  # the download is slow: it is still in flight meanwhile
            for chunk in response.iter_content(1 << 20):
                received += chunk
            assert hashlib.sha256(received).digest() == hashlib.sha256(old).digest(), action
        listed = requests.get(f"{server.url}/packages", timeout=10).json()
        assert listed == []  # the links are hidden names, never packages
        logged = access_lines(server, "/assets/big.bin")
        assert [e["bytes"] for e in logged if e["method"] == "GET"] == [len(old)] * 2
    finally:
        server.stop()


@needs_granian
def test_zero_copy_downloads_are_counted(tmp_path: Path) -> None:
    server = start(tmp_path, "granian")
    try:
        server.upload("c.bin", b"c" * 100_000)
        for _ in range(3):
            assert requests.get(f"{server.url}/assets/c.bin", timeout=10).content == b"c" * 100_000
        ranged = requests.get(
            f"{server.url}/assets/c.bin", headers={"Range": "bytes=0-9"}, timeout=10
        )
        assert ranged.status_code == 206 and ranged.content == b"c" * 10  # streamed, uncounted
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            counted = requests.get(f"{server.url}/packages", timeout=10).json()[0]["downloads"]
            if counted == 3:
                break
            time.sleep(0.1)
        assert counted == 3
    finally:
        server.stop()


@needs_granian
@pytest.mark.parametrize("workers", ["1", "2"])
def test_granian_stops_within_graceful_timeout(tmp_path: Path, workers: str) -> None:
    server = start(tmp_path, "granian", "--workers", workers, "--graceful-timeout", "2")
    assert server.engine == "granian"
    assert requests.get(f"{server.url}/latest", timeout=10).status_code == 200
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 10


@needs_granian
def test_granian_closes_idle_connections_after_keep_alive_timeout(tmp_path: Path) -> None:
    server = start(tmp_path, "granian", "--keep-alive-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert sock.recv(65536) == b""  # closed by the server
            assert time.monotonic() - started < 5
    finally:
        server.stop()


def test_hypercorn_from_source_still_serves(tmp_path: Path) -> None:
    server = start(tmp_path, "hypercorn")
    try:
        assert server.engine == "hypercorn"
        server.upload("h.bin", b"h" * 1000)
        answer = requests.get(f"{server.url}/assets/h.bin", timeout=10)
        assert answer.content == b"h" * 1000 and "server" not in answer.headers
        assert not send_links(server)  # Hypercorn has no pathsend: Python streams the file
    finally:
        assert server.stop() == 0


def test_engine_setting_is_checked(tmp_path: Path) -> None:
    ran = subprocess.run(
        [*SOURCE, "--engine", "nginx", "--storage", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
    )
    assert ran.returncode == 2
    assert "--engine: expected one of auto, hypercorn, granian, got 'nginx'" in ran.stderr


def test_granian_on_the_pyz_fails_clearly(server_command: list[str], tmp_path: Path) -> None:
    if "-m" in server_command:
        pytest.skip("the source tree may have Granian; the pyz never has")
    ran = subprocess.run(
        [*server_command, "--storage", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "ENGINE": "granian"},
    )
    assert ran.returncode == 2, ran.stdout + ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "--engine granian: Granian is not installed" in lines[0]
