"""Slow and abusive clients: slow headers, slow bodies, idle keep-alive floods, many large
uploads at once, readers that never read.

While they last /healthz keeps answering in under a second and the server's memory stays
bounded; the timeouts that make it so (KEEP_ALIVE_TIMEOUT, READ_TIMEOUT, GRACEFUL_TIMEOUT)
are set through their environment variables and shown to take effect.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import TOKEN, StartServer, default_command, free_port

from .helpers import (
    HOST,
    HealthProbe,
    MiB,
    bearer,
    build_head,
    closed_by_server,
    exchange,
    form_part,
    memory_kib,
    multipart,
    open_sockets,
    packages_on_disk,
    payload,
    put_raw,
    read_reply,
    reset_peak,
    server_connections,
    small_chunks,
    temp_files,
    upload_multipart,
    wait_until,
)

pytestmark = pytest.mark.hardening

#: /healthz must answer within this many seconds while the abuse goes on.
HEALTH_BUDGET = 1.0
TIMEOUTS = {"KEEP_ALIVE_TIMEOUT": "2", "READ_TIMEOUT": "2", "GRACEFUL_TIMEOUT": "2"}
#: How long after a timeout the server may take to actually close a connection.
CLOSE_SLACK = 2.5


def wait_all_closed(sockets: list[socket.socket], within: float) -> list[float]:
    """Seconds until the server closed each socket (inf for those still open at the end)."""
    started = time.monotonic()
    closed_at = [float("inf")] * len(sockets)
    while time.monotonic() - started < within:
        for index, sock in enumerate(sockets):
            if closed_at[index] == float("inf") and closed_by_server(sock):
                closed_at[index] = time.monotonic() - started
        if all(at != float("inf") for at in closed_at):
            break
        time.sleep(0.05)
    return closed_at


def assert_healthy(probe: HealthProbe) -> None:
    assert probe.failures == [], probe.failures[:5]
    assert len(probe.latencies) >= 5, "the health probe hardly ran"
    assert probe.worst < HEALTH_BUDGET, f"/healthz took {probe.worst:.2f}s"


def start_unread_downloads(port: int, path: str, count: int) -> list[socket.socket]:
    """``count`` GETs of ``path`` on tiny receive buffers whose answers are never read."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((HOST, port))
        sock.sendall(build_head("GET", path))
        sockets.append(sock)
    return sockets


def assert_closed_in_time_and_bounded(
    closed_at: list[float], probe: HealthProbe, rss_growth_kib: int
) -> None:
    """The connections closed within the 2 s timeouts, /healthz stayed fast and the
    server's memory grew by less than 30 MiB; prints the numbers."""
    print(f"closed after {max(closed_at):.1f}s; /healthz worst {probe.worst * 1000:.0f} ms; "
          f"RSS +{rss_growth_kib // 1024} MiB")  # fmt: skip
    assert max(closed_at) <= 2 + CLOSE_SLACK, sorted(closed_at)[-5:]
    assert_healthy(probe)
    assert rss_growth_kib < 30 * 1024, f"RSS grew by {rss_growth_kib // 1024} MiB"


def test_slow_headers_are_cut_off_and_health_stays_fast(start_server: StartServer) -> None:
    """200 connections dribble a request head one byte at a time: KEEP_ALIVE_TIMEOUT bounds
    how long a connection may take to send its head, however slowly bytes keep coming."""
    server = start_server(env=TIMEOUTS)
    baseline = memory_kib(server.proc.pid)["VmRSS"]
    head = b"GET /packages HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"s" * 200
    with HealthProbe(server.port) as probe, open_sockets(200, server.port) as sockets:
        started = time.monotonic()
        closed_at = [float("inf")] * len(sockets)
        for offset in range(len(head)):  # one more byte on every socket every 100 ms
            elapsed = time.monotonic() - started
            if elapsed > 2 + CLOSE_SLACK + 1 or all(at != float("inf") for at in closed_at):
                break
            for index, sock in enumerate(sockets):
                if closed_at[index] != float("inf"):
                    continue
                if closed_by_server(sock):
                    closed_at[index] = elapsed
                    continue
                try:
                    sock.send(head[offset : offset + 1])
                except OSError:
                    closed_at[index] = elapsed
            time.sleep(0.1)
        peak = memory_kib(server.proc.pid)["VmRSS"]
    assert_closed_in_time_and_bounded(closed_at, probe, peak - baseline)


