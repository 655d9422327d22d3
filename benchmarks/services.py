"""The two servers compare.py runs side by side, and what /proc says about them.

release-server is started the way a user starts it (source tree or pyz), with its JSON log
going to a file: a pipe read by a thread of the benchmark would spend benchmark CPU on the
same two cores. nginx runs in the foreground (``daemon off``) so its master is our child and
can be stopped by its pid. CPU time and peak RSS are summed or maxed over the whole process
tree, because ``--workers N`` and nginx both fork workers.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import free_port, pyz_command  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Settings release-server reads from the environment: cleared so the caller's shell
#: cannot change what is measured.
SERVER_ENV = (
    "AUTH_TOKEN", "AUTH_TOKEN_FILE", "CONFIG_PATH", "STORAGE_PATH", "MAX_PACKAGES",
    "MAX_UPLOAD_SIZE", "PORT", "HOST", "LOG_LEVEL", "PUBLIC_URL", "TRUST_PROXY",
    "REPOSITORY", "WORKERS",
)  # fmt: skip


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may contain spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def peak_rss_mib(pids: list[int]) -> float:
    """The largest peak resident set (VmHWM) among these processes, in MiB."""
    peak = 0.0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
    return peak


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (from /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


class Service:
    """A server process listening on 127.0.0.1:port, stopped by its own pid."""

    name = "service"

    def __init__(
        self, command: list[str], log: Path, env: dict[str, str] | None = None, port: int = 0
    ) -> None:
        self.port = port or free_port()
        self.log = log
        self.started = time.perf_counter()
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*command, *self.port_args()],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def port_args(self) -> list[str]:
        return []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0, poll: float = 0.02) -> float:
        """Seconds from spawning to the first /healthz 200; raise if it never comes."""
        while time.perf_counter() - self.started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if healthy(self.port):
                return time.perf_counter() - self.started
            time.sleep(poll)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer /healthz within {timeout} s:\n{self.tail()}"
        )

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.pids())

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class OurServer(Service):
    """release-server on ``storage``: unlimited packages and upload size, a fixed token."""

    name = "release-server"

    def __init__(
        self, command: list[str], storage: Path, log: Path, token: str, workers: int = 1
    ) -> None:
        self.storage = storage
        self.token = token
        self.workers = workers
        env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV}
        env.update(AUTH_TOKEN=token, MAX_PACKAGES="0", MAX_UPLOAD_SIZE="0")
        super().__init__(command, log, env)

    def port_args(self) -> list[str]:
        return [
            "--host", "127.0.0.1", "--port", str(self.port), "--storage", str(self.storage),
            "--workers", str(self.workers),
        ]  # fmt: skip


def our_command(pyz: Path | None) -> list[str]:
    """How to start release-server: the pyz as the image runs it, or the source tree."""
    return pyz_command(pyz) if pyz else [sys.executable, "-m", "release_server"]


class Nginx(Service):
    """nginx serving ``storage`` at /assets/, ``static``'s JSON at /latest and /packages, and
    accepting WebDAV PUTs into ``dav`` at /dav/."""

    name = "nginx"

    def __init__(
        self, binary: str, prefix: Path, storage: Path, static: Path, dav: Path, workers: int
    ) -> None:
        prefix.mkdir(parents=True, exist_ok=True)
        (dav / ".body").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        template = string.Template((HERE / "nginx.conf.template").read_text())
        config = template.substitute(
            # Workers run as root only when we are root: they must read our 0700 temp dirs.
            user_line="user root;" if os.geteuid() == 0 else "",
            workers=workers,
            prefix=prefix,
            port=self.port,
            storage=storage,
            static=static,
            dav=dav,
        )
        conf = prefix / "nginx.conf"
        conf.write_text(config)
        self.conf = conf
        self.prefix = prefix
        command = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        super().__init__(command, prefix / "stdout.log", port=self.port)

    def tail(self, lines: int = 20) -> str:
        parts = []
        for name in ("stdout.log", "error.log"):
            path = self.prefix / name
            if path.exists():
                parts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)


def find_tools() -> tuple[dict[str, str], list[str]]:
    """Paths of nginx, wrk and curl, and what is missing (with the Debian package names)."""
    packages = {"nginx": "nginx-light", "wrk": "wrk", "curl": "curl"}
    found: dict[str, str] = {}
    missing = []
    for tool, package in packages.items():
        path = shutil.which(tool) or (f"/usr/sbin/{tool}" if tool == "nginx" else None)
        if path and os.access(path, os.X_OK):
            found[tool] = path
        else:
            missing.append(package)
    if "nginx" in found:
        version = subprocess.run([found["nginx"], "-V"], capture_output=True, text=True)
        if "--with-http_dav_module" not in version.stderr:
            missing.append("nginx-light (an nginx built --with-http_dav_module)")
    return found, missing
