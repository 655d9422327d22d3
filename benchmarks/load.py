"""Load and checks for compare.py: wrk runs, curl transfers, and correctness samples.

wrk is run without a per-response Lua callback (it would copy every body into Lua and make
the client the bottleneck), so correctness under load is established three ways: wrk's own
error counts (socket errors, status >= 400), byte accounting (every completed response must
have been exactly ``header + body`` bytes long, give or take a few header bytes), and a
sampler thread that fetches the same URL during the run and checks status, length and
sha256 of the body.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from services import Service, busy_cpu_seconds

HERE = Path(__file__).resolve().parent
#: Headers may differ a little between responses (e.g. a Date that crosses a second
#: doesn't, but a server might vary); bodies may not.
HEADER_SLACK = 16


@dataclass
class Fetched:
    """One HTTP/1.1 response as it came off the wire."""

    status: int
    header_bytes: int
    headers: dict[str, str]
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def fetch(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 60.0
) -> Fetched:
    """GET ``path`` with exactly the request wrk sends (a Host header and ``headers``) on a
    fresh connection, and return the raw sizes, so wrk's byte totals can be checked."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the headers ended")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        answer = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
        if status in (204, 304):
            return Fetched(status, len(head) + 4, answer, b"")
        if "content-length" not in answer:
            raise ValueError(f"no Content-Length in the answer to {path}")
        length = int(answer["content-length"])
        parts = [body]
        received = len(body)
        while received < length:
            chunk = sock.recv(min(1 << 20, length - received))
            if not chunk:
                raise ConnectionError(f"body ended after {received} of {length} bytes")
            parts.append(chunk)
            received += len(chunk)
        return Fetched(status, len(head) + 4, answer, b"".join(parts))


