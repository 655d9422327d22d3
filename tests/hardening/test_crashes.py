"""Crashes: SIGKILL the server at random points of uploads, overwrites and retention pruning.

After every restart each listed package must be complete (its bytes are one whole version
a client sent) with the right sha256, the listing must match the storage, and what uploads
that died left must go: their temp files at start-up, or on S3 their multipart uploads and
unpublished blobs in the sweep (which takes them once stale; start-up cannot tell them from
another replica's live uploads). The runs are seeded, so a failure names its seed.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from conftest import DIRECTORY_ONLY, ServerProcess, StartServer

from .helpers import (
    MiB,
    collect_dead_uploads,
    sha256,
    stored_packages,
    temp_files,
    unfinished_uploads,
)

pytestmark = pytest.mark.hardening

NAMES = ("alpha.tar.gz", "beta.zip", "gamma.bin", "delta.whl", "epsilon.pyz", "zeta.tgz")
SIZES = (1, 5_000, 300_000, 2 * MiB, 6 * MiB)  # empty uploads are refused (422)
MAX_PACKAGES = 3
#: (seed, kill rounds): every round starts the server, runs the workload, kills it.
SEEDS = (1, 2, 3)
ROUNDS = 3
#: Rounds added, one at a time, while no kill has yet landed inside an upload (it is random
#: where each kill lands; on a busy machine three rounds sometimes all miss).
EXTRA_ROUNDS = 4


class Workload:
    """Clients that upload new names, overwrite existing ones (and so trigger pruning) until
    the server dies. Every version is recorded before it is sent: one that reached the disk
    may never have been answered."""

    def __init__(self, server: ServerProcess, sent: dict[str, set[str]]) -> None:
        self.server = server
        self.sent = sent
        self.stop = threading.Event()
        self.answers: list[int] = []

    def body(self, data: bytes, paced: bool):
        if not paced:
            return data

        def pieces():  # slow enough that a kill often lands in the middle of the body
            for start in range(0, len(data), 256 * 1024):
                yield data[start : start + 256 * 1024]
                time.sleep(0.01)

        return pieces()

    def run(self, client_seed: int) -> None:
        rng = random.Random(client_seed)
        while not self.stop.is_set():
            name = rng.choice(NAMES)
            data = rng.randbytes(rng.choice(SIZES))
            self.sent[name].add(sha256(data))
            overwrite = rng.random() < 0.6
            paced = len(data) > MiB and rng.random() < 0.5
            try:
                if rng.random() < 0.5:
                    response = requests.put(
                        f"{self.server.url}/assets/{quote(name)}",
                        data=self.body(data, paced),
                        params={"overwrite": "true"} if overwrite else {},
                        headers=self.server.auth(),
                        timeout=10,
                    )
                else:
                    response = requests.post(
                        f"{self.server.url}/upload",
                        files={"file": (name, data)},
                        params={"overwrite": "true"} if overwrite else {},
                        headers=self.server.auth(),
                        timeout=10,
                    )
            except requests.RequestException:
                return  # the server is gone
            self.answers.append(response.status_code)


def check_after_restart(server: ServerProcess, sent: dict[str, set[str]]) -> dict[str, str]:
    """Every listed package is a complete version a client sent, listed with its digest."""
    if server.s3 is None:
        assert temp_files(server.storage) == [], "temp files of dead uploads survived start-up"
    on_disk = stored_packages(server)
    for name, digest in on_disk.items():
        assert digest in sent[name], f"{name} on disk is not a complete version that was sent"
    listing = requests.get(f"{server.url}/packages", timeout=10).json()
    assert {p["name"]: p["sha256"] for p in listing} == on_disk
    for package in listing:
        response = requests.get(f"{server.url}/assets/{quote(package['name'])}", timeout=10)
        assert response.status_code == 200
        assert sha256(response.content) == package["sha256"]
        assert response.headers["etag"] == f'"{package["sha256"]}"'
        assert int(response.headers["content-length"]) == package["size"]
    return on_disk


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_during_uploads_overwrites_and_pruning(
    seed: int, start_server: StartServer, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    storage = tmp_path / "data"
    env = {"MAX_PACKAGES": str(MAX_PACKAGES)}
    sent: dict[str, set[str]] = defaultdict(set)
    answered: list[int] = []
    interrupted = 0
    for round_number in range(ROUNDS + EXTRA_ROUNDS):
        if round_number >= ROUNDS and interrupted and answered:
            break
        server = start_server(storage, env=env)
        check_after_restart(server, sent)
        before = set(unfinished_uploads(server))
        workload = Workload(server, sent)
        clients = [
            threading.Thread(target=workload.run, args=(seed * 1000 + round_number * 10 + i,))
            for i in range(3)
        ]
        for client in clients:
            client.start()
        time.sleep(rng.uniform(0.2, 1.5))
        server.stop(signal.SIGKILL)
        workload.stop.set()
        for client in clients:
            client.join(timeout=15)
            assert not client.is_alive()
        interrupted += bool(set(unfinished_uploads(server)) - before)  # killed inside an upload
        answered += workload.answers
        assert all(code in (200, 201, 409) for code in workload.answers), workload.answers
    assert answered, f"seed {seed}: no upload finished before the kills; nothing was tested"
    assert interrupted, f"seed {seed}: no kill landed inside an upload; nothing was tested"

    server = start_server(storage, env=env)
    check_after_restart(server, sent)
    # The next upload brings retention back within its bound, whatever a kill interrupted.
    fresh = os.urandom(1000)
    sent["after-crash.bin"].add(sha256(fresh))
    assert server.upload("after-crash.bin", fresh).status_code == 200
    assert len(check_after_restart(server, sent)) <= MAX_PACKAGES
    collect_dead_uploads(server)
    assert unfinished_uploads(server) == []
    check_after_restart(server, sent)  # nothing in use was taken


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_during_overwrites_never_loses_a_name(
    seed: int, start_server: StartServer, tmp_path: Path
) -> None:
    """Overwrite is an atomic rename: after a kill each name holds its old or new version."""
    rng = random.Random(seed)
    storage = tmp_path / "data"
    server = start_server(storage, env={"MAX_PACKAGES": "0"})
    sent: dict[str, set[str]] = defaultdict(set)
    for name in NAMES:
        data = rng.randbytes(100_000)
        sent[name].add(sha256(data))
        assert server.upload(name, data).status_code == 200
    stop_at = time.monotonic() + rng.uniform(0.3, 1.2)

    def overwrite(client_seed: int) -> None:
        client_rng = random.Random(client_seed)
        while time.monotonic() < stop_at + 2:
            name = client_rng.choice(NAMES)
            data = client_rng.randbytes(client_rng.choice(SIZES[:4]))
            sent[name].add(sha256(data))
            try:
                requests.put(
                    f"{server.url}/assets/{name}?overwrite=true",
                    data=data,
                    headers=server.auth(),
                    timeout=10,
                )
            except requests.RequestException:
                return

    clients = [threading.Thread(target=overwrite, args=(seed * 100 + i,)) for i in range(3)]
    for client in clients:
        client.start()
    time.sleep(max(stop_at - time.monotonic(), 0))
    server.stop(signal.SIGKILL)
    for client in clients:
        client.join(timeout=15)
    again = start_server(storage, env={"MAX_PACKAGES": "0"})
    assert set(check_after_restart(again, sent)) == set(NAMES)
    collect_dead_uploads(again)
    assert set(check_after_restart(again, sent)) == set(NAMES)


@DIRECTORY_ONLY("hard links, file locks and the digest cache of the directory")
def test_start_up_cleans_what_a_crash_leaves_and_spares_live_uploads(
    start_server: StartServer, tmp_path: Path
) -> None:
    """The states a kill can leave, made by hand: a partial temp file, a temp file still
    hard-linked to a published package (killed between link and unlink), torn metadata.
    A temp file whose lock is held (an upload alive in another process) must survive."""
    storage = tmp_path / "data"
    storage.mkdir()
    kept = os.urandom(200_000)
    (storage / "kept.bin").write_bytes(kept)
    (storage / ".tmp-partial0001").write_bytes(os.urandom(50_000))
    os.link(storage / "kept.bin", storage / ".tmp-linked0002")
    hand = os.urandom(70_000)
    (storage / "hand.bin").write_bytes(hand)
    meta = storage / ".meta"
    meta.mkdir()
    st = os.stat(storage / "hand.bin")
    identity = f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"
    # A torn write of the cached digest (the key is storage.py's file identity).
    (meta / f"{identity}.sha256").write_text("0123abc")
    live = storage / ".tmp-live0003"
    live.write_bytes(b"still arriving")
    holder = os.open(live, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        server = start_server(storage)
        assert temp_files(storage) == [".tmp-live0003"]
        listing = requests.get(f"{server.url}/packages", timeout=10).json()
        assert {p["name"]: p["sha256"] for p in listing} == {
            "kept.bin": sha256(kept),
            "hand.bin": sha256(hand),
        }
        assert requests.get(f"{server.url}/assets/kept.bin", timeout=10).content == kept
        assert requests.get(f"{server.url}/assets/hand.bin", timeout=10).content == hand
    finally:
        os.close(holder)
    again = start_server(storage)  # the lock is free now: that upload died
    assert temp_files(again.storage) == []
    assert again.upload("after.bin", b"ok").status_code == 200
