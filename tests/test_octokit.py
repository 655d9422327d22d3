"""The real octokit (npm ``@octokit/rest``) publishes and reads releases (SPEC §8.4, §8.5):
it creates a release in a new repository, uploads assets to its ``upload_url`` (and the
GitHub Enterprise way, ``baseUrl: <server>/api/uploads``), reads it by tag and id, lists
releases page by page through ``Link``, gets the latest (not the pre-release), downloads
an asset with ``Accept: application/octet-stream``, deletes an asset and a release; with
the server's URL and with ``/api/v3`` as octokit's ``baseUrl``.

The flow is tests/clients/octokit_flow.mjs; octokit comes from .ci/clients.sh, which
installs it into ${RELEASE_SERVER_TOOLS:-${XDG_CACHE_HOME:-~/.cache}/release-server-tools}/
node-clients. Without node (or octokit, in CI) the test is skipped (fails in CI).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ROOT, ServerProcess, StartServer
from node_clients import NODE_CLIENTS, require

FLOW = ROOT / "tests" / "clients" / "octokit_flow.mjs"
OWNER, REPO = "acme", "tool"


@pytest.fixture
def octokit() -> Path:
    require("@octokit/rest")
    return NODE_CLIENTS


def run_flow(server: ServerProcess, base_url: str, node_clients: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "BASE_URL": base_url,
        "ROOT_URL": server.url,
        "TOKEN": server.token or "",
        "OWNER": OWNER,
        "REPO": REPO,
        "NODE_CLIENTS": str(node_clients),
    }
    result = subprocess.run(
        ["node", str(FLOW)], env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    try:
        summary: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"octokit_flow.mjs exited {result.returncode} without a summary:\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    if not summary.get("ok"):
        failed = json.dumps(summary.get("failed"), indent=2)[:6000]
        passed = [s["step"] for s in summary["steps"] if s["ok"]]
        log = "\n".join(server.lines[-30:])
        pytest.fail(
            f"octokit step failed: {failed}\n\nsteps that passed: {passed}\n"
            f"stderr: {result.stderr[-2000:]}\nserver log (tail):\n{log}"
        )
    return summary


@pytest.mark.parametrize("api", ["", "/api/v3"], ids=["root", "api-v3"])
def test_octokit_publishes_reads_and_deletes_releases(
    start_server: StartServer, octokit: Path, api: str
) -> None:
    server = start_server()
    base = server.url + api
    # The repository does not exist before its first release (GitHub's 404).
    # (checked after the flow, so that a failure there reports the flow's steps too)
    missing = requests.get(f"{base}/repos/{OWNER}/{REPO}/releases", timeout=10)

    summary = run_flow(server, base, octokit)
    assert missing.status_code == 404, missing.text[:500]
    assets = summary["assets"]

    # What octokit sent, on the wire.
    wire = summary["requests"]
    uploads = [r for r in wire if r["method"] == "POST" and "/assets?" in r["url"]]
    ids = summary["releases"]
    # upload_url's {?name,label} expands to "?name=N&label=L", or "?name=N&" without a label.
    upload = f"{server.url}/api/uploads/repos/{OWNER}/{REPO}/releases"
    first, second = ids["v1.0.0"]["id"], ids["v1.1.0"]["id"]
    assert [r["url"] for r in uploads] == [
        f"{upload}/{first}/assets?name=tool-1.0.0-linux-amd64.tar.gz&label=Linux%20%28amd64%29",
        f"{upload}/{second}/assets?name=tool-1.1.0-linux-amd64.tar.gz&",
        f"{upload}/{second}/assets?name=checksums.txt&",
        f"{upload}/{second}/assets?name=tool-1.1.0-linux-amd64.tar.gz&",
    ]
    assert [r["headers"].get("content-type") for r in uploads] == [
        "application/gzip",
        "application/octet-stream",
        "application/json; charset=utf-8",
        "application/octet-stream",
    ]
    assert all(r["headers"]["authorization"] == "token ***" for r in wire)
    assert summary["upload_default"].startswith("https://uploads.github.com/")

    # On disk: <storage>/<owner>/<repo>/<tag>/<asset>; the deleted asset and release are gone.
    release_dir = server.storage / OWNER / REPO / "v1.1.0"
    kept = "tool-1.1.0-linux-amd64.tar.gz"
    on_disk = release_dir / kept
    assert on_disk.is_file(), sorted(str(p) for p in server.storage.rglob("*"))
    assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == assets[kept]["sha256"]
    assert not (release_dir / "checksums.txt").exists()
    assert not (server.storage / OWNER / REPO / "v1.0.0").exists()
    assert (server.storage / OWNER / REPO / "v2.0.0-rc.1").is_dir()
    assert not [p for p in server.storage.iterdir() if p.is_file()], "the root release is empty"

    # The web path (browser_download_url) serves the uploaded bytes; deleted ones are 404.
    web = f"{server.url}/{OWNER}/{REPO}/releases/download"
    download = requests.get(f"{web}/v1.1.0/{kept}", timeout=10)
    assert download.status_code == 200, download.text
    assert hashlib.sha256(download.content).hexdigest() == assets[kept]["sha256"]
    assert requests.get(f"{web}/v1.1.0/checksums.txt", timeout=10).status_code == 404
    gone = requests.get(f"{web}/v1.0.0/tool-1.0.0-linux-amd64.tar.gz", timeout=10)
    assert gone.status_code == 404
    latest = requests.get(
        f"{server.url}/{OWNER}/{REPO}/releases/latest/download/{kept}", timeout=10
    )
    assert latest.status_code == 200 and latest.content == download.content
