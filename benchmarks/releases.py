"""What one request costs in a big repository: 1,000 releases x 10 assets.

Usage: python benchmarks/releases.py [--releases 1000] [--assets 10] [--seconds 5]
       [--connections 4] [--pyz dist/release-server.pyz]

Lays out ``acme/tool`` with --releases releases of --assets files each the way a hand
copy does (``<storage>/acme/tool/<tag>/<asset>``, upload times one second apart), plus as
many packages in the root release as there are releases, for the reference: ``/latest``
over the same number of files (and a root package's download, the reference for the
downloads). Starts the server as a user would, then for each path
keeps --connections keep-alive connections busy for --seconds and prints requests per
second and the server's CPU time per request (summed over its process tree, from /proc),
after checking the answer once (every request asks for `application/octet-stream`, as
mise does for assets; the other paths ignore it). The client is Python (threads), so on a
small machine the req/s is bounded by the client; the server CPU per request is the number
to compare.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from services import ROOT, OurServer, our_command

sys.path.insert(0, str(ROOT))
from release_server.github import asset_id

TOKEN = "bench-token-0123456789"
PLATFORMS = ("linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64", "windows-amd64",
             "windows-arm64", "freebsd-amd64", "linux-386", "linux-armv7")  # fmt: skip


def tag(number: int) -> str:
    return f"v1.{number}.0"


def lay_out(storage: Path, releases: int, assets: int) -> None:
    """Release directories and root packages as a hand copy leaves them, oldest first."""
    start = time.time() - releases - 10
    for number in range(releases):
        folder = storage / "acme" / "tool" / tag(number)
        folder.mkdir(parents=True)
        names = [f"tool-{tag(number)[1:]}-{p}.tar.gz" for p in PLATFORMS][: assets - 1]
        for name in [*names, "checksums.txt"]:
            path = folder / name
            path.write_bytes(name.encode())
            os.utime(path, (start + number, start + number))
        root = storage / f"app-{number}.0.zip"
        root.write_bytes(b"root package")
        os.utime(root, (start + number, start + number))


#: mise fetches assets from the REST asset URL as bytes.
BYTES = {"Accept": "application/octet-stream"}


def check(port: int, path: str) -> tuple[int, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers=BYTES)
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    return answer.status, len(body)


def hammer(port: int, path: str, connections: int, seconds: float) -> int:
    """Requests answered by ``connections`` keep-alive clients in ``seconds``."""
    done = [0] * connections
    deadline = time.perf_counter() + seconds

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            connection.request("GET", path, headers=BYTES)
            answer = connection.getresponse()
            answer.read()
            done[slot] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--assets", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--pyz", type=Path, help="run this zipapp instead of the source tree")
    args = parser.parse_args()
    middle = tag(args.releases // 2)
    paths = [
        ("reference: /latest (root release)", "/latest"),
        ("reference: root download /assets/", f"/assets/app-{args.releases // 2}.0.zip"),
        ("releases, one page of 100", "/repos/acme/tool/releases?per_page=100"),
        ("releases, page 5 of 100", "/repos/acme/tool/releases?per_page=100&page=5"),
        ("latest release", "/repos/acme/tool/releases/latest"),
        ("release by tag", f"/repos/acme/tool/releases/tags/{middle}"),
        (
            "asset by id (bytes, as mise)",
            f"/repos/acme/tool/releases/assets/{asset_id('checksums.txt', f'acme/tool/{middle}')}",
        ),
        ("atom feed", "/acme/tool/releases.atom"),
        ("releases page (HTML)", "/acme/tool/releases"),
        ("index /", "/"),
        ("latest download (302)", "/acme/tool/releases/latest/download/tool-linux-amd64.tar.gz"),
        ("download by tag", f"/acme/tool/releases/download/{middle}/checksums.txt"),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-releases-") as scratch:
        storage = Path(scratch) / "data"
        started = time.perf_counter()
        lay_out(storage, args.releases, args.assets)
        took = time.perf_counter() - started
        print(f"laid out {args.releases:,} releases x {args.assets} assets and "
              f"{args.releases:,} root packages in {took:.1f} s")  # fmt: skip
        server = OurServer(our_command(args.pyz), storage, Path(scratch) / "server.log", TOKEN)
        try:
            server.wait_ready()
            print(f"{'path':<36} {'status':>6} {'bytes':>9} {'req/s':>8} {'server CPU/req':>15}")
            for label, path in paths:
                first = time.perf_counter()
                status, size = check(server.port, path)
                cold = (time.perf_counter() - first) * 1000
                if status >= 400:
                    print(f"{label}: {path} answered {status}\n{server.tail()}")
                    return 1
                hammer(server.port, path, 1, 0.5)  # warm
                before = server.cpu()
                count = hammer(server.port, path, args.connections, args.seconds)
                cpu = server.cpu() - before
                per = cpu / max(count, 1) * 1e6
                print(f"{label:<36} {status:>6} {size:>9,} {count / args.seconds:>8,.0f} "
                      f"{per:>12,.0f} us   (first {cold:,.0f} ms)")  # fmt: skip
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
