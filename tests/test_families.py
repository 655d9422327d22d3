"""Releases stay whole: retention by family with default settings, the settings of §4 kept
for deployments that set MAX_PACKAGES, and stable family links (SPEC §8.2-8.4)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from conftest import ServerProcess

AGENTS = (
    "claude", "gemini", "copilot", "cursor-agent", "qwen", "opencode", "codex", "windsurf",
    "kilocode", "auggie", "roo", "codebuddy", "amp", "shai", "q", "bob", "qoder",
)  # fmt: skip
SCRIPTS = ("sh", "ps")


def spec_kit_release(version: str) -> list[str]:
    return [
        f"spec-kit-template-{agent}-{script}-{version}.zip"
        for agent in AGENTS
        for script in SCRIPTS
    ]


def publish(server: ServerProcess, names: list[str]) -> list[str]:
    pruned = []
    for name in names:
        answer = server.upload(name, f"contents of {name}".encode())
        assert answer.status_code == 200, answer.text
        pruned += answer.json()["pruned"]
    return pruned


def asset_names(server: ServerProcess) -> list[str]:
    return [a["name"] for a in requests.get(server.url + "/latest", timeout=30).json()["assets"]]


def specify_pick(names: list[str], agent: str, script: str) -> str:
    """What `specify init` does: the first asset whose name has the pattern and is a zip."""
    pattern = f"spec-kit-template-{agent}-{script}"
    return next(n for n in names if pattern in n and n.endswith(".zip"))


def test_spec_kit_releases_stay_whole_with_default_settings(server: ServerProcess) -> None:
    assert publish(server, spec_kit_release("v0.0.77")) == []
    assert publish(server, spec_kit_release("v0.0.78")) == []
    names = asset_names(server)
    assert len(names) == 68
    for agent in AGENTS:
        for script in SCRIPTS:
            assert specify_pick(names, agent, script).endswith("-v0.0.78.zip")
    publish(server, spec_kit_release("v0.0.79"))
    pruned = publish(server, spec_kit_release("v0.0.80"))
    assert sorted(pruned) == sorted(spec_kit_release("v0.0.77"))
    names = asset_names(server)
    assert len(names) == 3 * 34
    assert {n.rsplit("-", 1)[1] for n in names} == {"v0.0.78.zip", "v0.0.79.zip", "v0.0.80.zip"}
    for agent in AGENTS:
        for script in SCRIPTS:
            assert specify_pick(names, agent, script).endswith("-v0.0.80.zip")


def test_unversioned_names_are_never_pruned_by_the_family_rule(server: ServerProcess) -> None:
    publish(server, [f"tool-1.{minor}.zip" for minor in range(5)])
    publish(server, ["checksums.txt", "install.sh", "latest-linux.yml"])
    assert sorted(asset_names(server)) == sorted(
        ["checksums.txt", "install.sh", "latest-linux.yml", "tool-1.2.zip", "tool-1.3.zip",
         "tool-1.4.zip"]
    )  # fmt: skip


def test_a_deployment_that_sets_max_packages_keeps_its_retention(start_server) -> None:
    """SPEC §4 unchanged: MAX_PACKAGES alone caps the files, the family rule is off."""
    server = start_server(env={"MAX_PACKAGES": "5"})
    publish(server, [f"tool-1.{minor}.zip" for minor in range(4)])
    assert len(asset_names(server)) == 4  # four versions of one family: all kept
    pruned = publish(server, ["a.bin", "b.bin", "c.bin"])
    assert pruned == ["tool-1.0.zip", "tool-1.1.zip"]
    assert asset_names(server) == ["c.bin", "b.bin", "a.bin", "tool-1.3.zip", "tool-1.2.zip"]


def test_both_rules_together(start_server) -> None:
    server = start_server(env={"MAX_PACKAGES": "4", "MAX_VERSIONS": "2"})
    publish(server, ["tool-1.0.zip", "tool-1.1.zip", "tool-1.2.zip"])
    assert asset_names(server) == ["tool-1.2.zip", "tool-1.1.zip"]
    publish(server, ["x.bin", "y.bin", "z.bin"])
    assert asset_names(server) == ["z.bin", "y.bin", "x.bin", "tool-1.2.zip"]


# -- stable family links --------------------------------------------------------------------


@pytest.fixture
def families(server: ServerProcess) -> ServerProcess:
    publish(server, [*spec_kit_release("v0.0.78")[:4], "tool_1.2.3_linux_amd64.tar.gz"])
    publish(server, [*spec_kit_release("v0.0.79")[:4], "tool_1.3.0_linux_amd64.tar.gz"])
    publish(server, ["checksums.txt"])
    return server


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("spec-kit-template-claude-sh.zip", "spec-kit-template-claude-sh-v0.0.79.zip"),
        ("tool_linux_amd64.tar.gz", "tool_1.3.0_linux_amd64.tar.gz"),
        ("tool_1.2.3_linux_amd64.tar.gz", "tool_1.2.3_linux_amd64.tar.gz"),  # an exact name
        ("checksums.txt", "checksums.txt"),
    ],
)
def test_latest_download_redirects_to_the_newest_of_the_family(
    families: ServerProcess, link: str, target: str
) -> None:
    url = f"{families.url}/latest/download/{quote(link)}"
    for method in ("GET", "HEAD"):
        answer = requests.request(method, url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        assert answer.headers["location"] == f"{families.url}/assets/{quote(target)}"
    followed = requests.get(url, timeout=10)
    assert followed.status_code == 200 and followed.content == f"contents of {target}".encode()


@pytest.mark.parametrize(
    ("link", "status"), [("nothing.zip", 404), ("%2E%2E", 400), (".hidden.zip", 400)]
)
def test_latest_download_refusals(families: ServerProcess, link: str, status: int) -> None:
    answer = requests.get(f"{families.url}/latest/download/{link}", timeout=10)
    assert answer.status_code == status
    assert answer.json()["detail"]
