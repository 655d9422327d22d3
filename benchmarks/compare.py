"""release-server next to nginx on the same files, under the same load, in one run.

Usage: python benchmarks/compare.py [--duration 8] [--workers 2] [--only listing,downloads]

Starts release-server (the source tree, or the pyz with --from-pyz) and nginx (sendfile on,
two workers, its temp and log files in the run's temp dir) on the same storage directory,
drives both with wrk and curl, checks every answer (status, byte counts, a sha256 sample
under load, the listing's content), and prints one table: scenario | ours | nginx | ratio |
target | met?. For nginx, /latest and /packages are static copies of release-server's own
answers, so both send the same bytes; uploads go to an nginx WebDAV ``PUT`` location.

Numbers are printed, never asserted: a missed target does not fail the run, a wrong answer
does (exit 1). Needs nginx with the dav module, wrk and curl (Debian: ``apt-get install
nginx-light wrk curl``); installs nothing itself. On a small machine the client, both
servers and whatever else runs share the cores: the load average and the CPU each side used
are printed with the numbers. Progress and details go to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from load import Fetched, PollResult, WrkResult, curl, download_sha256, fetch, poll, run_wrk
from load import sha256_of as file_sha256
from services import ROOT, Nginx, OurServer, Service, find_tools, our_command

TOKEN = "compare-benchmark-token-3c9a"
ServerT = TypeVar("ServerT", bound=Service)
GROUPS = ("listing", "downloads", "uploads", "latency", "cold")
#: The issue's targets (ratios are ours / nginx, at equal workers; issue 14 sets them for
#: Granian; on Hypercorn the figure to watch is "no regression").
LISTING_RATIO = 0.15
PACKAGES_RATIO = 0.3
NOT_MODIFIED_RATIO = 0.25
BIG_DOWNLOAD_RATIO = 0.8
SMALL_DOWNLOAD_RATIO = 0.5
UPLOAD_RATIO = 0.6
UPLOAD_RSS_MIB = 80.0
COLD_START_MS = 300.0
LATENCY_P99_MS = 50.0
#: "CPU per request grows no faster than the response size", with room for noise.
GROWTH_SLACK = 1.10
#: release-server does not trust a listing built within 2 s of the directory's last change
#: (storage.RACY_NS); measuring before that would time its start-up, not its steady state.
RACY_S = 2.5


@dataclass
class Row:
    scenario: str
    ours: str
    nginx: str
    ratio: str
    target: str
    met: str


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def rate(result: WrkResult) -> str:
    """req/s with the server CPU per request, the figure that travels between machines."""
    return f"{result.rps:,.0f} req/s, {result.server_cpu_us:,.0f} us/req"


def ratio_text(ours: float, nginx: float) -> str:
    return f"{ours / nginx:.2f}" if nginx else "-"


def make_payload(path: Path, mib: int) -> str:
    """A file of ``mib`` MiB that does not compress or deduplicate; returns its sha256."""
    import hashlib

    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for index in range(mib):
            chunk = block[:-8] + index.to_bytes(8, "big")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


Expected = list[tuple[str, int, str]]


def make_listing(storage: Path, count: int) -> Expected:
    """``count`` small packages copied in by hand, one second apart; newest first."""
    import hashlib

    storage.mkdir(parents=True)
    rng = random.Random(count)
    base_ns = (int(time.time()) - 30 * 86400) * 1_000_000_000
    suffixes = (".tar.gz", ".zip", "-py3-none-any.whl")
    expected = []
    for index in range(count):
        name = f"tool-{index:05d}{suffixes[index % 3]}"
        data = rng.randbytes(512 + (index % 7) * 256)
        path = storage / name
        path.write_bytes(data)
        mtime = base_ns + index * 1_000_000_000
        os.utime(path, ns=(mtime, mtime))
        expected.append((name, len(data), hashlib.sha256(data).hexdigest()))
    expected.reverse()
    return expected


def release_problems(body: bytes, expected: Expected, base: str) -> list[str]:
    """What is wrong with a /latest document for these packages (empty when right)."""
    doc = json.loads(body)
    assets = doc.get("assets", [])
    problems = []
    if doc.get("tag_name") != "latest":
        problems.append(f"/latest tag_name is {doc.get('tag_name')!r}")
    if len(assets) != len(expected):
        return [*problems, f"/latest lists {len(assets)} assets, expected {len(expected)}"]
    for asset, (name, size, sha) in zip(assets, expected, strict=True):
        url = f"{base}/assets/{quote(name, safe='')}"
        got = (asset["name"], asset["size"], asset["digest"], asset["browser_download_url"])
        if got != (name, size, f"sha256:{sha}", url) or asset["state"] != "uploaded":
            problems.append(f"/latest asset {got} should be {(name, size, sha, url)}")
            break
    return problems


def packages_problems(body: bytes, expected: Expected, base: str) -> list[str]:
    """What is wrong with a /packages?format=json list for these packages."""
    listed = json.loads(body)
    if len(listed) != len(expected):
        return [f"/packages lists {len(listed)} packages, expected {len(expected)}"]
    for entry, (name, size, sha) in zip(listed, expected, strict=True):
        url = f"{base}/assets/{quote(name, safe='')}"
        got = (entry["name"], entry["size"], entry["sha256"], entry["url"])
        if got != (name, size, sha, url):
            return [f"/packages entry {got} should be {(name, size, sha, url)}"]
    return []


class Bench:
    """One run: the services it started, the rows and the problems found."""

    def __init__(self, args: argparse.Namespace, tools: dict[str, str], work: Path) -> None:
        self.args = args
        self.tools = tools
        self.work = work
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.running: list[Service] = []
        self._pyz: Path | None = args.pyz
        self.command = our_command(self.pyz() if args.from_pyz else None)
        #: Where this configuration's servers keep their files (set per engine and workers).
        self.run = work
        self._payloads: dict[int, tuple[Path, str]] = {}
        self._listings: dict[int, tuple[Path, Expected]] = {}

    # -- helpers -------------------------------------------------------------------------------

    def problem(self, where: str, problems: list[str]) -> bool:
        """Record correctness problems; True when there were none."""
        for text in problems:
            self.problems.append(f"{where}: {text}")
            log(f"  PROBLEM {where}: {text}")
        return not problems

    @contextmanager
    def _running(self, server: ServerT) -> Iterator[ServerT]:
        """Wait for ``server``, hand it out, stop it afterwards (also on error)."""
        self.running.append(server)
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()
            self.running.remove(server)

    def ours(self, storage: Path, workers: int) -> AbstractContextManager[OurServer]:
        return self._running(
            OurServer(self.command, storage, self.run / "ours.log", TOKEN, workers)
        )

    def nginx(
        self, storage: Path, static: Path, dav: Path, name: str
    ) -> AbstractContextManager[Nginx]:
        static.mkdir(parents=True, exist_ok=True)
        return self._running(
            Nginx(
                self.tools["nginx"], self.run / name, storage, static, dav, self.args.nginx_workers
            )
        )

    def pyz(self) -> Path:
        """--pyz, or a zipapp built now from this checkout (so it matches the source)."""
        if self._pyz is None:
            pyz = self.work / "pyz" / "release-server.pyz"
            log("building the pyz with build/pyz.py")
            subprocess.run(
                [sys.executable, str(ROOT / "build" / "pyz.py"), "--output", str(pyz)],
                check=True,
                stdout=sys.stderr,
            )
            self._pyz = pyz
        return self._pyz

    def payload(self, mib: int) -> tuple[Path, str]:
        """A source file of ``mib`` MiB outside every storage directory, and its sha256."""
        if mib not in self._payloads:
            source = self.work / "src"
            source.mkdir(exist_ok=True)
            path = source / f"payload-{mib}m.bin"
            self._payloads[mib] = (path, make_payload(path, mib))
        return self._payloads[mib]

    def listing_storage(self, count: int) -> tuple[Path, Expected]:
        if count not in self._listings:
            storage = self.work / f"listing-{count}"
            log(f"creating {count:,} packages")
            self._listings[count] = (storage, make_listing(storage, count))
        return self._listings[count]

    @staticmethod
    def wait_listed(server: OurServer, count: int, timeout: float = 300.0) -> None:
        """Until the server lists ``count`` packages (files copied in are hashed first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = fetch(server.port, "/packages?format=json")
            if got.status == 200 and len(json.loads(got.body)) == count:
                return
            time.sleep(0.2)
        raise RuntimeError(f"release-server did not list {count} packages in {timeout} s")

    def settle(self, server: OurServer) -> None:
        """Wait out the racy-mtime window after start-up (see RACY_S)."""
        left = server.started + RACY_S - time.perf_counter()
        if left > 0:
            time.sleep(left)

    def wrk(
        self,
        service: Service,
        path: str,
        expect: Fetched,
        label: str,
        headers: dict[str, str] | None = None,
    ) -> WrkResult:
        """A warm-up run, then the measured run with checks."""
        args = self.args
        common = {"connections": args.connections, "threads": args.threads, "headers": headers}
        if args.warmup > 0:
            run_wrk(self.tools["wrk"], service, path, seconds=args.warmup, **common)
        result = run_wrk(
            self.tools["wrk"], service, path, seconds=args.duration, expect=expect, **common
        )
        log(f"  {label} {service.name}: {result.summary()}")
        self.problem(f"{label} {service.name}", result.problems)
        return result

    def reference(self, service: Service, path: str, body: bytes | None = None) -> Fetched:
        got = fetch(service.port, path)
        problems = [] if got.status == 200 else [f"{path} answered {got.status}"]
        if body is not None and got.body != body:
            problems.append(f"{path} is not the same {len(body):,} bytes as release-server's")
        self.problem(f"{path} on {service.name}", problems)
        return got

    # -- scenarios -----------------------------------------------------------------------------

    def listing(self) -> None:
        """GET /latest and /packages?format=json at each package count."""
        args = self.args
        endpoints = ("/latest", "/packages?format=json")
        not_modified: Row | None = None
        results: dict[tuple[str, int], tuple[WrkResult, WrkResult, int]] = {}
        for count in args.sizes:
            storage, expected = self.listing_storage(count)
            static = self.run / f"static-{count}"
            with self.ours(storage, args.workers) as ours:
                self.wait_listed(ours, count)
                refs = {path: self.reference(ours, path) for path in endpoints}
                self.problem(
                    f"/latest at {count}",
                    release_problems(refs["/latest"].body, expected, ours.url),
                )
                self.problem(
                    f"/packages at {count}",
                    packages_problems(refs[endpoints[1]].body, expected, ours.url),
                )
                static.mkdir()
                (static / "latest.json").write_bytes(refs["/latest"].body)
                (static / "packages.json").write_bytes(refs[endpoints[1]].body)
                with self.nginx(storage, static, self.run / "dav-listing", "nginx-listing") as ng:
                    self.settle(ours)
                    for path in endpoints:
                        ref = refs[path]
                        nginx_ref = self.reference(ng, path, ref.body)
                        label = f"{path} {count:,} pkgs ({len(ref.body) / 1e6:.2f} MB)"
                        ours_result = self.wrk(ours, path, ref, label)
                        nginx_result = self.wrk(ng, path, nginx_ref, label)
                        results[(path, count)] = (ours_result, nginx_result, len(ref.body))
                    if count == 1000:
                        not_modified = self.not_modified(ours, ng)
                    # Last: a download changes the listing (its download_count).
                    name, size, sha = expected[len(expected) // 2]
                    for service in (ours, ng):
                        got = fetch(service.port, f"/assets/{quote(name)}")
                        if (got.status, len(got.body), got.sha256) != (200, size, sha):
                            self.problem(service.name, [f"/assets/{name} is not the stored file"])
        self.listing_rows(results, endpoints)
        if not_modified is not None:
            self.rows.append(not_modified)

    def not_modified(self, ours: OurServer, ng: Nginx) -> Row | None:
        """Pollers that send the ETag they have get a 304 without a body (a lever)."""
        label = "/latest 1,000 pkgs, If-None-Match"
        results = []
        for service in (ours, ng):
            etag = fetch(service.port, "/latest").headers.get("etag", "")
            headers = {"If-None-Match": etag}
            expect = fetch(service.port, "/latest", headers)
            if expect.status != 304:
                self.problem(label, [f"{service.name} answered {expect.status}, not 304"])
                return None
            results.append(self.wrk(service, "/latest", expect, label, headers))
        speeds = [result.rps for result in results]
        return Row(
            f"GET {label} (304), {self.args.connections} conn",
            rate(results[0]),
            rate(results[1]),
            ratio_text(*speeds),
            f">= {NOT_MODIFIED_RATIO} x nginx req/s",
            verdict(speeds[0] >= NOT_MODIFIED_RATIO * speeds[1] and not results[0].problems),
        )

    def listing_rows(
        self,
        results: dict[tuple[str, int], tuple[WrkResult, WrkResult, int]],
        endpoints: tuple[str, ...],
    ) -> None:
        args = self.args
        sizes = args.sizes
        for path in endpoints:
            for count in sizes:
                ours, ng, body = results[(path, count)]
                clean = not ours.problems
                if count == 1000:
                    wanted = LISTING_RATIO if path == "/latest" else PACKAGES_RATIO
                    target = f">= {wanted} x nginx req/s; no error"
                    met = verdict(ours.rps >= wanted * ng.rps and clean)
                else:
                    target, met = "see CPU/request row", "-"
                self.rows.append(
                    Row(
                        f"GET {path}, {count:,} pkgs ({body / 1e6:.2f} MB), "
                        f"{args.connections} conn",
                        rate(ours),
                        rate(ng),
                        ratio_text(ours.rps, ng.rps),
                        target,
                        met,
                    )
                )
            if len(sizes) < 2:
                continue
            ours_cpu = [results[(path, n)][0].server_cpu_us for n in sizes]
            nginx_cpu = [results[(path, n)][1].server_cpu_us for n in sizes]
            bodies = [results[(path, n)][2] for n in sizes]
            # Step by step: from each package count to the next, CPU/request may grow by
            # at most the factor the body grew by.
            body_growth = [b / a for a, b in itertools.pairwise(bodies)]
            cpu_growth = [b / a for a, b in itertools.pairwise(ours_cpu)]
            ok = all(
                cpu <= body * GROWTH_SLACK
                for cpu, body in zip(cpu_growth, body_growth, strict=True)
            )
            steps = " > ".join
            factors = ", ".join
            self.rows.append(
                Row(
                    f"GET {path}: server CPU/request at {steps(f'{n:,}' for n in sizes)} pkgs",
                    f"{steps(f'{cpu:,.0f}' for cpu in ours_cpu)} us "
                    f"({factors(f'x{g:.1f}' for g in cpu_growth)})",
                    f"{steps(f'{cpu:,.0f}' for cpu in nginx_cpu)} us",
                    f"{ours_cpu[-1] / max(nginx_cpu[-1], 1e-9):.1f} (CPU)",
                    f"each step <= body's ({factors(f'x{g:.1f}' for g in body_growth)})",
                    verdict(ok),
                )
            )

    def downloads(self) -> None:
        """One large download with curl, then 1 MiB downloads with wrk."""
        args = self.args
        big, big_sha = self.payload(args.big_mib)
        small, small_sha = self.payload(1)
        storage = self.run / "files"
        storage.mkdir()
        os.link(big, storage / "big.bin")
        shutil.copyfile(small, storage / "one-mib.bin")
        size = big.stat().st_size
        with (
            self.ours(storage, args.workers) as ours,
            self.nginx(storage, self.run / "static-files", self.run / "dav-files", "nginx-dl")
            as ng,
        ):  # fmt: skip
            self.wait_listed(ours, 2)
            speeds: dict[str, float] = {}
            client: dict[str, float] = {}
            for service in (ours, ng):
                runs = []
                cpu = []
                for _ in range(args.runs):
                    before = service.cpu()
                    got = curl(self.tools["curl"], f"{service.url}/assets/big.bin", discard=True)
                    cpu.append((service.cpu() - before) / got.seconds)
                    if (got.status, got.bytes) != (200, size):
                        self.problem(service.name, [f"big download: {got.status}, {got.bytes}"])
                    runs.append(got.mb_per_s)
                    client[service.name] = got.client_cpu / got.seconds
                status, received, sha = download_sha256(service.port, "/assets/big.bin")
                if (status, received, sha) != (200, size, big_sha):
                    self.problem(service.name, [f"big download sha256 {sha[:12]} ({received})"])
                speeds[service.name] = statistics.median(runs)
                log(
                    f"  {args.big_mib} MiB download {service.name}: "
                    + ", ".join(f"{r:,.0f}" for r in runs)
                    + f" MB/s; server CPU {statistics.median(cpu):.0%}, curl -o /dev/null CPU "
                    f"{client[service.name]:.0%}; sha256 checked separately"
                )
            ours_speed, nginx_speed = speeds[ours.name], speeds[ng.name]
            self.rows.append(
                Row(
                    f"one {args.big_mib / 1024:g} GiB download (curl -o /dev/null, median of "
                    f"{args.runs})",
                    f"{ours_speed:,.0f} MB/s (curl CPU {client[ours.name]:.0%})",
                    f"{nginx_speed:,.0f} MB/s (curl CPU {client[ng.name]:.0%})",
                    ratio_text(ours_speed, nginx_speed),
                    f">= {BIG_DOWNLOAD_RATIO} x nginx MB/s",
                    verdict(ours_speed >= BIG_DOWNLOAD_RATIO * nginx_speed),
                )
            )
            path = "/assets/one-mib.bin"
            refs = {}
            for service in (ours, ng):
                refs[service.name] = got = self.reference(service, path)
                if got.sha256 != small_sha:
                    self.problem(service.name, [f"{path} sha256 differs from the file"])
            label = f"1 MiB downloads, {args.connections} conn"
            ours_result = self.wrk(ours, path, refs[ours.name], label)
            nginx_result = self.wrk(ng, path, refs[ng.name], label)
            self.rows.append(
                Row(
                    label,
                    rate(ours_result),
                    rate(nginx_result),
                    ratio_text(ours_result.rps, nginx_result.rps),
                    f">= {SMALL_DOWNLOAD_RATIO} x nginx req/s",
                    verdict(
                        ours_result.rps >= SMALL_DOWNLOAD_RATIO * nginx_result.rps
                        and not ours_result.problems
                    ),
                )
            )

    def uploads(self) -> None:
        """One large upload, multipart and raw, against nginx's WebDAV PUT."""
        args = self.args
        source, sha = self.payload(args.upload_mib)
        size = source.stat().st_size
        auth = f"Authorization: Bearer {TOKEN}"
        c = self.tools["curl"]

        def check_stored(where: str, path: Path) -> None:
            if file_sha256(path) != sha:
                self.problem(where, [f"the stored {path.name} differs from the source"])

        results: dict[str, tuple[float, float]] = {}
        for kind in ("multipart", "raw"):
            storage = self.run / f"up-{kind}"
            storage.mkdir()
            # One worker: a single upload runs in one process, whose peak RSS is the number.
            with self.ours(storage, 1) as ours:
                idle = ours.peak_rss_mib()
                runs = []
                for run in range(args.runs):
                    name = f"upload-{kind}-{run}.bin"
                    if kind == "multipart":
                        got = curl(c, "-H", auth, "-F", f"file=@{source};filename={name}",
                                   f"{ours.url}/upload")  # fmt: skip
                        wanted = 200
                    else:
                        got = curl(c, "-H", auth, "-T", str(source), f"{ours.url}/assets/{name}")
                        wanted = 201
                    answer = json.loads(got.body or b"{}")
                    if got.status != wanted or (answer.get("sha256"), answer.get("size")) != (
                        sha,
                        size,
                    ):
                        self.problem(f"{kind} upload", [f"answer {got.status} {answer}"])
                    check_stored(f"{kind} upload", storage / name)
                    runs.append(size / got.seconds / 1e6)
                    deleted = curl(c, "-X", "DELETE", "-H", auth, f"{ours.url}/assets/{name}")
                    if deleted.status != 204:
                        self.problem(f"{kind} upload", [f"DELETE answered {deleted.status}"])
                peak = ours.peak_rss_mib()
            results[kind] = (statistics.median(runs), peak)
            log(
                f"  {args.upload_mib} MiB upload {kind}: "
                + ", ".join(f"{r:,.0f}" for r in runs)
                + f" MB/s; peak RSS {peak:.1f} MiB (idle {idle:.1f}); sha256 checked"
            )
        dav = self.run / "dav-up"
        with self.nginx(self.run / "files", self.run / "static-up", dav, "nginx-up") as ng:
            runs = []
            for run in range(args.runs):
                name = f"upload-{run}.bin"
                got = curl(c, "-T", str(source), f"{ng.url}/dav/{name}")
                if got.status != 201:
                    self.problem("nginx PUT", [f"answered {got.status}"])
                check_stored("nginx PUT", dav / name)
                (dav / name).unlink()
                runs.append(size / got.seconds / 1e6)
            nginx_speed = statistics.median(runs)
            log(f"  {args.upload_mib} MiB nginx PUT: " + ", ".join(f"{r:,.0f}" for r in runs))
        for kind, flag in (("multipart", "-F"), ("raw", "-T")):
            speed, peak = results[kind]
            self.rows.append(
                Row(
                    f"one {args.upload_mib / 1024:g} GiB upload, {kind} (curl {flag}) vs PUT",
                    f"{speed:,.0f} MB/s, RSS {peak:.0f} MiB",
                    f"{nginx_speed:,.0f} MB/s",
                    ratio_text(speed, nginx_speed),
                    f">= {UPLOAD_RATIO} x nginx; RSS < {UPLOAD_RSS_MIB:.0f} MiB",
                    verdict(speed >= UPLOAD_RATIO * nginx_speed and peak < UPLOAD_RSS_MIB),
                )
            )

    def latency(self) -> None:
        """A poller on /latest while uploads of --latency-upload-mib run back to back."""
        args = self.args
        count = 1000
        storage, expected = self.listing_storage(count)
        source, sha = self.payload(args.latency_upload_mib)
        dav = self.run / "dav-latency"
        uploads = args.latency_uploads
        with self.ours(storage, args.latency_workers) as ours:
            self.wait_listed(ours, count)
            ref = self.reference(ours, "/latest")
            self.problem("/latest before uploads", release_problems(ref.body, expected, ours.url))
            static = self.run / "static-latency"
            static.mkdir()
            (static / "latest.json").write_bytes(ref.body)
            with self.nginx(storage, static, dav, "nginx-latency") as ng:
                self.reference(ng, "/latest", ref.body)
                self.settle(ours)
                targets = {
                    ours.name: (
                        ours,
                        lambda i: [
                            "-H", f"Authorization: Bearer {TOKEN}", "-T", str(source),
                            f"{ours.url}/assets/busy-{i}.bin?overwrite=true",
                        ],
                        (200, 201),
                        storage,
                    ),
                    ng.name: (
                        ng,
                        lambda i: ["-T", str(source), f"{ng.url}/dav/busy-{i}.bin"],
                        (201, 204),
                        dav,
                    ),
                }  # fmt: skip
                p99: dict[str, float] = {}
                for name, (service, upload_args, statuses, stored) in targets.items():
                    result, done = self.poll_during_uploads(service, upload_args, statuses, uploads)
                    p99[name] = result.p99_ms
                    for i in range(uploads):
                        path = stored / f"busy-{i}.bin"
                        if not path.exists() or file_sha256(path) != sha:
                            self.problem(name, [f"{path.name} is not the uploaded file"])
                    self.problem(f"/latest under uploads {name}", result.failures[:5])
                    log(
                        f"  /latest while {uploads} x {args.latency_upload_mib} MiB uploads, "
                        f"{name}: {len(result.latencies_ms)} polls, p50 {result.p50_ms:.1f} ms, "
                        f"p99 {result.p99_ms:.1f} ms, max {max(result.latencies_ms):.1f} ms; "
                        f"{done} uploads completed"
                    )
                final = fetch(ours.port, "/latest")
                names = {asset["name"] for asset in json.loads(final.body)["assets"]}
                if len(names) != count + uploads:
                    self.problem("/latest after uploads", [f"{len(names)} assets listed"])
                # The listing storage is shared with the next runs: leave it as it was.
                auth = f"Authorization: Bearer {TOKEN}"
                for i in range(uploads):
                    url = f"{ours.url}/assets/busy-{i}.bin"
                    curl(self.tools["curl"], "-X", "DELETE", "-H", auth, url)
        self.rows.append(
            Row(
                f"GET /latest p99 ({count:,} pkgs, 1 poller every {args.poll_ms:g} ms) while "
                f"{uploads} x {args.latency_upload_mib} MiB uploads (curl -T) run",
                f"{p99[ours.name]:.1f} ms",
                f"{p99[ng.name]:.1f} ms",
                "-",
                f"p99 < {LATENCY_P99_MS:.0f} ms",
                verdict(p99[ours.name] < LATENCY_P99_MS),
            )
        )

    def poll_during_uploads(
        self,
        service: Service,
        upload_args: Callable[[int], list[str]],
        statuses: tuple[int, ...],
        uploads: int,
    ) -> tuple[PollResult, int]:
        """Run ``uploads`` curl loops, poll /latest meanwhile, stop the loops."""
        stop = threading.Event()
        done = [0]
        failures: list[str] = []

        def uploader(index: int) -> None:
            while not stop.is_set():
                try:
                    got = curl(self.tools["curl"], *upload_args(index), timeout=120)
                except RuntimeError as problem:
                    failures.append(str(problem))
                    return
                if got.status not in statuses:
                    failures.append(f"upload answered {got.status}")
                    return
                done[0] += 1

        threads = [threading.Thread(target=uploader, args=(i,)) for i in range(uploads)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # let every upload get going before the first poll
        try:
            result = poll(service.port, "/latest", self.args.duration, self.args.poll_ms / 1000)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=180)
        self.problem(f"uploads to {service.name}", failures[:5])
        return result, done[0]

    def cold(self) -> None:
        """Cold start of the pyz to the first /healthz 200 (benchmarks/cold_start.py)."""
        import cold_start

        args = self.args
        pyz = self.pyz()
        cold_start.one_start(sys.executable, pyz, 20.0)  # warm the page cache
        ours = [
            cold_start.one_start(sys.executable, pyz, 20.0) * 1000 for _ in range(args.cold_runs)
        ]
        nginx = []
        for run in range(args.cold_runs):
            server = Nginx(
                self.tools["nginx"],
                self.work / f"nginx-cold-{run}",
                self.work / "cold-storage",
                self.work / "cold-static",
                self.work / "cold-dav",
                self.args.nginx_workers,
            )
            try:
                nginx.append(server.wait_ready(poll=0.002) * 1000)
            finally:
                server.stop()
        log(
            f"  cold start {pyz.name} ({pyz.stat().st_size:,} bytes): median "
            f"{statistics.median(ours):.0f} ms, min {min(ours):.0f}, max {max(ours):.0f}"
        )
        median = statistics.median(ours)
        self.rows.append(
            Row(
                f"cold start of the pyz to the first /healthz 200 (median of {args.cold_runs})",
                f"{median:.0f} ms",
                f"{statistics.median(nginx):.0f} ms",
                "-",
                f"<= {COLD_START_MS:.0f} ms median",
                verdict(median <= COLD_START_MS),
            )
        )


def merge(table: dict[tuple[str, int], dict[str, Row]], engines: list[str]) -> list[list[str]]:
    """One line per scenario and worker count: each engine's figure and its ratio to the
    nginx of the same run; target and verdict are the last engine's (Granian's)."""
    lines = [["scenario", "workers", *engines, "nginx", *(f"{e} / nginx" for e in engines),
              "target", "met?"]]  # fmt: skip
    for (scenario, workers), rows in table.items():
        last = rows.get(engines[-1]) or next(iter(rows.values()))
        lines.append(
            [
                scenario,
                str(workers),
                *(rows[e].ours if e in rows else "-" for e in engines),
                last.nginx,
                *(rows[e].ratio if e in rows else "-" for e in engines),
                last.target,
                last.met,
            ]
        )
    return lines


def print_table(table: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    header, *rows = table

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run (8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up (2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", default="1,2", help="worker counts, each run for "
                        "release-server and nginx alike (1,2); uploads always use 1")  # fmt: skip
    parser.add_argument("--engines", default="hypercorn,granian",
                        help="release-server engines to compare (hypercorn,granian)")  # fmt: skip
    parser.add_argument("--sizes", default="100,1000,10000", help="package counts (100,1000,10000)")
    parser.add_argument("--runs", type=int, default=5, help="curl transfers per large file (5)")
    parser.add_argument("--big-mib", type=int, default=1024, help="large download size (1024)")
    parser.add_argument("--upload-mib", type=int, default=1024, help="large upload size (1024)")
    parser.add_argument("--latency-upload-mib", type=int, default=100)
    parser.add_argument("--latency-uploads", type=int, default=4)
    parser.add_argument("--latency-workers", type=int, default=1,
                        help="release-server workers while polling under uploads (1)")  # fmt: skip
    parser.add_argument("--poll-ms", type=float, default=10.0, help="poller interval (10 ms)")
    parser.add_argument("--cold-runs", type=int, default=20)
    parser.add_argument("--pyz", type=Path, help="a built zipapp for the cold start "
                        "(default: build one from this checkout with build/pyz.py)")  # fmt: skip
    parser.add_argument("--from-pyz", action="store_true", help="run every scenario on the pyz")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"subset of {','.join(GROUPS)}")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, files)")
    args = parser.parse_args(argv)
    args.sizes = sorted(int(n) for n in args.sizes.split(","))
    args.worker_counts = [int(n) for n in args.workers.split(",")]
    args.engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    if args.from_pyz and args.engines != ["hypercorn"] and not os.environ.get("PYZ_SITE"):
        parser.error(
            "--from-pyz runs Hypercorn only (the pyz is pure Python): --engines hypercorn, or "
            "name a directory holding Granian in PYZ_SITE, as the image does"
        )
    args.only = [group.strip() for group in args.only.split(",") if group.strip()]
    unknown = set(args.only) - set(GROUPS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}; choose from {GROUPS}")
    if "listing" in args.only and 1000 not in args.sizes:
        parser.error("--sizes must include 1000 (the target scenario)")
    if args.pyz and not args.pyz.is_file():
        parser.error(f"--pyz: {args.pyz} does not exist; build it: python build/pyz.py")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools, missing = find_tools()
    if missing:
        print(
            "compare.py needs nginx (with the dav module), wrk and curl; missing: "
            + ", ".join(missing)
            + "\nOn Debian or Ubuntu: apt-get update && apt-get install -y nginx-light wrk curl",
            file=sys.stderr,
        )
        return 2
    work = Path(tempfile.mkdtemp(prefix="release-server-compare-"))
    bench = Bench(args, tools, work)
    load_before = load_average()
    started = time.monotonic()
    table: dict[tuple[str, int], dict[str, Row]] = {}
    base = bench.command
    try:
        for workers in args.worker_counts:
            for engine in args.engines:
                args.workers, args.nginx_workers = workers, str(workers)
                bench.command = [*base, "--engine", engine]
                bench.run = work / f"{engine}-{workers}"
                bench.run.mkdir()
                bench.rows = []
                for group in GROUPS:
                    once = group == "cold" and (workers, engine) != (
                        args.worker_counts[0],
                        args.engines[0],
                    )
                    if group in args.only and not once:
                        log(f"== {group}, {engine}, {workers} worker(s) (load {load_average()})")
                        getattr(bench, group)()
                for row in bench.rows:
                    table.setdefault((row.scenario, workers), {})[engine] = row
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for service in list(bench.running):
            service.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    versions = subprocess.run([tools["nginx"], "-v"], capture_output=True, text=True).stderr
    mode = "the pyz" if args.from_pyz else "source tree"
    print(
        f"release-server ({mode}, Python {platform.python_version()}, engines "
        f"{', '.join(args.engines)}; --workers N for the wrk and download scenarios, "
        f"{args.latency_workers} for the latency one, 1 for uploads) vs "
        f"{versions.strip().split(': ')[-1]} (worker_processes N, sendfile on) for N in "
        f"{', '.join(map(str, args.worker_counts))}; load generator wrk -t"
        f"{args.threads} -c{args.connections} -d{args.duration:g}s after {args.warmup:g}s warm-up, "
        f"and curl; {os.cpu_count()} CPUs; load average {load_before} before, "
        f"{load_average()} after; {time.monotonic() - started:.0f} s"
    )
    print()
    print_table(merge(table, args.engines))
    print(
        "\nnginx sends /latest and /packages as static files; release-server builds them (cached"
        "\nper listing version). release-server hashes and fsyncs every upload; nginx's PUT does"
        "\nneither. stderr has each run's details, with the CPU other processes used meanwhile."
    )
    if bench.problems:
        print(f"\n{len(bench.problems)} correctness problem(s):")
        for text in bench.problems:
            print(f"  - {text}")
        return 1
    print("\nEvery answer checked was correct (status, byte counts, sha256 samples, listings).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
