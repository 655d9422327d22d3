"""Peak RSS and throughput of the server while a large file goes up and down.

Usage: python benchmarks/memory.py [--size-mib 1024] [--pyz dist/release-server.pyz]

Starts the server as a user would, uploads a file of --size-mib with curl (multipart
``-F`` and raw ``-T``), downloads it, checks the sha256 each time, and prints the
server's peak RSS (VmHWM) after each step with the MB/s. Needs curl.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from compare import make_payload
from conftest import ServerProcess

TOKEN = "bench-token-0123456789"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def curl(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-fsS", "-o", "/dev/null", *args], check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--pyz", help="run this zipapp instead of the source tree")
    args = parser.parse_args()
    if args.pyz:
        os.environ["RELEASE_SERVER_PYZ"] = args.pyz
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "payload.bin"
        digest = make_payload(source, args.size_mib)
        storage = Path(work) / "data"
        storage.mkdir()
        server = ServerProcess(storage, token=TOKEN, env={"MAX_UPLOAD_SIZE": "0"})
        pid = server.proc.pid
        auth = f"Authorization: Bearer {TOKEN}"
        megabytes = args.size_mib * 1.048576
        print(f"file: {args.size_mib} MiB; server pid {pid}; idle peak RSS "
              f"{peak_rss_mib(pid):.1f} MiB")  # fmt: skip
        steps = [
            ("upload multipart (curl -F)", [
                "-H", auth, "-F", f"file=@{source};filename=m.bin", f"{server.url}/upload"]),
            ("upload raw (curl -T)", ["-H", auth, "-T", str(source), f"{server.url}/assets/r.bin"]),
            ("download", [f"{server.url}/assets/r.bin"]),
        ]  # fmt: skip
        try:
            for label, curl_args in steps:
                seconds = curl(*curl_args)
                print(f"{label:28} {megabytes / seconds:8.1f} MB/s   "
                      f"server peak RSS {peak_rss_mib(pid):6.1f} MiB")  # fmt: skip
            for name in ("m.bin", "r.bin"):
                stored = hashlib.sha256()
                with (storage / name).open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        stored.update(chunk)
                assert stored.hexdigest() == digest, f"{name} differs from the source"
            print("sha256 of both stored files matches the source")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