def test_slow_bodies_are_cut_off_by_read_timeout(start_server: StartServer) -> None:
    """20 uploads send part of their body and stall: READ_TIMEOUT answers 408 and closes
    them, nothing is stored and no temp file is left."""
    server = start_server(env=TIMEOUTS)
    with HealthProbe(server.port) as probe, open_sockets(20, server.port) as sockets:
        for index, sock in enumerate(sockets):
            sock.sendall(
                build_head(
                    "PUT",
                    f"/assets/stalled-{index}.bin",
                    [bearer(TOKEN), ("Content-Length", str(MiB))],
                )
                + os.urandom(100_000)
            )
        assert wait_until(lambda: len(temp_files(server.storage)) == 20, timeout=5)
        closed_at = wait_all_closed(sockets, within=2 + CLOSE_SLACK + 2)
    print(f"closed after {max(closed_at):.1f}s; /healthz worst {probe.worst * 1000:.0f} ms")
    assert max(closed_at) <= 2 + CLOSE_SLACK, sorted(closed_at)[-5:]
    assert wait_until(lambda: temp_files(server.storage) == [], timeout=3)
    assert packages_on_disk(server.storage) == {}
    assert_healthy(probe)
    assert server.log.count('"upload timed out"') == 20


def test_idle_keep_alive_flood_is_closed_and_health_stays_fast(
    start_server: StartServer,
) -> None:
    """300 keep-alive connections make one request each and go idle, and 200 more connect
    and never send a byte: KEEP_ALIVE_TIMEOUT closes them all."""
    server = start_server(env=TIMEOUTS)
    baseline = memory_kib(server.proc.pid)["VmRSS"]
    with HealthProbe(server.port) as probe, open_sockets(0, server.port) as sockets:
        for _ in range(300):  # each makes its request at once, before its idle timer runs out
            sock = socket.create_connection((HOST, server.port), timeout=10)
            sockets.append(sock)
            sock.sendall(build_head("GET", "/healthz"))
            reply = read_reply(sock, time.monotonic() + 10)
            assert reply is not None and reply.status == 200, reply
        for index in range(200):  # paced: a burst is test_a_burst_of_connections_is_queued
            sockets.append(socket.create_connection((HOST, server.port), timeout=10))
            if index % 25 == 24:
                time.sleep(0.05)
        closed_at = wait_all_closed(sockets, within=2 + CLOSE_SLACK + 2)
        peak = memory_kib(server.proc.pid)["VmRSS"]
    assert_closed_in_time_and_bounded(closed_at, probe, peak - baseline)


def test_many_concurrent_large_uploads_keep_memory_flat(start_server: StartServer) -> None:
    """6 uploads of 32 MiB at once (192 MiB; half raw PUT, half multipart): the server's
    peak RSS grows by a few MiB per upload, not by the sizes of the files, and /healthz
    stays fast."""
    server = start_server(env={**TIMEOUTS, "MAX_UPLOAD_SIZE": "64M"})
    size, count = 32 * MiB, 6
    pid = server.proc.pid
    assert reset_peak(pid), "cannot reset the kernel's peak-RSS counter (/proc/PID/clear_refs)"
    baseline = memory_kib(pid)["VmHWM"]
    answers: dict[int, object] = {}

    def upload(seed: int) -> None:
        if seed % 2:  # multipart, as CI clients send it
            data = b"".join(payload(seed, size))
            answers[seed] = upload_multipart(
                server.port, TOKEN, f"large-{seed}.bin", data, timeout=120
            )
            return
        head = build_head(
            "PUT",
            f"/assets/large-{seed}.bin",
            [bearer(TOKEN), ("Content-Length", str(size)), ("Connection", "close")],
        )
        answers[seed] = exchange(server.port, head, payload(seed, size), timeout=120)

    started = time.monotonic()
    with HealthProbe(server.port) as probe:
        threads = [threading.Thread(target=upload, args=(seed,)) for seed in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
    elapsed = time.monotonic() - started
    growth = memory_kib(pid)["VmHWM"] - baseline
    for seed in range(count):
        digest = hashlib.sha256()
        for piece in payload(seed, size):
            digest.update(piece)
        reply = answers.get(seed)
        expected = 200 if seed % 2 else 201
        assert reply is not None and reply.status == expected, reply  # type: ignore[attr-defined]
        assert reply.json()["sha256"] == digest.hexdigest()  # type: ignore[attr-defined]
    print(f"{count} x 32 MiB in {elapsed:.1f}s; peak RSS +{growth // 1024} MiB; "
          f"/healthz worst {probe.worst * 1000:.0f} ms")  # fmt: skip
    assert_healthy(probe)
    assert growth < 64 * 1024, f"peak RSS grew by {growth // 1024} MiB for {count} uploads"


def test_readers_that_never_read_do_not_grow_memory(start_server: StartServer) -> None:
    """10 downloads of a 32 MiB package whose clients read nothing: the server waits on the
    socket instead of buffering the file."""
    server = start_server(env=TIMEOUTS)
    data = b"".join(payload(7, 32 * MiB))
    reply = put_raw(server.port, TOKEN, "big.bin", data)
    assert reply is not None and reply.status == 201, reply
    del data
    pid = server.proc.pid
    assert reset_peak(pid)
    baseline = memory_kib(pid)["VmHWM"]
    with HealthProbe(server.port) as probe:
        sockets = []
        try:
            sockets += start_unread_downloads(server.port, "/assets/big.bin", 10)
            time.sleep(3)
            growth = memory_kib(pid)["VmHWM"] - baseline
        finally:
            for sock in sockets:
                sock.close()
    print(f"/healthz worst {probe.worst * 1000:.0f} ms; peak RSS +{growth // 1024} MiB")
    assert_healthy(probe)
    assert growth < 40 * 1024, f"peak RSS grew by {growth // 1024} MiB for 10 stalled readers"


def test_sigterm_finishes_an_upload_in_flight_within_graceful_timeout(
    start_server: StartServer,
) -> None:
    """SIGTERM during an upload: the upload still completes (201) and the process exits 0."""
    server = start_server(env=TIMEOUTS)
    data = os.urandom(2 * MiB)
    sock = socket.create_connection((HOST, server.port), timeout=10)
    with sock:
        length = ("Content-Length", str(len(data)))
        sock.sendall(
            build_head("PUT", "/assets/inflight.bin", [bearer(TOKEN), length]) + data[:MiB]
        )
        assert wait_until(lambda: temp_files(server.storage) != [], timeout=5)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(data[MiB:])
        reply = read_reply(sock, time.monotonic() + 10)
    assert reply is not None and reply.status == 201, reply
    assert server.proc.wait(timeout=10) == 0
    assert (server.storage / "inflight.bin").read_bytes() == data


def test_sigterm_with_a_stalled_upload_exits_within_graceful_timeout(
    start_server: StartServer,
) -> None:
    """A stalled upload cannot hold shutdown beyond GRACEFUL_TIMEOUT; its temp file is gone
    at the latest when the server starts again."""
    server = start_server(env={**TIMEOUTS, "READ_TIMEOUT": "60"})
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        sock.sendall(
            build_head("PUT", "/assets/stalled.bin", [bearer(TOKEN), ("Content-Length", str(MiB))])
            + b"s" * 1000
        )
        assert wait_until(lambda: temp_files(server.storage) != [], timeout=5)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=2 + 10)
        took = time.monotonic() - started
    assert code == 0
    assert took < 2 + CLOSE_SLACK, f"shutdown took {took:.1f}s with GRACEFUL_TIMEOUT=2"
    again = start_server(server.storage)
    assert temp_files(again.storage) == []
    assert packages_on_disk(again.storage) == {}


