"""Servers on a bucket: several release-server processes, one bucket, no shared volume."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ServerProcess

from s3.weed import Weed

#: The source tree (the plain pyz has no boto3: the S3 pyz is built by build/pyz.py --with s3).
COMMAND = [sys.executable, "-m", "release_server"]
PREFIX = "packages"

StartReplicas = Callable[..., list[ServerProcess]]


@pytest.fixture
def start_replicas(weed: Weed, s3_bucket: str, tmp_path: Path) -> Iterator[StartReplicas]:
    """start_replicas(count, env=None): processes serving s3://<fresh bucket>/packages."""
    started: list[ServerProcess] = []

    def start(count: int, env: dict[str, str] | None = None) -> list[ServerProcess]:
        full = {**weed.env, "STORAGE_URL": f"s3://{s3_bucket}/{PREFIX}", **(env or {})}
        servers = []
        for number in range(count):
            unused = tmp_path / f"unused-{len(started)}-{number}"  # --storage is ignored
            server = ServerProcess(unused, env=full, command=COMMAND)
            started.append(server)
            servers.append(server)
        return servers

    yield start
    for server in started:
        server.stop()
