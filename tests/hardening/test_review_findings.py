"""Findings of the second security review, each reproduced here first, then fixed.

1 memory amplification through Host and path lengths; 2 cache poisoning (ETag, Vary,
X-Forwarded-*, redirects); 3 unbounded metrics series; 4-5 bad entries, symlinks and special
files in storage; 6 cleartext HTTP/2; 7 request smuggling hygiene; 8-9 tokens; 10 headers
and logs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT, TOKEN, StartServer, default_command, free_port

from .helpers import HOST, HealthProbe, build_head, exchange, memory_kib, read_reply, request

pytestmark = pytest.mark.hardening


def get_with(port: int, target: str, *headers: tuple[str, str], host: bytes = b"127.0.0.1"):
    head = build_head("GET", target, [*headers, ("Connection", "close")], host=host)
    return exchange(port, head)


# -- 1. memory amplification ------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Host", "X-Forwarded-Host"])
def test_a_long_host_is_refused_and_memory_stays_flat(
    start_server: StartServer, header: str
) -> None:
    server = start_server(env={"TRUST_PROXY": "1"})
    for index in range(10):
        server.upload(f"pkg-{index}.zip", b"x")
    before = memory_kib(server.proc.pid)["VmRSS"]
    long_host = "h" * 15_000 + ".example"
    for _ in range(64):
        if header == "Host":
            reply = get_with(server.port, "/latest", host=long_host.encode())
        else:
            reply = get_with(server.port, "/latest", ("X-Forwarded-Host", long_host))
        assert reply is not None and reply.status == 400, reply
        assert len(reply.body) < 1000 and b"hhhhhhhhhh" not in reply.body
    grown = memory_kib(server.proc.pid)["VmRSS"] - before
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB"


@pytest.mark.parametrize(
    "target", ["/repos/{long}/r/releases", "/api/v3/repos/o/{long}/releases/latest"]
)
def test_long_owner_or_repo_is_refused_with_a_small_answer(server, target: str) -> None:
    reply = get_with(server.port, target.format(long="o" * 10_000))
    assert reply is not None and reply.status == 404, reply
    assert len(reply.body) < 1000


def test_releases_lists_are_cached_off_the_event_loop(start_server: StartServer) -> None:
    """Many packages and a long (valid) Host: /healthz keeps answering while the GitHub
    lists are fetched again and again (they used to be built on the event loop)."""
    server = start_server(env={"MAX_PACKAGES": "0"})
    for index in range(3000):
        (server.storage / f"bulk-{index:04}.bin").write_bytes(b"b")
    requests.get(server.url + "/latest", timeout=60)  # hash them once
    host = ("h" * 60 + ".") * 4 + "example"
    with HealthProbe(server.port) as probe:
        for target in (
            "/repos/local/packages/releases",
            "/repos/local/packages/releases/1/assets?per_page=100",
        ):
            reply = get_with(server.port, target, host=host.encode())
            assert reply is not None and reply.status == 200
            # Built once per listing version and base URL, then answered from the cache:
            again = get_with(
                server.port, target, ("If-None-Match", reply.headers["etag"]), host=host.encode()
            )
            assert again is not None and again.status == 304, again
    assert not probe.failures
    assert probe.worst < 1.0, f"/healthz waited {probe.worst:.2f} s"


def test_allowed_hosts(start_server: StartServer) -> None:
    server = start_server(env={"ALLOWED_HOSTS": "releases.example.com, 127.0.0.1"})
    assert get_with(server.port, "/latest", host=b"releases.example.com").status == 200
    assert get_with(server.port, "/latest", host=b"127.0.0.1:1234").status == 200
    refused = get_with(server.port, "/latest", host=b"evil.example")
    assert refused.status == 400 and b"ALLOWED_HOSTS" in refused.body
    assert get_with(server.port, "/healthz", host=b"evil.example").status == 200


# -- 2. cache poisoning ---------------------------------------------------------------------


def test_etag_covers_the_body_and_vary_names_the_host(start_server: StartServer) -> None:
    server = start_server(env={"TRUST_PROXY": "1"})
    server.upload("app.zip", b"a")
    first = get_with(server.port, "/latest", host=b"aaaa.example")
    second = get_with(server.port, "/latest", host=b"bbbb.example")
    assert first.body != second.body and len(first.body) == len(second.body)
    assert first.headers["etag"] != second.headers["etag"]
    poisoned = get_with(
        server.port, "/latest", ("If-None-Match", first.headers["etag"]), host=b"bbbb.example"
    )
    assert poisoned.status == 200
    for target in (
        "/latest",
        "/packages",
        "/repos/local/packages/releases",
        "/api/v3/repos/local/packages/releases/1",
    ):
        vary = get_with(server.port, target).headers.get("vary", "").lower()
        assert "host" in vary and "x-forwarded-host" in vary, (target, vary)


def test_the_last_forwarded_host_is_the_one_a_proxy_appended(start_server: StartServer) -> None:
    server = start_server(env={"TRUST_PROXY": "1"})
    server.upload("app.zip", b"a")
    reply = get_with(
        server.port,
        "/latest",
        ("X-Forwarded-Host", "attacker.example, releases.example.com"),
        ("X-Forwarded-Proto", "http, https"),
    )
    url = json.loads(reply.body)["assets"][0]["browser_download_url"]
    assert url == "https://releases.example.com/assets/app.zip"


def test_redirects_use_the_public_url(start_server: StartServer) -> None:
    server = start_server(env={"PUBLIC_URL": "https://releases.example.com/r"})
    reply = get_with(server.port, "/packages/", host=b"attacker.example")
    assert reply.status in (301, 307, 308)
    assert reply.headers["location"] == "https://releases.example.com/r/packages"


# -- 3. metrics series ----------------------------------------------------------------------


def test_made_up_methods_share_one_metrics_label(server) -> None:
    for index in range(60):
        request(server.port, f"X{index:03}METHOD", "/healthz")
    text = requests.get(server.url + "/metrics", timeout=10).text
    methods = set(re.findall(r'method="([^"]*)"', text))
    assert not any(m.startswith("X0") for m in methods), methods
    assert len(methods) <= 8


# -- 4, 5. bad entries, symlinks and special files --------------------------------------------


def plant_odd_entries(storage: Path, outside: Path) -> None:
    outside.write_text("root:x:0:0:secret\n")
    os.symlink(outside, storage / "passwd.txt")
    os.symlink(storage / "loop-b", storage / "loop-a")
    os.symlink(storage / "loop-a", storage / "loop-b")
    os.symlink(storage / "missing", storage / "dangling.zip")
    os.mkfifo(storage / "pipe.bin")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(storage / "socket.bin"))


ODD = ("passwd.txt", "loop-a", "loop-b", "dangling.zip", "pipe.bin", "socket.bin")


def test_odd_entries_are_skipped_never_served_and_reported(
    start_server: StartServer, tmp_path: Path
) -> None:
    storage = tmp_path / "data"
    storage.mkdir()
    plant_odd_entries(storage, tmp_path / "passwd")
    os.mkfifo(storage / ".tmp-planted")  # must not block start-up
    server = start_server(storage)
    server.upload("good.zip", b"g")
    for target in ("/packages", "/latest", "/metrics", "/repos/local/packages/releases"):
        response = requests.get(server.url + target, timeout=10)
        assert response.status_code == 200, (target, response.text)
        for name in ODD:
            assert name not in response.text or target == "/metrics", (target, name)
    with HealthProbe(server.port) as probe:
        for name in ODD:
            response = requests.get(f"{server.url}/assets/{name}", timeout=10)
            assert response.status_code == 404, (name, response.status_code)
            assert b"secret" not in response.content
    assert not probe.failures and probe.worst < 2.0
    ready = requests.get(server.url + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.text.startswith("OK")
    assert "passwd.txt" in ready.text and "symbolic link" in ready.text
    assert "pipe.bin" in ready.text
    answer = server.upload("another.zip", b"a")  # retention lists storage too
    assert answer.status_code == 200, answer.text
    assert any("skipped" in line and "passwd.txt" in line for line in server.lines)
    assert (tmp_path / "passwd").read_text().startswith("root")


# -- 6. cleartext HTTP/2 --------------------------------------------------------------------


def test_cleartext_http2_is_off(server) -> None:
    upgrade = get_with(
        server.port,
        "/healthz",
        ("Upgrade", "h2c"),
        ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
        ("Connection", "Upgrade, HTTP2-Settings"),
    )
    assert upgrade is not None and upgrade.status == 200 and upgrade.body == b"OK"
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        first = sock.recv(100)
    # Not an HTTP/2 SETTINGS frame: Hypercorn answers 4xx; Granian (hyper) closes the
    # connection without an answer, before the app sees anything.
    closed = server.engine == "granian" and first == b""
    assert first.startswith(b"HTTP/1.1 4") or closed, first


# -- 7. request smuggling hygiene -----------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "headers"),
    [
        ("HTTP/1.1", [("Content-Length", "5"), ("Transfer-Encoding", "chunked")]),
        ("HTTP/1.0", [("Transfer-Encoding", "chunked")]),
    ],
)
def test_ambiguous_framing_is_400_and_closes(server, version: str, headers) -> None:
    lines = [
        f"PUT /assets/smuggled.bin {version}",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {TOKEN}",
    ]
    lines += [f"{name}:{value}" for name, value in headers]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + b"5\r\nhello\r\n0\r\n\r\n"
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        sock.sendall(raw + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = read_reply(sock, time.monotonic() + 10)
        assert reply is not None, reply
        # Granian (hyper) drops Content-Length when Transfer-Encoding is chunked before the
        # app sees the request, and reads the body by Transfer-Encoding alone, which RFC 9112
        # §6.3 allows ("or process such a request in accordance with the Transfer-Encoding
        # alone"); then it closes the connection, as the RFC requires: nothing is smuggled.
        by_encoding = server.engine == "granian" and version == "HTTP/1.1"
        if by_encoding:
            assert reply.status == 201 and reply.headers.get("connection") == "close", reply
        else:
            assert reply.status == 400, reply
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert b"HTTP/1.1 200" not in rest, "the connection went on after an ambiguous request"
    stored = server.storage / "smuggled.bin"
    assert stored.read_bytes() == b"hello" if by_encoding else not stored.exists()


# -- 8, 9. tokens -----------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == pid:
                found += [int(entry), *descendants(int(entry))]
    return found


def test_the_token_file_never_reaches_process_environments(
    start_server: StartServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n# rotated 2026-11-29\n")
    server = start_server(token=None, env={"AUTH_TOKEN_FILE": str(token_file)},
                          args=["--workers", "2"])  # fmt: skip
    server.token = TOKEN
    assert server.upload("a.zip", b"a").status_code == 200  # the first line is the token
    processes = [server.proc.pid, *descendants(server.proc.pid)]
    assert len(processes) >= 3
    for pid in processes:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            assert TOKEN.encode() not in handle.read(), f"token in the environment of {pid}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTH_TOKEN": "a"}, "at least 16"),
        ({"AUTH_TOKEN": "sixteen-chars-ok\u00e9"}, "printable ASCII"),
        ({"AUTH_TOKEN": "with a space in it!"}, "printable ASCII"),
        ({"AUTH_TOKEN": TOKEN, "AUTH_TOKEN_FILE": "/nonexistent"}, "not both"),
    ],
)
def test_weak_or_ambiguous_tokens_stop_start_up(tmp_path: Path, env, message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "AUTH_TOKEN_FILE")}
    failed = subprocess.run(
        [*default_command(), "--storage", str(tmp_path / "d"), "--port", str(free_port())],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert failed.returncode == 2, failed
    assert message in failed.stderr and "AUTH_TOKEN" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in failed.stderr


def test_a_bom_in_the_token_file_is_not_part_of_the_token(
    start_server: StartServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xef\xbb\xbf" + TOKEN.encode() + b"\r\n")
    server = start_server(token=None, env={"AUTH_TOKEN_FILE": str(token_file)})
    server.token = TOKEN
    assert server.upload("a.zip", b"a").status_code == 200


def test_two_authorization_headers_are_refused(server) -> None:
    reply = request(
        server.port,
        "PUT",
        "/assets/two.bin",
        [("Authorization", "Bearer wrong-token-000000"), ("Authorization", f"Bearer {TOKEN}")],
        b"data",
    )
    assert reply is not None and reply.status in (400, 401), reply
    assert not (server.storage / "two.bin").exists()
    reply = request(
        server.port,
        "PUT",
        "/assets/two.bin",
        [("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer wrong-token-000000")],
        b"data",
    )
    assert reply is not None and reply.status in (400, 401), reply
    assert not (server.storage / "two.bin").exists()


# -- 10. headers and logs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["/latest", "/nothing-here", "/openapi.yaml", "/metrics", "/avatar.svg", "/packages"]
)
def test_every_answer_has_nosniff_and_a_csp(server, target: str) -> None:
    response = requests.get(server.url + target, timeout=10)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_log_lines_are_ascii_and_never_split(server) -> None:
    for char in ("\u2028", "\u0085", "\u009b", "\u202e"):
        requests.get(f"{server.url}/x{char}y", timeout=10)
    time.sleep(0.3)
    for line in server.lines:
        assert line.isascii(), line
        json.loads(line)


@pytest.mark.parametrize(
    "name", ["evil\u202epiz.exe", "a\u2066b.zip", "x\u200fy.zip", "l\u2028s.zip"]
)
def test_names_with_bidi_controls_are_refused(server, name: str) -> None:
    response = server.upload(name, b"x")
    assert response.status_code == 400, response.text
    assert not list(server.storage.glob("*.exe")) and not list(server.storage.glob("*.zip"))