# -- bugs found -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["put", "multipart"])
def test_rejected_uploads_release_their_connections(start_server: StartServer, kind: str) -> None:
    """An upload refused while its body is still arriving (413 past MAX_UPLOAD_SIZE, sent
    chunked) lets go of its connection once the client leaves. It used to keep it and its
    request task forever: hypercorn's per-request queue of unread body chunks was full, so
    the answer's last send blocked; SIGTERM then waited the whole GRACEFUL_TIMEOUT."""
    server = start_server(env={**TIMEOUTS, "KEEP_ALIVE_TIMEOUT": "1", "MAX_UPLOAD_SIZE": "1M"})
    for attempt in range(5):
        data = b"".join(payload(attempt, 8 * MiB))
        if kind == "put":
            head = build_head(
                "PUT",
                f"/assets/too-big-{attempt}.bin",
                [bearer(TOKEN), ("Transfer-Encoding", "chunked"), ("Connection", "close")],
            )
            reply = exchange(server.port, head, small_chunks(data))
            assert reply is not None and reply.status == 413, reply
        else:
            boundary = b"hardening-boundary-7d1f"
            body = multipart(
                [form_part(b"file", data, f"too-big-{attempt}.bin".encode())], boundary
            )
            head = build_head(
                "POST",
                "/upload",
                [
                    bearer(TOKEN),
                    ("Content-Type", b"multipart/form-data; boundary=" + boundary),
                    ("Transfer-Encoding", "chunked"),
                    ("Connection", "close"),
                ],
            )
            reply = exchange(server.port, head, small_chunks(body))
            assert reply is not None and reply.status == 413, reply
    # Every client has hung up; the server must let go of the connections.
    assert wait_until(lambda: server_connections(server.port) == 0, timeout=1 + CLOSE_SLACK), (
        f"{server_connections(server.port)} connections still held"
    )


