"""Cold start of the pyz: from exec to the first ``/healthz`` 200, as a VM or container sees it.

Runs ``python3 -I -S dist/release-server.pyz`` (the image's ENTRYPOINT) N times on a fresh
storage directory and free port each time, and prints median, min and max in milliseconds
with the size of the pyz. The target is a median of at most 300 ms. Build the pyz first:
``python build/pyz.py``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300.0
POLL_S = 0.002


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(port: int) -> bool:
    """True once the server answers /healthz with 200; False while it cannot."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def one_start(python: str, pyz: Path, timeout: float) -> float:
    """Seconds from spawning the server to its first healthy answer."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as storage:
        command = [python, "-I", "-S", str(pyz), "--host", "127.0.0.1", "--port", str(port)]
        command += ["--storage", storage]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AUTH_TOKEN": "cold-start-benchmark-token",
        }
        start = time.perf_counter()
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while not healthy(port):
                if server.poll() is not None:
                    raise SystemExit(f"the server exited with {server.returncode}: {command}")
                if time.perf_counter() - start > timeout:
                    raise SystemExit(f"no /healthz 200 within {timeout} s: {command}")
                time.sleep(POLL_S)
            return time.perf_counter() - start
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyz", type=Path, default=ROOT / "dist" / "release-server.pyz")
    parser.add_argument("--runs", type=int, default=20, help="number of cold starts (20)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run it with")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds allowed per start")
    args = parser.parse_args()
    if not args.pyz.is_file():
        parser.error(f"{args.pyz} does not exist; build it with: python build/pyz.py")
    one_start(args.python, args.pyz, args.timeout)  # warm the page cache: "cold" means the process
    times = [one_start(args.python, args.pyz, args.timeout) * 1000 for _ in range(args.runs)]
    median = statistics.median(times)
    print(f"pyz: {args.pyz.name}, {args.pyz.stat().st_size} bytes")
    print(f"cold start to first /healthz 200 over {args.runs} runs:")
    print(f"  median {median:.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms")
    verdict = "met" if median <= TARGET_MS else "NOT met"
    print(f"  target: median <= {TARGET_MS:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
