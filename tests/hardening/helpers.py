"""Tools the hardening tests share: raw HTTP over sockets, disk snapshots, memory, health.

``requests`` hides what these tests need (early answers while a body is still being sent,
truncated bodies, lying Content-Length, bytes that are not valid UTF-8 in a request line),
so requests here are written and read by hand. Every wait has a deadline: a server that
does not answer in time fails the test as a hang instead of blocking the suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conftest import S3_PREFIX, ServerProcess
from s3 import bucket

HOST = "127.0.0.1"
MiB = 1024 * 1024
#: Bytes handed to the socket per send, so an early answer is noticed between sends.
SEND_PIECE = 64 * 1024


class Hang(AssertionError):
    """The server neither answered nor closed the connection in time."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Reply:
    """One HTTP answer read off a socket."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    #: False when the connection closed before the announced body was complete.
    complete: bool = True

    def json(self) -> object:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Reply({self.status} {self.reason!r}, {self.headers!r}, {self.body[:300]!r})"


def build_head(
    method: str,
    target: str | bytes,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    *,
    host: bytes = b"127.0.0.1",
) -> bytes:
    """A request head from raw pieces (bytes go on the wire exactly as given)."""

    def raw(value: str | bytes) -> bytes:
        return value if isinstance(value, bytes) else value.encode("latin-1")

    lines = [raw(method) + b" " + raw(target) + b" HTTP/1.1", b"Host: " + host]
    lines += [raw(name) + b": " + raw(value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def exchange(
    port: int,
    head: bytes,
    body: Iterable[bytes] = (),
    *,
    timeout: float = 15.0,
    half_close: bool = False,
    head_request: bool = False,
) -> Reply | None:
    """Send ``head`` then ``body`` on a fresh connection and read one answer.

    Like curl, stop sending as soon as the server answers early (a 413 or 507 before the
    body is complete). ``half_close`` shuts the sending side after the body, which is how
    a client that sends less than its Content-Length looks to the server. Returns None if
    the server closed the connection without answering; raises Hang on the deadline.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        try:
            _send(sock, _chain(head, body), deadline)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (or gave up) before taking the whole body
        return read_reply(sock, deadline, head_request=head_request)


def _chain(head: bytes, body: Iterable[bytes]) -> Iterator[bytes]:
    yield head
    yield from body


def _send(sock: socket.socket, chunks: Iterable[bytes], deadline: float) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Hang("the server stopped reading the request body and did not answer")
            readable, writable, _ = select.select([sock], [sock], [], remaining)
            if readable:
                return  # an answer (or a close) arrived: stop sending, as curl does
            if writable:
                sent = sock.send(view[:SEND_PIECE])
                view = view[sent:]


def read_reply(sock: socket.socket, deadline: float, *, head_request: bool = False) -> Reply | None:
    """Read one answer (status, headers, body by Content-Length or chunked or close)."""
    buffer = bytearray()

    def more() -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Hang(f"no complete answer in time; got {bytes(buffer[:300])!r}")
        sock.settimeout(remaining)
        try:
            return sock.recv(256 * 1024)
        except TimeoutError:
            raise Hang(f"no complete answer in time; got {bytes(buffer[:300])!r}") from None
        except ConnectionResetError:
            return b""

    while b"\r\n\r\n" not in buffer:
        data = more()
        if not data:
            if not buffer:
                return None
            raise AssertionError(f"connection closed inside the answer head: {bytes(buffer)!r}")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    _, status, *reason = status_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    code = int(status)
    buffer = bytearray(rest)
    if head_request or code in (204, 304) or 100 <= code < 200:
        return Reply(code, " ".join(reason), headers, b"")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return _read_chunked(code, " ".join(reason), headers, buffer, more)
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(buffer) < length:
            data = more()
            if not data:
                return Reply(code, " ".join(reason), headers, bytes(buffer), complete=False)
            buffer += data
        return Reply(code, " ".join(reason), headers, bytes(buffer[:length]))
    while data := more():
        buffer += data
    return Reply(code, " ".join(reason), headers, bytes(buffer))


