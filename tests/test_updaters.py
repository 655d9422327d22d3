"""Real installers and updaters pointed at the server (SPEC §8.4):

- mise (npm ``@jdxcode/mise-linux-x64``, its binary) installs a tiny executable from a
  release through its ``github:`` backend with ``api_url = <server>/api/v3``: at a pinned
  version, at ``latest`` (not the pre-release), and lists the versions;
- electron-updater (npm) finds the newest version through its ``github`` provider, public
  (``/{o}/{r}/releases.atom``, ``/api/v3/.../releases/latest``, the ``latest-linux.yml`` asset
  by its web path) and private (a token: the REST API and asset URLs with
  ``Accept: application/octet-stream``), and its ``generic`` provider pointed at
  ``/{o}/{r}/releases/latest/download/``; then downloads the file and checks the sha512 the
  channel file announced.

Both come from .ci/clients.sh (tests/node_clients.py); without node or the package the test
is skipped (fails in CI).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ROOT, ServerProcess
from node_clients import NODE_CLIENTS, require

OWNER = "acme"


def put(server: ServerProcess, repo: str, tag: str, name: str, data: bytes) -> None:
    """Publish an asset with the curl path (which creates the release)."""
    url = f"{server.url}/{OWNER}/{repo}/releases/download/{tag}/{name}"
    answer = requests.put(url, data=data, headers=server.auth(), timeout=30)
    assert answer.status_code == 201, answer.text


def tool_tarball(version: str) -> bytes:
    """A release archive as tools ship them: one executable script."""
    script = f"#!/bin/sh\necho hello-tool {version}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("hello")
        member.size, member.mode, member.mtime = len(script), 0o755, int(time.time())
        archive.addfile(member, io.BytesIO(script))
    return buffer.getvalue()


# -- mise --------------------------------------------------------------------------------------


def test_mise_installs_a_tool_from_a_release(server: ServerProcess, tmp_path: Path) -> None:
    mise = require("@jdxcode/mise-linux-x64", "bin/mise")
    # Created one after another: "latest" is the newest by creation time.
    for tag in ("v1.0.0", "v1.1.0", "v2.0.0-rc.1"):
        put(server, "hello", tag, f"hello-{tag[1:]}-linux-x64.tar.gz", tool_tarball(tag[1:]))
        time.sleep(0.01)
    api_url = f"{server.url}/api/v3"
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    (project / "mise.toml").write_text(
        f'[tools]\n"github:{OWNER}/hello" = {{ version = "latest", api_url = "{api_url}" }}\n'
    )
    env = {
        "PATH": os.environ["PATH"], "HOME": str(home), "MISE_DATA_DIR": str(home / "data"),
        "MISE_CACHE_DIR": str(home / "cache"), "MISE_CONFIG_DIR": str(home / "config"),
        "MISE_STATE_DIR": str(home / "state"), "MISE_YES": "1",
        "MISE_TRUSTED_CONFIG_PATHS": str(project),
        # mise hides releases younger than a day by default (supply-chain protection).
        "MISE_MINIMUM_RELEASE_AGE": "0s",
    }  # fmt: skip

    def run(*args: str) -> str:
        done = subprocess.run([str(mise), *args], cwd=project, env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, f"mise {args}:\n{done.stderr}\n{server.log[-3000:]}"
        return done.stdout

    run("install")
    assert run("exec", "--", "hello") == "hello-tool 1.1.0\n"  # latest: not the pre-release
    pinned = f"github:{OWNER}/hello[api_url={api_url}]"
    assert run("exec", f"{pinned}@1.0.0", "--", "hello") == "hello-tool 1.0.0\n"
    # mise leaves out releases GitHub marks as pre-releases (the server marks v2.0.0-rc.1).
    assert run("ls-remote", pinned).split() == ["1.0.0", "1.1.0"]
    # mise checked the asset's `digest` and fetched the bytes through the REST asset URL.
    assert '"path": "/api/v3/repos/acme/hello/releases/latest", "status": 200' in server.log
    assert "/api/v3/repos/acme/hello/releases/assets/" in server.log


# -- electron-updater --------------------------------------------------------------------------


def sha512(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def publish_app(server: ServerProcess) -> dict[str, bytes]:
    """Three releases of an Electron app as electron-builder publishes them for Linux: the
    AppImage and the channel file (``latest-linux.yml``; ``beta-linux.yml`` for a beta)."""
    published = {}
    for version in ("1.0.0", "1.1.0", "2.0.0-beta.1"):
        app = f"app-{version}.AppImage"
        data = os.urandom(5000) + version.encode()
        digest = sha512(data)
        channel = "beta" if "beta" in version else "latest"
        yml = (f"version: {version}\nfiles:\n  - url: {app}\n    sha512: {digest}\n"
               f"    size: {len(data)}\npath: {app}\nsha512: {digest}\n"
               "releaseDate: '2026-11-30T00:00:00.000Z'\n")  # fmt: skip
        put(server, "app", f"v{version}", app, data)
        put(server, "app", f"v{version}", f"{channel}-linux.yml", yml.encode())
        published[version] = data
        time.sleep(0.01)
    return published


def check_for_update(
    server: ServerProcess, config: dict[str, Any], *, prerelease: bool = False, token: str = ""
) -> dict[str, Any]:
    env = {**os.environ, "NODE_CLIENTS": str(NODE_CLIENTS), "CONFIG": json.dumps(config),
           "CURRENT_VERSION": "1.0.0", "ALLOW_PRERELEASE": "1" if prerelease else "0",
           "TOKEN": token}  # fmt: skip
    for name in ("GH_TOKEN", "GITHUB_TOKEN"):
        env.pop(name, None)
    flow = ROOT / "tests" / "clients" / "electron_updater_flow.js"
    done = subprocess.run(["node", str(flow)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"electron_updater_flow.js exited {done.returncode}:\n{done.stderr[-3000:]}")
    assert result["ok"], f"{result['error']}\n{result['requests']}\n{server.log[-3000:]}"
    for file in result["files"]:  # the bytes downloaded are the ones the channel announced
        assert file["downloaded"] == {"sha512": file["sha512"], "size": file["size"]}, file
    return result


def test_electron_updater_finds_and_downloads_the_newest_version(server: ServerProcess) -> None:
    require("electron-updater")
    published = publish_app(server)
    host = server.url.removeprefix("http://")
    github = {"provider": "github", "owner": OWNER, "repo": "app", "host": host,
              "protocol": "http"}  # fmt: skip
    base = f"{server.url}/{OWNER}/app/releases"

    public = check_for_update(server, github)
    assert (public["provider"], public["version"], public["tag"]) == (
        "GitHubProvider", "1.1.0", "v1.1.0")  # fmt: skip
    assert [(r["url"], r["status"]) for r in public["requests"]] == [
        (f"{base}.atom", 200),
        (f"{server.url}/api/v3/repos/{OWNER}/app/releases/latest", 200),
        (f"{base}/download/v1.1.0/latest-linux.yml", 200),
        (f"{base}/download/v1.1.0/app-1.1.0.AppImage", 200),
    ]
    assert public["files"][0]["downloaded"]["sha512"] == sha512(published["1.1.0"])

    beta = check_for_update(server, github, prerelease=True)
    assert beta["version"] == "2.0.0-beta.1"
    assert beta["requests"][1]["url"] == f"{base}/download/v2.0.0-beta.1/beta-linux.yml"

    private = check_for_update(server, {**github, "private": True}, token=server.token or "")
    assert (private["provider"], private["version"]) == ("PrivateGitHubProvider", "1.1.0")
    assert all("/api/v3/repos/" in r["url"] for r in private["requests"])

    generic = check_for_update(server, {"provider": "generic", "url": f"{base}/latest/download/"})
    assert generic["version"] == "1.1.0"
    assert [(r["url"], r["status"]) for r in generic["requests"]] == [
        (f"{base}/latest/download/latest-linux.yml", 302),
        (f"{base}/download/v1.1.0/latest-linux.yml", 200),
        (f"{base}/latest/download/app-1.1.0.AppImage", 302),
        (f"{base}/download/v1.1.0/app-1.1.0.AppImage", 200),
    ]
