"""Fixtures of the hardening suite, and the ``hardening`` marker every test here carries."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServerProcess, StartServer, default_command, on_backend

#: Where the engines differ (what they refuse before the app sees it, timeouts, framing),
#: every test runs on both; elsewhere on the one ``auto`` picks (Granian when installed).
ON_BOTH_ENGINES = ("test_hostile_input", "test_review_findings", "test_slow_clients")
#: About storage behaviour: every test runs a second time, "source-s3", on a fresh bucket
#: of the ``weed`` engine (tests/conftest.py ``backend``; DIRECTORY_ONLY skips it there).
ON_BOTH_BACKENDS = ("test_races", "test_crashes")

#: Size of the small volume the disk-full tests put the storage directory on.
SMALL_VOLUME = "8m"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hardening: disk full, crashes, races, hostile input, slow clients, secrets "
        "(tests/hardening; select with -m hardening, skip with -m 'not hardening')",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "backend" in metafunc.fixturenames and module in ON_BOTH_BACKENDS:
        metafunc.parametrize(
            "backend", ["directory", "s3"], ids=["directory", "source-s3"], indirect=True
        )
    if "engine" not in metafunc.fixturenames:
        return
    engines = ["auto"]
    if module in ON_BOTH_ENGINES:
        engines = ["hypercorn"]
        if importlib.util.find_spec("granian") and not os.environ.get("RELEASE_SERVER_PYZ"):
            engines.insert(0, "granian")
    metafunc.parametrize("engine", engines, scope="module")


@pytest.fixture
def start_server(
    tmp_path: Path, engine: str, backend: str, request: pytest.FixtureRequest
) -> Iterator[StartServer]:
    """Like the suite-wide factory, but each test runs once per engine, against the source
    tree (or the zipapp named by RELEASE_SERVER_PYZ): the hardening tests are too slow to
    run twice more (source and pyz). On S3 (ON_BOTH_BACKENDS) servers started on one
    storage share its bucket, and run the source tree (the plain pyz has no boto3)."""
    started: list[ServerProcess] = []
    buckets: dict[Path, str] = {}
    source = [sys.executable, "-m", "release_server"]
    command = [*(source if backend == "s3" else default_command()), "--engine", engine]

    def start(
        storage: Path | None = None, env: dict[str, str] | None = None, **kwargs: object
    ) -> ServerProcess:
        storage = storage or tmp_path / "data"
        storage.mkdir(parents=True, exist_ok=True)
        # A short shutdown bound keeps teardown fast when a test leaves a request hanging.
        env = {"GRACEFUL_TIMEOUT": "2", **(env or {})}
        env, s3 = on_backend(request, backend, buckets, storage, env)
        kwargs.setdefault("command", command)
        server = ServerProcess(storage, env=env, **kwargs)  # type: ignore[arg-type]
        server.s3 = s3
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _mount_problem() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CI runs as root)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount are not installed"
    return None


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A fresh 8 MiB tmpfs: a real filesystem that runs out of space (ENOSPC) quickly.

    Request it before ``start_server`` so the servers stop before it is unmounted.
    """
    problem = _mount_problem()
    if problem:
        pytest.skip(f"disk-full tests need a small tmpfs: {problem}")
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_VOLUME},mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = mounted.stderr.strip() or f"exit {mounted.returncode}"
        pytest.skip(f"disk-full tests need a small tmpfs and mount refused: {reason}")
    try:
        yield mount_point
    finally:
        unmounted = subprocess.run(["umount", str(mount_point)], capture_output=True, check=False)
        if unmounted.returncode != 0:  # still busy: detach it rather than leak it
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)