class Sampler(threading.Thread):
    """Fetches ``path`` every ``interval`` s while the load runs; each answer must have the
    reference's status and exactly its body (length and sha256)."""

    def __init__(
        self, port: int, path: str, expect: Fetched, headers: dict[str, str], interval: float = 0.5
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.headers = port, path, headers
        self.status, self.sha256, self.length = expect.status, expect.sha256, len(expect.body)
        self.interval = interval
        self.checked = 0
        self.failures: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                got = fetch(self.port, self.path, self.headers)
            except (OSError, ValueError) as problem:
                self.failures.append(f"sample: {problem}")
                continue
            self.checked += 1
            if (
                got.status != self.status
                or len(got.body) != self.length
                or got.sha256 != self.sha256
            ):
                self.failures.append(
                    f"sample: status {got.status}, {len(got.body)} bytes, sha256 {got.sha256[:12]}"
                )

    def finish(self) -> None:
        self._halt.set()
        self.join(timeout=120)


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


@dataclass
class WrkResult:
    """One measured wrk run, with the CPU the server, wrk and everything else spent."""

    requests: int
    bytes: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: float
    client_cpu: float
    other_cpu: float
    samples: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu_us(self) -> float:
        """Server CPU time per request, in microseconds."""
        return self.server_cpu / max(self.requests, 1) * 1e6

    def summary(self) -> str:
        errors = sum(self.errors.values())
        return (
            f"{self.rps:,.0f} req/s, {self.bytes / self.seconds / 1e6:,.0f} MB/s, "
            f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, errors {errors}; "
            f"CPU: server {self.server_cpu / self.seconds:.0%} "
            f"({self.server_cpu_us:,.0f} us/req), wrk {self.client_cpu / self.seconds:.0%}, "
            f"others {self.other_cpu / self.seconds:.0%}; {self.samples} samples checked"
        )


def run_wrk(
    wrk: str,
    service: Service,
    path: str,
    *,
    connections: int,
    threads: int,
    seconds: float,
    expect: Fetched | None = None,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """Run wrk against ``service`` for ``seconds``; with ``expect`` (a reference answer to
    the same request), check the byte totals and sample answers against it during the run."""
    headers = headers or {}
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        env = {**os.environ, "WRK_REPORT": report.name}
        command = [
            wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
            "--timeout", "20s", "-s", str(HERE / "wrk_report.lua"),
            *(arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")),
            service.url + path,
        ]  # fmt: skip
        sampler = None
        if expect is not None:
            sampler = Sampler(service.port, path, expect, headers)
        server_before, busy_before = service.cpu(), busy_cpu_seconds()
        children_before = _children_cpu()
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if sampler:
            sampler.start()
        try:
            output, _ = proc.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        finally:
            if sampler:
                sampler.finish()
        # wrk is the only child reaped meanwhile, so the children totals give its CPU.
        client_cpu = _children_cpu() - children_before
        server_cpu = service.cpu() - server_before
        busy = busy_cpu_seconds() - busy_before
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {output}")
        data = json.loads(Path(report.name).read_text())
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout")}
    result = WrkResult(
        requests=data["requests"],
        bytes=data["bytes"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        other_cpu=max(busy - server_cpu - client_cpu, 0.0),
    )
    if result.requests == 0:
        result.problems.append("no request completed")
    for name, count in errors.items():
        if count:
            result.problems.append(f"wrk counted {count} {name} error(s)")
    if expect is not None and sampler is not None:
        result.samples = sampler.checked
        result.problems.extend(sampler.failures[:5])
        if sampler.checked == 0:
            result.problems.append("no sample could be checked during the run")
        per = expect.header_bytes + len(expect.body)
        low = result.requests * (per - HEADER_SLACK)
        high = (result.requests + connections) * (per + HEADER_SLACK)
        if not low <= result.bytes <= high:
            result.problems.append(
                f"byte count {result.bytes:,} does not fit {result.requests:,} answers of "
                f"{per:,} bytes (+ up to {connections} partial ones)"
            )
    return result


@dataclass
class Transfer:
    """One curl transfer: status, bytes and seconds as curl measured them."""

    status: int
    bytes: int
    seconds: float
    body: bytes
    #: CPU seconds curl itself used (so a reader sees whether the client was the limit).
    client_cpu: float = 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6


def curl(curl_bin: str, *args: str, timeout: float = 600.0, discard: bool = False) -> Transfer:
    """Run one curl transfer; the response body is kept only when it is small (JSON).
    ``discard``: the body goes to /dev/null (a download the client must not slow down;
    check its sha256 separately with download_sha256)."""
    with tempfile.NamedTemporaryFile() as body:
        before = _children_cpu()
        out = subprocess.run(
            [
                curl_bin, "-sS", "--max-time", str(int(timeout)),
                "-o", os.devnull if discard else body.name, "-w",
                "%{http_code} %{size_upload} %{size_download} %{time_total}", *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 30,
        )  # fmt: skip
        client_cpu = _children_cpu() - before
        if out.returncode != 0:
            raise RuntimeError(f"curl failed ({out.returncode}): {out.stderr.strip()}")
        status, up, down, total = out.stdout.split()
        size = Path(body.name).stat().st_size
        kept = Path(body.name).read_bytes() if size < (1 << 20) else b""
    return Transfer(int(status), max(int(up), int(down)), float(total), kept, client_cpu)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_sha256(port: int, path: str) -> tuple[int, int, str]:
    """Status, byte count and sha256 of a (large) download, streamed, untimed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        digest = hashlib.sha256()
        size = 0
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return response.status, size, digest.hexdigest()
    finally:
        connection.close()


@dataclass
class PollResult:
    """Latencies of a poller that asked for a document at a fixed pace."""

    latencies_ms: list[float]
    failures: list[str]

    @property
    def p99_ms(self) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[98]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


def poll(port: int, path: str, seconds: float, interval: float) -> PollResult:
    """GET ``path`` every ``interval`` s on one keep-alive connection (as a CI poller or a
    ``specify`` client would, not as fast as possible): latency of each full answer."""
    latencies: list[float] = []
    failures: list[str] = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    deadline = time.perf_counter() + seconds
    next_at = time.perf_counter()
    try:
        while (now := time.perf_counter()) < deadline:
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as problem:
                failures.append(f"poll: {problem!r}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or not body.startswith(b"{"):
                failures.append(f"poll: status {response.status}, {len(body)} bytes")
    finally:
        connection.close()
    return PollResult(latencies, failures)
