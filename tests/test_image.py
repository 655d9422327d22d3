"""The container image, built from the unchanged Dockerfile and run for real.

No registry and no Docker daemon here: ``.ci/image.sh`` makes stand-ins for the two base
images from Debian's own packages (a distroless-like Python 3.11 without shell, pip or
dpkg, and a python:3.11-slim-like builder) in a private buildah storage; then
``scripts/build.sh`` builds the image with ``DOCKER=buildah`` exactly as the README says
(``buildah build --pull=never`` takes the stand-ins by name), and ``buildah run --isolation
chroot`` (host network, no daemon) runs it: on Granian, which the image installs beside
the pyz (ENGINE=auto), and on Hypercorn when asked. Needs root, buildah and debootstrap
(``bash .ci/image.sh --install``); skips otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR

import pytest
import requests

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NONROOT = 65532
# As the publish workflow passes them: IMAGE_NAME lower-cased, SOURCE as GitHub spells it.
REGISTRY = "ghcr.io"
IMAGE_NAME = "acme-corp/release-server"
SOURCE = "https://github.com/Acme-Corp/release-server"
REVISION = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "image-test-token-7c1e9a4b"  # 16+ printable ASCII characters
VERSION = re.search(
    r'^__version__ = "(.+)"$', (ROOT / "release_server" / "__init__.py").read_text(), re.M
).group(1)  # type: ignore[union-attr]
# Only this may differ between the final image and its base (paths relative to /), and
# below app/site only Granian's package and its metadata (build/native_site.py).
APP_FILES = {"app", "app/release-server.pyz", "app/site", "data"}
SITE_FILES = re.compile(r"^app/site/granian(/|-[0-9.]+\.dist-info(/|$)|$)")
BUILD_TOOLS = re.compile(
    r"^(pip|pip3|pip3\.\d+|gcc|cc|c\+\+|g\+\+|make|ld|as|apt|apt-get|dpkg|sh|bash|dash)$"
)


def unavailable() -> str | None:
    """Why buildah cannot build and run images on this machine, or None."""
    if not sys.platform.startswith("linux"):
        return "buildah runs on Linux only"
    if os.geteuid() != 0:
        return (
            "not root: buildah (vfs storage, chroot isolation) and debootstrap need root; "
            "run as root after `bash .ci/image.sh --install`"
        )
    missing = [tool for tool in ("buildah", "debootstrap") if not shutil.which(tool)]
    if missing:
        return f"{' and '.join(missing)} not installed: run `bash .ci/image.sh --install` as root"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Buildah:
    """buildah on the private storage that .ci/image.sh prepared."""

    def __init__(self, storage_conf: str) -> None:
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": storage_conf}

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["buildah", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            pytest.fail(f"buildah {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    @contextmanager
    def container(self, image: str) -> Iterator[str]:
        """A working container of the image, removed however the test ends."""
        name = f"release-server-test-{uuid.uuid4().hex[:12]}"
        self("from", "--pull=never", "--name", name, image)
        try:
            yield name
        finally:
            self("rm", name, check=False)

    @contextmanager
    def mounted(self, image: str) -> Iterator[Path]:
        """The image's root file system, read from the host."""
        with self.container(image) as name:
            path = Path(self("mount", name).stdout.strip())
            try:
                yield path
            finally:
                self("umount", name, check=False)

    def run_args(self, name: str, data: Path, env: dict[str, str]) -> list[str]:
        """`buildah run` as `docker run -v DATA:/data -e ...` would, with the data directory
        as the only writable path: the image's other writable directories (/tmp, /var/tmp,
        nonroot's home) are covered read-only, as a read-only root file system would be."""
        empty = data.parent / "empty"
        empty.mkdir(exist_ok=True)
        args = ["buildah", "run", "--isolation", "chroot", "--network", "host"]
        args += ["--volume", f"{data}:/data:rw"]
        for writable in ("/tmp", "/var/tmp", "/home/nonroot"):
            args += ["--volume", f"{empty}:{writable}:ro"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        return [*args, name, "--"]


@dataclass
class Image:
    name: str
    config: dict  # the Docker image config: User, Env, Entrypoint, Healthcheck, Labels...
    base_layers: int
    layer_sizes: list[int]
    base: str
    build_seconds: float


@pytest.fixture(scope="module")
def buildah(pytestconfig: pytest.Config) -> Buildah:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    prepared = subprocess.run(
        ["bash", str(ROOT / ".ci" / "image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if prepared.returncode != 0:
        pytest.fail(f".ci/image.sh failed:\n{prepared.stdout}{prepared.stderr}")
    conf = re.search(r"^CONTAINERS_STORAGE_CONF=(.+)$", prepared.stdout, re.M)
    assert conf, prepared.stdout
    report(pytestconfig, f"stand-in base images ready in {time.monotonic() - started:.0f} s")
    return Buildah(conf.group(1))


@pytest.fixture(scope="module")
def image(buildah: Buildah) -> Iterator[Image]:
    """The image as scripts/build.sh builds it, with the publish workflow's build args."""
    name = f"{REGISTRY}/{IMAGE_NAME}:{VERSION}"
    env = {
        **buildah.env,
        "DOCKER": "buildah",
        "REGISTRY": REGISTRY,
        "IMAGE_NAME": IMAGE_NAME,
        "TAG": VERSION,
        "VERSION": VERSION,
        "REVISION": REVISION,
        "SOURCE": SOURCE,
    }
    # --format docker: an OCI image config has no HEALTHCHECK; Docker's builds keep it.
    command = ["bash", "scripts/build.sh", "--", "--pull=never", "--isolation", "chroot"]
    command += ["--format", "docker"]
    # BuildKit sets TARGETARCH (Granian's wheel is the target's); buildah 1.28 does not.
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    command += ["--build-arg", f"TARGETARCH={arch}"]
    started = time.monotonic()
    built = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    try:
        if built.returncode != 0:
            pytest.fail(f"scripts/build.sh with buildah failed:\n{built.stdout}{built.stderr}")
        inspected = json.loads(buildah("inspect", "--type", "image", name).stdout)
        base = "gcr.io/distroless/python3-debian12:nonroot"
        base_manifest = json.loads(buildah("inspect", "--type", "image", base).stdout)["Manifest"]
        yield Image(
            name=name,
            config=inspected["Docker"]["config"],
            base_layers=len(json.loads(base_manifest)["layers"]),
            layer_sizes=[layer["size"] for layer in json.loads(inspected["Manifest"])["layers"]],
            base=base,
            build_seconds=seconds,
        )
    finally:
        buildah("rmi", "--force", name, check=False)


def report(config: pytest.Config, line: str) -> None:
    """Show a measurement in pytest's output, also without -s."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        print(f"\n[image] {line}", flush=True)


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def test_builds_with_the_documented_build_args(
    image: Image, record_property, pytestconfig: pytest.Config
) -> None:
    size = sum(image.layer_sizes)
    app_layer = image.layer_sizes[-1]
    record_property("image_size_bytes", size)
    record_property("image_build_seconds", round(image.build_seconds, 1))
    report(
        pytestconfig,
        f"{image.name}: {mib(size)} uncompressed ({mib(size - app_layer)} base stand-in + "
        f"{mib(app_layer)} app layer), built by scripts/build.sh in {image.build_seconds:.0f} s",
    )
    assert image.name == f"ghcr.io/acme-corp/release-server:{VERSION}"
    # The final stage adds one layer to distroless: the pyz, Granian and the empty /data.
    assert len(image.layer_sizes) == image.base_layers + 1
    assert app_layer < 40 * 2**20


def test_labels_and_config(image: Image) -> None:
    labels = image.config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == REVISION
    assert labels["org.opencontainers.image.source"] == SOURCE
    assert labels["org.opencontainers.image.url"] == f"https://{REGISTRY}/{IMAGE_NAME}"
    assert labels["org.opencontainers.image.ref.name"] == VERSION
    assert labels["org.opencontainers.image.title"] == "release-server"
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.base.name"] == image.base
    config = image.config
    assert config["User"] == f"{NONROOT}:{NONROOT}"
    assert config["Entrypoint"] == ["python3", "-I", "-S", "/app/release-server.pyz"]
    assert {"STORAGE_PATH=/data", "HOST=0.0.0.0", "PORT=8000"} <= set(config["Env"])
    assert "PYZ_SITE=/app/site" in config["Env"]  # Granian, which the pyz cannot hold
    assert not [e for e in config["Env"] if e.startswith("ENGINE=")]  # auto: Granian
    assert list(config["Volumes"]) == ["/data"]
    assert list(config["ExposedPorts"]) == ["8000/tcp"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Healthcheck"]["Test"][-1] == "healthcheck"


def test_holds_only_the_pyz_and_granian_on_the_base(image: Image, buildah: Buildah) -> None:
    def tree(root: Path) -> dict[str, os.stat_result]:
        found = {}
        for directory, dirs, files in os.walk(root):
            for entry in dirs + files:
                path = Path(directory, entry)
                found[path.relative_to(root).as_posix()] = path.lstat()
        return found

    with buildah.mounted(image.name) as final, buildah.mounted(image.base) as base:
        final_tree, base_tree = tree(final), tree(base)
        added = set(final_tree) - set(base_tree)
        site = {path for path in added if SITE_FILES.match(path)}
        assert added - site == APP_FILES, f"the final stage added {sorted(added - APP_FILES)}"
        # Granian for the image's own platform, precompiled, and nothing it does not need.
        site_names = {Path(path).name for path in site}
        extension = f"_granian.cpython-311-{os.uname().machine}-linux-gnu.so"
        assert extension in site_names, sorted(site_names)
        assert "mp.cpython-311.pyc" in site_names  # granian/server/__pycache__/
        # Root's, and only root may write: PYZ_SITE refuses anything else.
        for path in {"app", "app/site", *site}:
            stat = final_tree[path]
            assert (stat.st_uid, stat.st_gid) == (0, 0), path
            assert not stat.st_mode & 0o022, f"{path}: {oct(stat.st_mode)}"
        assert set(base_tree) <= set(final_tree)
        with zipfile.ZipFile(final / "app/release-server.pyz") as pyz:
            names = set(pyz.namelist())
        assert {"__main__.py", "release_server/cli.py", "starlette/", "hypercorn/"} <= names
        assert {"boto3/", "botocore/data/s3/"} <= names  # the S3 backend works in the image
        data = final_tree["data"]
        assert (data.st_uid, data.st_gid) == (NONROOT, NONROOT)
        assert os.listdir(final / "data") == []
    tools = sorted(
        path
        for path, stat in final_tree.items()
        if BUILD_TOOLS.match(Path(path).name) and not S_ISDIR(stat.st_mode)
    )
    assert not tools, f"build tools or a shell in the final image: {tools}"
    packages = [p for p in final_tree if re.search(r"(^|/)(pip|site-packages|dist-packages)$", p)]
    assert not packages, f"pip or installed packages in the final image: {packages}"


def test_version_through_the_entrypoint(image: Image, buildah: Buildah, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with buildah.container(image.name) as name:
        command = [*buildah.run_args(name, data, {}), *image.config["Entrypoint"], "--version"]
        done = subprocess.run(command, env=buildah.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"release-server {VERSION}"


def process_tree(pid: int) -> dict[int, int]:
    """The processes below pid (buildah -> chroot runtime -> exec -> the server): {pid: parent}."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree: dict[int, int] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                tree[child] = parent
                todo.append(child)
    return tree


def uids(pid: int) -> set[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {int(uid) for uid in re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()}  # type: ignore[union-attr]


def server_processes(pid: int) -> dict[int, int]:
    """The container's own processes below buildah's chain (buildah-chroot-exec runs the
    command as its child): the entrypoint's python3 and its workers (Granian's are forked,
    so they share its command line), {pid: parent}."""
    found = {}
    for child, parent in process_tree(pid).items():
        with suppress(OSError):
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if command[0].endswith(b"/python3") and b"/app/release-server.pyz" in command:
                found[child] = parent
    return found


@dataclass
class Served:
    url: str
    log: Path
    processes: dict[int, int]  # server_processes()
    healthcheck: Callable[[], subprocess.CompletedProcess[str]]

    @property
    def main(self) -> int:
        """The entrypoint's process: the one `docker stop` signals."""
        (main,) = [pid for pid, parent in self.processes.items() if parent not in self.processes]
        return main

    def engine(self) -> str:
        """The engine serving, from the start-up log line (ENGINE resolved)."""
        for line in self.log.read_text().splitlines():
            with suppress(ValueError):
                entry = json.loads(line)
                if entry.get("msg") == "starting":
                    return str(entry["settings"]["engine"])
        raise AssertionError(f"no start-up line in the log:\n{self.log.read_text()}")


@contextmanager
def serving(
    image: Image, buildah: Buildah, tmp_path: Path, args: tuple[str, ...] = ()
) -> Iterator[Served]:
    """The image run as `docker run -v DATA:/data -e ... IMAGE ARGS...` would, until it is
    stopped as `docker stop` does (SIGTERM to the entrypoint's process), which it must
    survive with exit code 0 and no traceback."""
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, NONROOT, NONROOT)  # as the README asks of a bind-mounted directory
    port = free_port()
    # The container shares the host's network here: listen on loopback only, on a free port.
    env = {"HOST": "127.0.0.1", "PORT": str(port), "AUTH_TOKEN": TOKEN}
    url = f"http://127.0.0.1:{port}"
    health = image.config["Healthcheck"]["Test"][1:]  # ["CMD", ...]: exec form

    with buildah.container(image.name) as name:
        run = buildah.run_args(name, data, env)

        def healthcheck() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*run, *health], env=buildah.env, capture_output=True, text=True, timeout=60
            )

        log = tmp_path / "server.log"
        with log.open("w") as out:
            server = subprocess.Popen(
                [*run, *image.config["Entrypoint"], *args],
                env=buildah.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, f"the server exited:\n{log.read_text()}"
                try:
                    if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, f"no answer on {url}:\n{log.read_text()}"
                time.sleep(0.1)
            served = Served(url, log, server_processes(server.pid), healthcheck)
            yield served
            os.kill(served.main, signal.SIGTERM)
            assert server.wait(timeout=30) == 0, log.read_text()
        finally:
            stop(server)

        stopped = healthcheck()
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "Traceback" not in log.read_text()


def upload_and_download(served: Served, data: Path) -> requests.Response:
    """Upload a package, download it: the download's response, checked."""
    payload = os.urandom(300_000)
    uploaded = requests.post(
        f"{served.url}/upload",
        files={"file": ("tool-1.0.tar.gz", payload)},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert uploaded.status_code in (200, 201), uploaded.text
    downloaded = requests.get(f"{served.url}/assets/tool-1.0.tar.gz", timeout=30)
    assert downloaded.status_code == 200
    assert downloaded.content == payload
    stored = [p for p in data.rglob("*")]
    assert stored and all(p.lstat().st_uid == NONROOT for p in stored)
    return downloaded


def test_serves_on_granian_as_nonroot_with_only_data_writable(
    image: Image, buildah: Buildah, tmp_path: Path
) -> None:
    volume = tmp_path / "scanned"
    volume.mkdir()
    os.chown(volume, NONROOT, NONROOT)
    with buildah.container(image.name) as name:
        # What uid 65532 can write to, everywhere but the kernel's file systems.
        scan = subprocess.run(
            [*buildah.run_args(name, volume, {}), "python3", "-I", "-S", "-c", WRITABLE_SCAN],
            env=buildah.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert scan.returncode == 0, scan.stderr
    assert json.loads(scan.stdout) == {"uid": NONROOT, "gid": NONROOT, "writable": ["/data"]}

    with serving(image, buildah, tmp_path) as served:
        # ENGINE=auto: Granian, imported from /app/site (PYZ_SITE), serves.
        assert served.engine() == "granian"
        assert len(served.processes) == 2, served.processes  # Granian's main and one worker
        assert all(uids(pid) == {NONROOT} for pid in served.processes)
        downloaded = upload_and_download(served, tmp_path / "data")
        assert downloaded.headers["server"] == "granian"
        running = served.healthcheck()
        assert running.returncode == 0, running.stderr
    log = served.log.read_text()
    assert '"logger": "_granian"' in log  # Granian's own lines are JSON lines too


def test_hypercorn_can_be_chosen(image: Image, buildah: Buildah, tmp_path: Path) -> None:
    """A flag after the image name, as the README shows: the pyz's own Hypercorn serves."""
    with serving(image, buildah, tmp_path, ("--engine", "hypercorn")) as served:
        assert served.engine() == "hypercorn"
        assert len(served.processes) == 1, served.processes  # one worker: the main process
        assert all(uids(pid) == {NONROOT} for pid in served.processes)
        downloaded = upload_and_download(served, tmp_path / "data")
        assert downloaded.headers.get("server") != "granian"
        running = served.healthcheck()
        assert running.returncode == 0, running.stderr


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a `buildah run` that is still running, and everything it started.

    First as `docker stop` does: SIGTERM to the container's process, so that each buildah
    process reaps its child and no zombie is left; after 20 s SIGKILL, deepest first."""
    if process.poll() is not None:
        return
    processes = server_processes(process.pid)
    for pid, parent in processes.items():
        if parent not in processes:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
        return
    for pid in [*reversed(process_tree(process.pid)), process.pid]:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)


WRITABLE_SCAN = r"""
import json, os
writable = []
for top, dirs, files in os.walk("/"):
    if top in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for name in [*dirs, *files]:
        path = os.path.join(top, name)
        if not os.path.islink(path) and os.access(path, os.W_OK):
            writable.append(path)
    if os.access(top, os.W_OK):
        writable.append(top)
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "writable": sorted(set(writable))}))
"""


def test_the_dockerfile_is_the_only_image_description() -> None:
    skip = {".git", "node_modules", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
    found = []
    for directory, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            lower = name.lower()
            if lower.startswith(("dockerfile", "containerfile")) or lower.endswith(
                (".dockerfile", ".containerfile")
            ):
                found.append(Path(directory, name).relative_to(ROOT).as_posix())
    assert found == ["Dockerfile"]