def _read_chunked(
    code: int, reason: str, headers: dict[str, str], buffer: bytearray, more: Callable[[], bytes]
) -> Reply:
    body = bytearray()
    while True:
        while b"\r\n" not in buffer:
            data = more()
            if not data:
                return Reply(code, reason, headers, bytes(body), complete=False)
            buffer += data
        size_line, _, rest = bytes(buffer).partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        buffer = bytearray(rest)
        while len(buffer) < size + 2:
            data = more()
            if not data:
                return Reply(code, reason, headers, bytes(body + buffer), complete=False)
            buffer += data
        if size == 0:
            return Reply(code, reason, headers, bytes(body))
        body += buffer[:size]
        buffer = buffer[size + 2 :]


def request(
    port: int,
    method: str,
    target: str | bytes,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    body: bytes | None = None,
    *,
    timeout: float = 15.0,
) -> Reply | None:
    """One request with an honest Content-Length (when there is a body) on its own connection."""
    all_headers = [*headers, ("Connection", "close")]
    if body is not None:
        all_headers.append(("Content-Length", str(len(body))))
    head = build_head(method, target, all_headers)
    return exchange(
        port, head, [body] if body else [], timeout=timeout, head_request=method == "HEAD"
    )


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


def payload(seed: int, size: int) -> Iterator[bytes]:
    """``size`` bytes in 1 MiB pieces, distinct per seed, without holding them all."""
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    for offset in range(0, size, MiB):
        yield block[: min(MiB, size - offset)]


def small_chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    """``data`` in chunked encoding with small chunks: each becomes one body event in the
    server, so its per-request queue of unread events is full whenever the app pauses."""
    for start in range(0, len(data), size):
        yield b"%x\r\n%s\r\n" % (len(data[start : start + size]), data[start : start + size])
    yield b"0\r\n\r\n"


# -- multipart ------------------------------------------------------------------------------


def form_part(name: bytes, data: bytes, filename: bytes | None = None, extra: bytes = b"") -> bytes:
    """One part of a multipart/form-data body (without its boundary line)."""
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    return disposition + b"\r\n" + extra + b"Content-Type: application/octet-stream\r\n\r\n" + data


def multipart(parts: Iterable[bytes], boundary: bytes = b"hardening-boundary-7d1f") -> bytes:
    """A complete multipart body from parts made by form_part()."""
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + b"--" + boundary + b"--\r\n"


def upload_multipart(
    port: int,
    token: str,
    name: bytes | str,
    data: bytes,
    *,
    overwrite: bool = False,
    timeout: float = 30.0,
) -> Reply | None:
    """POST /upload with field ``file``, sent by hand so early answers are read."""
    raw_name = name.encode("utf-8") if isinstance(name, str) else name
    boundary = b"hardening-boundary-7d1f"
    prefix = multipart([form_part(b"file", b"", raw_name)], boundary)
    # Split the one-part body around the (empty) data so the payload is not copied.
    cut = prefix.index(b"\r\n\r\n") + 4
    head_part, tail = prefix[:cut], prefix[cut:]
    total = len(head_part) + len(data) + len(tail)
    head = build_head(
        "POST",
        "/upload" + ("?overwrite=true" if overwrite else ""),
        [
            bearer(token),
            ("Content-Type", "multipart/form-data; boundary=" + boundary.decode()),
            ("Content-Length", str(total)),
            ("Connection", "close"),
        ],
    )
    return exchange(port, head, [head_part, data, tail], timeout=timeout)


def put_raw(
    port: int,
    token: str,
    quoted_name: str,
    data: bytes,
    *,
    overwrite: bool = False,
    timeout: float = 30.0,
) -> Reply | None:
    """PUT /assets/{quoted_name} with the bytes as the raw body."""
    target = f"/assets/{quoted_name}" + ("?overwrite=true" if overwrite else "")
    return request(port, "PUT", target, [bearer(token)], data, timeout=timeout)


