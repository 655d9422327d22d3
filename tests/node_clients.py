"""The npm clients the client tests drive (octokit, electron-updater, mise), installed by
.ci/clients.sh into ${RELEASE_SERVER_TOOLS:-${XDG_CACHE_HOME:-~/.cache}/release-server-tools}/
node-clients. Without them a test is skipped on a developer machine and fails in CI."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

TOOLS = Path(
    os.environ.get("RELEASE_SERVER_TOOLS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "release-server-tools"
)
NODE_CLIENTS = TOOLS / "node-clients"


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where .ci/clients.sh must have run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI runs .ci/clients.sh before the tests)")
    pytest.skip(reason)


@functools.cache
def _install() -> subprocess.CompletedProcess[str]:
    """Runs .ci/clients.sh once (quick when everything is installed; it needs the npm
    registry otherwise)."""
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "clients.sh")],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def require(package: str, file: str = "package.json") -> Path:
    """The path of ``file`` in the installed npm ``package``; skips (fails in CI) when node
    or the package is missing."""
    if not shutil.which("node") or not shutil.which("npm"):
        unavailable(f"node and npm (Node.js 20+) are needed for the {package} tests")
    installed = _install()
    path = NODE_CLIENTS / "node_modules" / package / file
    if installed.returncode != 0 or not path.is_file():
        unavailable(f"{package} is not installed; run .ci/clients.sh:\n{installed.stderr[-2000:]}")
    return path
