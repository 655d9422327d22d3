"""Start the real server as a separate process, the way a user starts it, and talk HTTP to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from s3.weed import s3_bucket, weed  # noqa: F401  (the S3 engine, for every suite)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-token-5f1d3c"
#: Where start_server puts packages in an S3 bucket.
S3_PREFIX = "packages"


def free_port() -> int:
    """Ask the kernel for a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pyz_command(pyz: str | Path) -> list[str]:
    """How the distroless image runs the zipapp: isolated, without site-packages."""
    return [sys.executable, "-I", "-S", str(pyz)]


def default_command() -> list[str]:
    """The source tree, or the pyz named by RELEASE_SERVER_PYZ (for benchmarks)."""
    pyz = os.environ.get("RELEASE_SERVER_PYZ")
    return pyz_command(pyz) if pyz else [sys.executable, "-m", "release_server"]


#: ``pytestmark`` of the suites about storage behaviour: every test runs a third time,
#: "source-s3", the source tree on a fresh bucket of the ``weed`` engine (the plain pyz has
#: no boto3). Two servers started on one storage share one bucket. A test that touches
#: the storage directory itself carries ``@DIRECTORY_ONLY("why")`` and is skipped on S3.
BOTH_BACKENDS = pytest.mark.parametrize(
    "server_command", ["source", "pyz", "source-s3"], indirect=True
)
DIRECTORY_ONLY = pytest.mark.directory_only


@pytest.fixture(scope="session", params=["source", "pyz"])
def server_command(request: pytest.FixtureRequest, tmp_path_factory) -> list[str]:
    """Every black-box test runs twice: against the source tree and the built zipapp
    (and with BOTH_BACKENDS a third time, the source tree on S3).

    The pyz is RELEASE_SERVER_PYZ if set, else built once per session with build/pyz.py."""
    if request.param in ("source", "source-s3"):
        return [sys.executable, "-m", "release_server"]
    pyz = os.environ.get("RELEASE_SERVER_PYZ")
    if not pyz:
        pyz = str(tmp_path_factory.mktemp("pyz") / "release-server.pyz")
        built = subprocess.run(
            [sys.executable, str(ROOT / "build" / "pyz.py"), "--output", pyz],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            pytest.fail(f"building the pyz failed:\n{built.stdout}{built.stderr}")
    return pyz_command(pyz)


class ServerProcess:
    """A running release-server: its URL, storage directory, token and captured log lines."""

    def __init__(
        self,
        storage: Path,
        *,
        token: str | None = TOKEN,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        port: int | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.storage = storage
        #: On S3 (set by start_server): the engine's boto3 client and the bucket.
        self.s3: tuple[Any, str] | None = None
        self.token = token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        full_env = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "CONFIG_PATH")}
        full_env["PYTHONUNBUFFERED"] = "1"
        if token is not None:
            full_env["AUTH_TOKEN"] = token
        full_env.update(env or {})
        cmd = [
            *(command or default_command()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage",
            str(storage),
            *(args or []),
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_ready()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    @property
    def engine(self) -> str:
        """The engine serving (hypercorn or granian), from the start-up log line: ENGINE
        is auto by default, so the source tree runs Granian wherever it is installed."""
        for line in self.lines:
            if '"msg": "starting"' in line:
                return str(json.loads(line)["settings"]["engine"])
        raise AssertionError(f"no start-up line in the log:\n{self.log}")

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{self.log}")

    def auth(self, token: str | None = None) -> dict[str, str]:
        """Headers that authenticate with this server's token (or the one given)."""
        return {"Authorization": f"Bearer {token or self.token}"}

    def upload(self, name: str, data: bytes, **params: str) -> requests.Response:
        """Upload through the multipart endpoint, as CI clients do."""
        return requests.post(
            self.url + "/upload",
            files={"file": (name, data)},
            headers=self.auth(),
            params=params,
            timeout=30,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        return self.proc.returncode


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The storage this test's servers use: s3 for the source-s3 runs of BOTH_BACKENDS,
    else directory. A DIRECTORY_ONLY test is skipped on S3, with its reason."""
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec else {}
    # A suite with a start_server of its own parametrizes this fixture (indirect=True).
    chosen = getattr(request, "param", None)
    if chosen is None:
        chosen = "s3" if params.get("server_command") == "source-s3" else "directory"
    if chosen != "s3":
        return "directory"
    only = request.node.get_closest_marker("directory_only")
    if only:
        pytest.skip(f"{only.args[0]}: a directory-only behaviour")
    return "s3"


def on_backend(
    request: pytest.FixtureRequest,
    backend: str,
    buckets: dict[Path, str],
    storage: Path,
    env: dict[str, str] | None,
) -> tuple[dict[str, str] | None, tuple[Any, str] | None]:
    """The environment of a server started on ``storage``, and what ``ServerProcess.s3``
    holds: on S3 the storage stands for a bucket of the session's ``weed`` (a fresh one the
    first time), so servers started on one storage share it."""
    if backend != "s3":
        return env, None
    engine = request.getfixturevalue("weed")
    if storage not in buckets:
        buckets[storage] = engine.new_bucket()
    bucket = buckets[storage]
    where = {**engine.env, "STORAGE_URL": f"s3://{bucket}/{S3_PREFIX}"}
    return {**where, **(env or {})}, (engine.client, bucket)


@pytest.fixture
def start_server(
    tmp_path: Path, server_command: list[str], backend: str, request: pytest.FixtureRequest
) -> Iterator[StartServer]:
    """Factory: start_server(storage=None, token=TOKEN, env=None, args=None).

    On S3 each storage path stands for a fresh bucket: servers started on the same
    storage serve the same bucket (the path itself is then unused)."""
    started: list[ServerProcess] = []
    buckets: dict[Path, str] = {}

    def start(
        storage: Path | None = None, env: dict[str, str] | None = None, **kwargs
    ) -> ServerProcess:
        storage = storage or tmp_path / "data"
        storage.mkdir(parents=True, exist_ok=True)
        env, s3 = on_backend(request, backend, buckets, storage, env)
        server = ServerProcess(storage, command=server_command, env=env, **kwargs)
        server.s3 = s3
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def settle(server: ServerProcess) -> None:
    """Before reading through another process what one wrote: a directory shows it at
    once; on S3 a replica (or worker) caches its listing for half a second, so a change
    shows through every other within a second (release_server/storage/s3.py)."""
    if server.s3 is not None:
        time.sleep(0.6)


def stored_names(server: ServerProcess) -> list[str]:
    """What the storage holds at its top level, hidden leftovers included: the files of
    the directory (not .meta nor the readiness probe), or on S3 the objects directly below
    the prefix, i.e. the packages' pointers (not the .blobs/ .holds/ .downloads/ levels)."""
    if server.s3 is None:
        return sorted(
            name
            for name in os.listdir(server.storage)
            if name != ".meta" and not name.startswith(".tmp-ready")
        )
    client, bucket = server.s3
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{S3_PREFIX}/", Delimiter="/"
    )
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return sorted(key.removeprefix(f"{S3_PREFIX}/") for key in keys)


@pytest.fixture
def server(start_server: StartServer) -> ServerProcess:
    """A server on a fresh storage directory with the test token configured."""
    return start_server()