def test_early_answer_to_an_upload_announces_connection_close(start_server: StartServer) -> None:
    """An upload answered before its body was read (409 here) either says 'Connection:
    close' or keeps the connection usable; closing it unannounced made the next request of
    a keep-alive client (requests.Session) fail with 'Connection aborted'."""
    server = start_server(env=TIMEOUTS)
    assert put_raw(server.port, TOKEN, "taken.bin", b"first").status == 201  # type: ignore[union-attr]
    with socket.create_connection((HOST, server.port), timeout=10) as sock:
        body = os.urandom(300_000)
        length = ("Content-Length", str(len(body)))
        sock.sendall(build_head("PUT", "/assets/taken.bin", [bearer(TOKEN), length]))
        with contextlib.suppress(OSError):
            sock.sendall(body)  # a plain client sends its whole body before reading
        reply = read_reply(sock, time.monotonic() + 10)
        assert reply is not None and reply.status == 409, reply
        if reply.headers.get("connection", "").lower() == "close":
            return  # announced: a client knows not to reuse the connection
        time.sleep(0.3)
        readable, _, _ = select.select([sock], [], [], 0)
        assert not readable or not closed_by_server(sock), (
            "the server closed a keep-alive connection it had not announced as closing"
        )
        sock.sendall(build_head("GET", "/healthz"))
        again = read_reply(sock, time.monotonic() + 10)
        assert again is not None and again.status == 200


def test_fractional_read_timeout_is_honoured(tmp_path: Path) -> None:
    """READ_TIMEOUT=0.5 is accepted by the configuration, so it must work (it used to be
    truncated to 0 for hypercorn, and every read timed out at once)."""
    port = free_port()
    env = {**os.environ, "READ_TIMEOUT": "0.5", "KEEP_ALIVE_TIMEOUT": "1"}
    command = [*default_command(), "--port", str(port), "--storage", str(tmp_path / "data")]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def listening() -> bool:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
            except OSError:
                return False
            return True

        assert wait_until(listening, timeout=20)
        assert requests.get(f"http://{HOST}:{port}/healthz", timeout=3).text == "OK"
    finally:
        process.kill()
        process.wait()


def read_slowly(sock: socket.socket, pause: float, deadline: float) -> bytes:
    """Read until the server closes, pausing after every 64 KiB like a slow link."""
    received = bytearray()
    sock.settimeout(5)
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except OSError:
            break
        if not piece:
            break
        received += piece
        time.sleep(pause)
    return bytes(received)


def test_download_slower_than_read_timeout_completes(start_server: StartServer) -> None:
    """An 8 MiB download read at about 2 MiB/s (4 s) with READ_TIMEOUT=2 arrives whole (it
    used to be cut off at READ_TIMEOUT: hypercorn's read timeout ran while sending too)."""
    server = start_server(env=TIMEOUTS)
    data = b"".join(payload(3, 8 * MiB))
    reply = put_raw(server.port, TOKEN, "slow.bin", data)
    assert reply is not None and reply.status == 201, reply
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect((HOST, server.port))
        sock.sendall(build_head("GET", "/assets/slow.bin", [("Connection", "close")]))
        received = read_slowly(sock, pause=0.03, deadline=time.monotonic() + 30)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == len(data), f"cut off after {len(body)} of {len(data)} bytes"
    assert body == data


def test_a_burst_of_connections_is_queued(start_server: StartServer) -> None:
    """500 connection attempts arrive while the server is paused for 0.3 s (SIGSTOP, as a
    long GC pause or a CPU-starved container): the kernel must queue them all."""
    server = start_server(env=TIMEOUTS)
    burst = [socket.socket() for _ in range(500)]
    try:
        server.proc.send_signal(signal.SIGSTOP)
        try:
            for sock in burst:
                sock.setblocking(False)
                sock.connect_ex((HOST, server.port))
            time.sleep(0.3)
            poller = select.poll()
            for sock in burst:
                poller.register(sock, select.POLLOUT)
            ready = {fd for fd, events in poller.poll(0) if events & select.POLLOUT}
            queued = [
                sock
                for sock in burst
                if sock.fileno() in ready
                and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            ]
        finally:
            server.proc.send_signal(signal.SIGCONT)
        assert len(queued) == len(burst), f"only {len(queued)} of {len(burst)} were queued"
    finally:
        for sock in burst:
            sock.close()


def test_a_download_nobody_reads_is_abandoned(start_server: StartServer) -> None:
    """10 clients request a 16 MiB package and never read: with every timeout at 2 s the
    server lets go of them within 8 s."""
    server = start_server(env=TIMEOUTS)
    reply = put_raw(server.port, TOKEN, "big.bin", b"".join(payload(5, 16 * MiB)))
    assert reply is not None and reply.status == 201, reply
    stalled = []
    try:
        stalled += start_unread_downloads(server.port, "/assets/big.bin", 10)
        assert wait_until(lambda: server_connections(server.port) >= 10, timeout=5)
        assert wait_until(lambda: server_connections(server.port) == 0, timeout=8), (
            f"{server_connections(server.port)} stalled downloads still held"
        )
    finally:
        for sock in stalled:
            sock.close()
