"""Servers on a bucket: several release-server processes, one bucket, no shared volume."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT, ServerProcess, pyz_command

from s3.weed import Weed

#: The source tree (the plain pyz has no boto3: the S3 pyz is built by build/pyz.py --with s3).
COMMAND = [sys.executable, "-m", "release_server"]
PREFIX = "packages"

StartReplicas = Callable[..., list[ServerProcess]]


@pytest.fixture
def start_replicas(weed: Weed, s3_bucket: str, tmp_path: Path) -> Iterator[StartReplicas]:
    """start_replicas(count, env=None, command=COMMAND): processes serving
    s3://<fresh bucket>/packages."""
    started: list[ServerProcess] = []

    def start(
        count: int, env: dict[str, str] | None = None, command: list[str] = COMMAND
    ) -> list[ServerProcess]:
        full = {**weed.env, "STORAGE_URL": f"s3://{s3_bucket}/{PREFIX}", **(env or {})}
        servers = []
        for number in range(count):
            unused = tmp_path / f"unused-{len(started)}-{number}"  # --storage is ignored
            server = ServerProcess(unused, env=full, command=command)
            started.append(server)
            servers.append(server)
        return servers

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def s3_pyz_command(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """release-server-s3.pyz (RELEASE_SERVER_S3_PYZ, else built once), run as the image
    runs a pyz: isolated, without site-packages, so its own boto3 is what is used."""
    pyz = os.environ.get("RELEASE_SERVER_S3_PYZ")
    if not pyz:
        pyz = str(tmp_path_factory.mktemp("s3-pyz") / "release-server-s3.pyz")
        built = subprocess.run(
            [sys.executable, str(ROOT / "build" / "pyz.py"), "--with", "s3", "--output", pyz],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            pytest.fail(f"building the S3 pyz failed:\n{built.stdout}{built.stderr}")
    return pyz_command(pyz)