# -- the storage directory ------------------------------------------------------------------


def packages_on_disk(storage: Path) -> dict[str, str]:
    """name -> sha256 of every visible regular file: what the server must list."""
    found = {}
    for entry in os.scandir(storage):
        if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
            found[entry.name] = sha256(Path(entry.path).read_bytes())
    return found


def temp_files(storage: Path) -> list[str]:
    return sorted(name for name in os.listdir(storage) if name.startswith(".tmp-"))


def stored_packages(server: ServerProcess) -> dict[str, str]:
    """name -> sha256 of the bytes stored under it, on either backend: the files of the
    directory, or on S3 the blobs the pointers name."""
    if server.s3 is None:
        return packages_on_disk(server.storage)
    return bucket.packages(*server.s3, S3_PREFIX)


def unfinished_uploads(server: ServerProcess) -> list[str]:
    """What uploads in progress or dead hold: temp files, or on S3 multipart uploads and
    blobs stored but not published (tests/s3/bucket.py)."""
    if server.s3 is None:
        return temp_files(server.storage)
    return bucket.contents(*server.s3, S3_PREFIX).unfinished


def collect_dead_uploads(server: ServerProcess) -> None:
    """What makes a dead upload's leftovers go: start-up does it on a directory (the lock of
    a temp file tells a dead upload); on S3, where start-up cannot tell a dead upload from
    another replica's live one, the sweep does, once they are stale."""
    if server.s3 is not None:
        bucket.sweep_as_if_stale(*server.s3, S3_PREFIX)


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    """relative path -> kind and content digest of everything under ``root`` (links not
    followed), leaving out ``skip``: proves nothing outside the storage directory changed."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        if skip is not None and here == skip:
            dirs[:] = []
            continue
        for name in dirs:
            path = here / name
            if path != skip:
                found[str(path.relative_to(root))] = "dir"
        for name in files:
            path = here / name
            relative = str(path.relative_to(root))
            if path.is_symlink():
                found[relative] = "link " + os.readlink(path)
            else:
                found[relative] = "file " + sha256(path.read_bytes())
    return found


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def free_bytes(path: Path) -> int:
    space = os.statvfs(path)
    return space.f_bavail * space.f_frsize


# -- the server process ---------------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start or the last reset_peak()) in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter of ``pid`` (Linux >= 4.0); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def get(port: int, target: str, timeout: float = 10.0) -> tuple[int, bytes, dict[str, str]]:
    """A plain GET through http.client (new connection): status, body, lower-case headers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        body = response.read()
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


@dataclass
class HealthProbe:
    """Polls /healthz on fresh connections in a thread and records each latency."""

    port: int
    interval: float = 0.05
    timeout: float = 5.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=self.timeout + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, body, _ = get(self.port, "/healthz", timeout=self.timeout)
                if status != 200 or body != b"OK":
                    self.failures.append(f"{status} {body[:100]!r}")
            except OSError as problem:
                self.failures.append(repr(problem))
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(self.interval)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))


@contextlib.contextmanager
def open_sockets(count: int, port: int) -> Iterator[list[socket.socket]]:
    """``count`` connected sockets, all closed on exit."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection((HOST, port), timeout=10))
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed ``sock`` (EOF or reset); never blocks."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        sock.setblocking(False)
        while data := sock.recv(65536):
            del data  # an answer sent before the close; keep draining
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def server_connections(port: int) -> int:
    """Connections the server on ``port`` holds open: ESTABLISHED or CLOSE_WAIT (the peer
    already hung up), read from /proc/net/tcp{,6}. TIME_WAIT and FIN_WAIT are not counted."""
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] in ("01", "08"):
                held += 1
    return held
