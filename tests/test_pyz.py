"""The zipapp as shipped: reproducible build, layout, workers, and the image's way of running.

The image cannot be built here (no Docker daemon in CI), so the last tests run what its
Dockerfile says (ENTRYPOINT, ENV, HEALTHCHECK) the way the distroless image does: as an
unprivileged user, on a read-only file system except the data directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zipimport
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import ROOT, TOKEN, ServerProcess, free_port, pyz_command

from release_server import __version__

NOBODY = 65534
AS_NOBODY = [
    "setpriv",
    f"--reuid={NOBODY}",
    f"--regid={NOBODY}",
    "--clear-groups",
    "--inh-caps=-all",
    "--no-new-privs",
    "--",
]
BUILD_TIME = (1980, 1, 1, 0, 0, 0)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")  # as .dockerignore says


def build(output: Path) -> Path:
    """Run the documented build command into ``output``."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "build" / "pyz.py"), "--output", str(output)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"build/pyz.py failed:\n{done.stdout}{done.stderr}"
    return output


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pyz under test: RELEASE_SERVER_PYZ (the artifact CI ships) or a fresh build."""
    given = os.environ.get("RELEASE_SERVER_PYZ")
    if given:
        return Path(given).resolve()
    return build(tmp_path_factory.mktemp("pyz") / "release-server.pyz")


def test_building_twice_gives_identical_bytes(pyz: Path, tmp_path: Path) -> None:
    again = build(tmp_path / "again.pyz")
    assert hashlib.sha256(again.read_bytes()).hexdigest() == (
        hashlib.sha256(pyz.read_bytes()).hexdigest()
    ), "build/pyz.py is not reproducible (or the sources changed since RELEASE_SERVER_PYZ)"


def test_docker_builder_context_builds_the_same_pyz(pyz: Path, tmp_path: Path) -> None:
    """What the builder stage copies is enough, and a checkout elsewhere builds the same bytes."""
    text = (ROOT / "Dockerfile").read_text()
    builder = text.split("\nFROM ", 2)[1]
    context = tmp_path / "src"
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", builder, re.M):
        *sources, _ = line.split()
        for source in sources:
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, context / source, ignore=IGNORED)
            else:
                (context / source).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, context / source)
    output = tmp_path / "from-context.pyz"
    done = subprocess.run(
        [sys.executable, "build/pyz.py", "--output", str(output)],
        cwd=context,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"build/pyz.py failed:\n{done.stdout}{done.stderr}"
    assert output.read_bytes() == pyz.read_bytes()
    # The image ships the S3 pyz: its requirements are in the context too.
    assert "--with s3" in builder
    done = subprocess.run(
        [sys.executable, "build/pyz.py", "--with", "s3", "--output", str(output)],
        cwd=context,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"build/pyz.py --with s3 failed:\n{done.stdout}{done.stderr}"
    # And Granian for /app/site, for either platform the image is built for.
    assert "build/native_site.py" in builder
    done = subprocess.run(
        [sys.executable, "build/native_site.py", "--arch", "arm64", "--output", "site"],
        cwd=context,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"build/native_site.py failed:\n{done.stdout}{done.stderr}"
    assert list((context / "site").glob("granian/_granian.cpython-3*-aarch64-linux-gnu.so"))


def test_archive_is_precompiled_pure_python_and_normalised(pyz: Path) -> None:
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(pyz, os.X_OK)
    with zipfile.ZipFile(pyz) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        main_py = archive.read("__main__.py").decode()
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {BUILD_TIME}
    assert not [n for n in names if "__pycache__" in n or n.endswith((".so", ".pyd", ".dylib"))]
    sources = {n[:-3] for n in names if n.endswith(".py")}
    compiled = {n[:-4] for n in names if n.endswith(".pyc")}
    assert sources == compiled, "every module ships its pyc beside its source"
    for package in ("release_server", "starlette", "hypercorn", "multipart", "h11", "anyio"):
        assert f"{package}/__init__.pyc" in names
    assert 'if __name__ == "__main__":' in main_py, "spawned workers must not rerun the CLI"


def test_imports_come_from_the_precompiled_pycs(pyz: Path) -> None:
    # A pyc keeps the name it was compiled under; a module compiled from its source at
    # import time would carry the archive's real path instead.
    code = zipimport.zipimporter(f"{pyz}/release_server").get_code("release_server.cli")
    assert code.co_filename == "release-server.pyz/release_server/cli.py"


def test_runs_isolated_without_site_packages(pyz: Path, tmp_path: Path) -> None:
    version = subprocess.run(
        [*pyz_command(pyz), "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert (version.returncode, version.stdout.strip()) == (0, f"release-server {__version__}")
    usage = subprocess.run([*pyz_command(pyz), "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "healthcheck" in usage.stdout


def test_two_workers_spawned_from_the_pyz(pyz: Path, tmp_path: Path) -> None:
    storage = tmp_path / "data"
    storage.mkdir()
    server = ServerProcess(storage, command=pyz_command(pyz), args=["--workers", "2"])
    try:
        data = os.urandom(300_000)
        assert server.upload("two-workers.bin", data).status_code == 200
        for _ in range(10):  # spread over both workers
            assert requests.get(server.url + "/assets/two-workers.bin", timeout=10).content == data
        workers = subprocess.run(
            ["ps", "-o", "args=", "--ppid", str(server.proc.pid)], capture_output=True, text=True
        ).stdout
        assert workers.count("multiprocessing.spawn") == 2, workers
    finally:
        assert server.stop() == 0, server.log
    assert "Traceback" not in server.log, server.log


def test_pyz_site_adds_granian(pyz: Path, tmp_path: Path) -> None:
    """PYZ_SITE names a directory holding Granian (as the image's /app/site): ENGINE=auto
    serves on it, and requests and a clean stop work as from the source tree."""
    installed = importlib.util.find_spec("granian")
    if installed is None or installed.origin is None:
        pytest.skip("pip install 'release-server[fast]' (Granian)")
    site = tmp_path / "site"
    site.mkdir(mode=0o755)
    (site / "granian").symlink_to(Path(installed.origin).parent)
    storage = tmp_path / "data"
    storage.mkdir()
    server = ServerProcess(storage, command=pyz_command(pyz), env={"PYZ_SITE": str(site)})
    try:
        assert server.engine == "granian"
        data = os.urandom(300_000)
        assert server.upload("site.bin", data).status_code == 200
        got = requests.get(server.url + "/assets/site.bin", timeout=10)
        assert got.content == data and got.headers["server"] == "granian"
    finally:
        assert server.stop() == 0, server.log
    assert "Traceback" not in server.log, server.log


def unsafe_site(tmp_path: Path, kind: str) -> tuple[str, str]:
    """A PYZ_SITE value the pyz must refuse, and what its one line says."""
    site = tmp_path / "site"
    if kind == "relative":
        return "site", "is not an absolute path"
    if kind == "missing":
        return str(site), "No such file or directory"
    if kind == "file":
        site.write_text("")
        return str(site), "is not a directory"
    site.mkdir(mode=0o755)
    if kind == "group-writable":
        site.chmod(0o775)
        return str(site), "is writable by its group or others: the server imports code from it"
    if os.geteuid() != 0:
        pytest.skip("needs root, to give the directory to another user")
    os.chown(site, NOBODY, NOBODY)
    return str(site), f"belongs to uid {NOBODY}"


@pytest.mark.parametrize("kind", ["relative", "missing", "file", "group-writable", "other-user"])
def test_pyz_site_refuses_what_is_unsafe_or_no_directory(
    pyz: Path, tmp_path: Path, kind: str
) -> None:
    value, says = unsafe_site(tmp_path, kind)
    for argv in (["--version"], ["healthcheck"], []):
        done = subprocess.run(
            [*pyz_command(pyz), *argv],
            env={**os.environ, "PYZ_SITE": value, "STORAGE_PATH": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stdout == ""
        assert done.stderr.startswith(f"release-server: error: PYZ_SITE: {value!r}")
        assert says in done.stderr and done.stderr.count("\n") == 1, done.stderr


# --- the image, emulated: Dockerfile ENTRYPOINT/ENV/HEALTHCHECK, nobody, read-only ----------


def dockerfile() -> tuple[list[str], dict[str, str], list[str]]:
    """ENTRYPOINT, ENV and HEALTHCHECK CMD of the final stage, read from the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT\s+(\[.*\])$", text, re.M)[-1])
    env_line = re.findall(r"^ENV\s+(.*)$", text, re.M)[-1]
    env = dict(pair.split("=", 1) for pair in env_line.split())
    healthcheck = json.loads(re.findall(r"^HEALTHCHECK\s.*?CMD\s+(\[.*\])$", text, re.M)[-1])
    return entrypoint, env, healthcheck


# In a private mount namespace: the writable directories become mounts of their own, then
# every mount is made read-only but those; then the command runs (as nobody: AS_NOBODY).
SANDBOX = r"""
set -eu
for dir in $WRITABLE; do mount --bind "$dir" "$dir"; done
awk '{print $2}' /proc/self/mounts | sort -u | while read -r point; do
    case " $WRITABLE " in *" $point "*) continue ;; esac
    mount -o remount,bind,ro "$point" 2>/dev/null || true
done
exec "$@"
"""

PROBE = """\
import os, sys, tempfile
open(os.path.join(sys.argv[1], ".probe"), "w").close()
os.remove(os.path.join(sys.argv[1], ".probe"))
try:
    print("temp dir writable:", tempfile.gettempdir())
except FileNotFoundError:
    print("read-only")
"""


def sandboxed(command: list[str]) -> list[str]:
    """``command`` as nobody in the sandbox above; env WRITABLE names the writable dirs."""
    sandbox = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", SANDBOX]
    return [*sandbox, "sh", *AS_NOBODY, *command]


@pytest.fixture
def image_root() -> Iterator[Path]:
    """/app (root's, world-readable, holding nothing yet) and /data (nobody's), emulated.

    Made with mkdtemp, not tmp_path: pytest's base temp directory is private to root."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the server as nobody in a read-only mount namespace")
    for tool in ("unshare", "setpriv", "awk"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} (util-linux) to run the server as nobody, read-only")
    root = Path(tempfile.mkdtemp(prefix="release-server-image-"))
    try:
        root.chmod(0o755)
        (root / "app").mkdir(mode=0o755)
        (root / "data").mkdir(mode=0o755)
        os.chown(root / "data", NOBODY, NOBODY)
        yield root
    finally:
        shutil.rmtree(root)


# Worker processes are spawned from sys.executable: nobody must be able to run that path too.
NOBODY_CAN_RUN = (
    "import os, sys; assert sys.version_info >= (3, 11) and os.access(sys.executable, os.X_OK)"
)


def interpreter_for_nobody(root: Path) -> str:
    """A Python >= 3.11 that nobody may run: this one, else the system's (as in distroless)."""
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        check = subprocess.run(
            [*AS_NOBODY, python, "-I", "-S", "-c", NOBODY_CAN_RUN],
            capture_output=True,
            cwd=root,
        )
        if check.returncode == 0:
            return python
    pytest.skip("no Python >= 3.11 that the nobody user may execute")


def image_site(site: Path, python: str) -> str:
    """/app/site as the image has it (build/native_site.py: Granian), and the engine
    ENGINE=auto then serves on; an empty directory (so Hypercorn) where ``python`` is not
    the CPython 3.11 that Granian is pinned for."""
    version = subprocess.run(
        [python, "-I", "-S", "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
        capture_output=True,
        text=True,
    )
    if version.stdout.strip() != "True" or sys.version_info[:2] != (3, 11):
        site.mkdir(mode=0o755)
        return "hypercorn"
    done = subprocess.run(
        [sys.executable, str(ROOT / "build" / "native_site.py"), "--output", str(site)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"build/native_site.py failed:\n{done.stdout}{done.stderr}"
    return "granian"


@pytest.mark.parametrize("workers", [1, 2])
def test_image_entrypoint_as_nobody_on_read_only_fs(
    pyz: Path, image_root: Path, workers: int
) -> None:
    entrypoint, image_env, healthcheck = dockerfile()
    assert image_env["STORAGE_PATH"] == "/data" and image_env["PORT"] == "8000"
    assert image_env["PYZ_SITE"] == "/app/site"
    app, data = image_root / "app", image_root / "data"
    shutil.copy(pyz, app / "release-server.pyz")
    (app / "release-server.pyz").chmod(0o644)
    python = interpreter_for_nobody(image_root)
    engine = image_site(app / "site", python)

    def as_image(argv: list[str]) -> list[str]:
        """The image's command with this machine's interpreter and paths."""
        paths = {"python3": python, "/app/release-server.pyz": str(app / "release-server.pyz")}
        return [paths.get(arg, arg) for arg in argv]

    # Only the data directory is writable; with worker processes /dev/shm too (their
    # shutdown event is a POSIX semaphore), as Docker and Kubernetes give every container.
    writable = [data] + ([Path("/dev/shm")] if workers > 1 else [])
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "WRITABLE": " ".join(map(str, writable)),
        **image_env,
        "PYZ_SITE": str(app / "site"),
        "STORAGE_PATH": str(data),
        "HOST": "127.0.0.1",  # the image's 0.0.0.0, kept to loopback here
        "PORT": str(port),
        "AUTH_TOKEN": TOKEN,
    }

    probe = subprocess.run(
        sandboxed([python, "-I", "-S", "-c", PROBE, str(data)]),
        env=env,
        cwd=app,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 and re.search(r"^(unshare|mount):", probe.stderr, re.M):
        pytest.skip(f"cannot make a read-only mount namespace here: {probe.stderr.strip()}")
    assert probe.stdout.strip() == "read-only", probe.stdout + probe.stderr

    command = sandboxed([*as_image(entrypoint), "--workers", str(workers)])
    proc = subprocess.Popen(
        command, env=env, cwd=app, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"server exited {proc.returncode}:\n{''.join(lines)}"
            assert time.monotonic() < deadline, "no /healthz 200 within 20 s:\n" + "".join(lines)
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)

        assert requests.get(url + "/readyz", timeout=5).status_code == 200
        big = os.urandom(3 * 1024 * 1024 + 123)  # past Starlette's 1 MiB in-memory spool
        sent = requests.post(
            url + "/upload", files={"file": ("big.tar.gz", big)}, headers=auth, timeout=60
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["sha256"] == hashlib.sha256(big).hexdigest()
        raw = os.urandom(2 * 1024 * 1024)
        put = requests.put(url + "/assets/raw.zip", data=raw, headers=auth, timeout=60)
        assert put.status_code == 201, put.text
        assert requests.get(url + "/assets/big.tar.gz", timeout=30).content == big
        assert requests.get(url + "/assets/raw.zip", timeout=30).content == raw
        assert {p.name for p in data.iterdir() if not p.name.startswith(".")} == {
            "big.tar.gz",
            "raw.zip",
        }
        assert {p.stat().st_uid for p in data.iterdir()} == {NOBODY}

        check = subprocess.run(
            sandboxed(as_image(healthcheck)), env=env, cwd=app, capture_output=True
        )
        assert check.returncode == 0, check.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        reader.join(timeout=2)
    log = "".join(lines)
    assert code == 0, log
    assert "Traceback" not in log and '"level": "error"' not in log, log
    started = [json.loads(line) for line in lines if '"msg": "starting"' in line]
    assert started and started[0]["settings"]["engine"] == engine, log
