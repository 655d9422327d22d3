"""The family/version rule of SPEC §8.2: one table of real names, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from release_server.versions import (
    NameVersion,
    family_of,
    split_version,
    stable_name,
    version_key,
)

NONE = None

# name, family, version, prerelease
CASES = [
    # SPEC §8.2, exact
    ("spec-kit-template-claude-sh-v0.0.78.zip",
     "spec-kit-template-claude-sh-*.zip", "v0.0.78", False),
    ("tool_1.2.3_linux_amd64.tar.gz", "tool_*_linux_amd64.tar.gz", "1.2.3", False),
    ("tool-v2.0.0-rc.1-darwin-arm64.zip", "tool-*-darwin-arm64.zip", "v2.0.0-rc.1", True),
    ("node-v20.11.0-linux-x64.tar.xz", "node-*-linux-x64.tar.xz", "v20.11.0", False),
    ("release_server-0.1.0-py3-none-any.whl", "release_server-*-py3-none-any.whl", "0.1.0", False),
    ("release-server-0.1.0.tgz", "release-server-*.tgz", "0.1.0", False),
    ("app_1.2.3-1_amd64.deb", "app_*_amd64.deb", "1.2.3-1", False),
    ("MyApp-Setup-1.4.2.exe", "MyApp-Setup-*.exe", "1.4.2", False),
    ("app-1.2.zip", "app-*.zip", "1.2", False),
    ("app-linux-x86_64-1.2.3.tar.gz", "app-linux-x86_64-*.tar.gz", "1.2.3", False),
    ("nightly-1234.zip", "nightly-*.zip", "1234", False),
    ("backup-2026-11-29.tar.gz", "backup-*.tar.gz", "2026-11-29", False),
    ("checksums.txt", "checksums.txt", NONE, False),
    ("latest-linux.yml", "latest-linux.yml", NONE, False),
    ("install.sh", "install.sh", NONE, False),
    ("tool_linux_x86_64.tar.gz", "tool_linux_x86_64.tar.gz", NONE, False),
    # GoReleaser: {project}_{version}_{os}_{arch}, checksums, GOARM/GOAMD64, 386
    ("gh_2.40.1_linux_amd64.tar.gz", "gh_*_linux_amd64.tar.gz", "2.40.1", False),
    ("gh_2.40.1_checksums.txt", "gh_*_checksums.txt", "2.40.1", False),
    ("goreleaser_Linux_x86_64.tar.gz", "goreleaser_Linux_x86_64.tar.gz", NONE, False),
    ("tool_1.2.3_linux_armv6.tar.gz", "tool_*_linux_armv6.tar.gz", "1.2.3", False),
    ("tool_1.2.3_linux_386.tar.gz", "tool_*_linux_386.tar.gz", "1.2.3", False),
    ("tool_windows_386.zip", "tool_windows_386.zip", NONE, False),
    ("tool_linux_amd64_v3.tar.gz", "tool_linux_amd64_v3.tar.gz", NONE, False),
    ("terraform_1.6.6_linux_amd64.zip", "terraform_*_linux_amd64.zip", "1.6.6", False),
    # electron-builder
    ("MyApp-1.2.3-mac.zip", "MyApp-*-mac.zip", "1.2.3", False),
    ("MyApp Setup 1.2.3.exe", "MyApp Setup *.exe", "1.2.3", False),
    ("MyApp-1.2.3-arm64.dmg", "MyApp-*-arm64.dmg", "1.2.3", False),
    ("MyApp-1.2.3.AppImage", "MyApp-*.AppImage", "1.2.3", False),
    ("MyApp-1.2.3.exe.blockmap", "MyApp-*.exe.blockmap", "1.2.3", False),
    ("MyApp-1.2.3-ia32.exe", "MyApp-*-ia32.exe", "1.2.3", False),
    ("latest-mac.yml", "latest-mac.yml", NONE, False),
    # Python wheels and sdists (PEP 440 suffixes, local versions)
    ("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
     "numpy-*-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2.1.0", False),
    ("six-1.16.0-py2.py3-none-any.whl", "six-*-py2.py3-none-any.whl", "1.16.0", False),
    ("torch-2.1.0+cu121-cp311-cp311-linux_x86_64.whl",
     "torch-*-cp311-cp311-linux_x86_64.whl", "2.1.0+cu121", False),
    ("requests-2.32.3.tar.gz", "requests-*.tar.gz", "2.32.3", False),
    ("pkg-1.0.0.dev0.tar.gz", "pkg-*.tar.gz", "1.0.0.dev0", True),
    ("pkg-1.0rc1.tar.gz", "pkg-*.tar.gz", "1.0rc1", True),
    ("pkg-1.0b2-py3-none-any.whl", "pkg-*-py3-none-any.whl", "1.0b2", True),
    ("pkg-1.0.post1.tar.gz", "pkg-*.tar.gz", "1.0.post1", False),
    ("manylinux_2_17", "manylinux_2_17", NONE, False),
    # Debian and RPM: the revision (and the rpm dist tag) belong to the version
    ("curl_8.5.0-2ubuntu10_amd64.deb", "curl_*_amd64.deb", "8.5.0-2ubuntu10", False),
    ("hello_2.10-3+deb12u1_amd64.deb", "hello_*_amd64.deb", "2.10-3+deb12u1", False),
    ("code_1.85.1-1702462158_amd64.deb", "code_*_amd64.deb", "1.85.1-1702462158", False),
    ("libssl1.1_1.1.1f-1ubuntu2.23_amd64.deb",
     "libssl1.1_*_amd64.deb", "1.1.1f-1ubuntu2.23", False),
    ("python3.12-minimal_3.12.3-1_amd64.deb", "python3.12-minimal_*_amd64.deb", "3.12.3-1", False),
    ("nginx-1.24.0-1.el9.x86_64.rpm", "nginx-*.x86_64.rpm", "1.24.0-1.el9", False),
    ("tool-1.0-3.fc39.noarch.rpm", "tool-*.noarch.rpm", "1.0-3.fc39", False),
    # Helm, JetBrains, Go, Node, Kubernetes, Java, Git for Windows, tarballs
    ("release-server-0.2.0.tgz", "release-server-*.tgz", "0.2.0", False),
    ("ideaIC-2024.1.tar.gz", "ideaIC-*.tar.gz", "2024.1", False),
    ("python-3.12.1-embed-amd64.zip", "python-*-embed-amd64.zip", "3.12.1", False),
    ("go1.22.0.linux-amd64.tar.gz", "go*.linux-amd64.tar.gz", "1.22.0", False),
    ("kubectl-v1.30.0-linux-amd64", "kubectl-*-linux-amd64", "v1.30.0", False),
    ("helm-v3.13.3-windows-amd64.zip", "helm-*-windows-amd64.zip", "v3.13.3", False),
    ("jdk-21.0.1_linux-x64_bin.tar.gz", "jdk-*_linux-x64_bin.tar.gz", "21.0.1", False),
    ("openjdk-22-ea+27_linux-x64_bin.tar.gz", "openjdk-*_linux-x64_bin.tar.gz", "22-ea+27", True),
    ("app-1.0.0-SNAPSHOT.jar", "app-*.jar", "1.0.0-SNAPSHOT", True),
    ("Git-2.43.0-64-bit.exe", "Git-*-64-bit.exe", "2.43.0", False),
    ("rust-1.75.0-x86_64-unknown-linux-gnu.tar.gz",
     "rust-*-x86_64-unknown-linux-gnu.tar.gz", "1.75.0", False),
    ("openssl-1.1.1w.tar.gz", "openssl-*.tar.gz", "1.1.1w", False),
    ("openssh-9.6p1.tar.gz", "openssh-*.tar.gz", "9.6p1", False),
    ("app-1.2.3.7z", "app-*.7z", "1.2.3", False),
    ("app-arm64-v8a-release.apk", "app-arm64-v8a-release.apk", NONE, False),
    ("7z2301-x64.exe", "7z2301-x64.exe", NONE, False),
    ("tool-2.0-windows-x86.zip", "tool-*-windows-x86.zip", "2.0", False),
    # checksums and scripts
    ("sha256sums.txt", "sha256sums.txt", NONE, False),
    ("SHA256SUMS", "SHA256SUMS", NONE, False),
    ("install.ps1", "install.ps1", NONE, False),
    # where the token sits and which kind wins
    ("v1.2.3.tar.gz", "*.tar.gz", "v1.2.3", False),
    ("1.2.3", "*", "1.2.3", False),
    ("v1.0 (final).tar.gz", "* (final).tar.gz", "v1.0", False),
    ("app-1.0.0-beta.2.zip", "app-*.zip", "1.0.0-beta.2", True),
    ("app-1.0.0-beta.zip", "app-*.zip", "1.0.0-beta", True),
    ("tool-1.2.3-alpha.2-linux.tar.gz", "tool-*-linux.tar.gz", "1.2.3-alpha.2", True),
    ("tool-1.2.3-rc1.zip", "tool-*.zip", "1.2.3-rc1", True),
    ("tool-1.2.3-pre.zip", "tool-*.zip", "1.2.3-pre", True),
    ("tool-1.2.3-dev.zip", "tool-*.zip", "1.2.3-dev", True),
    ("tool-1.2.3-prefix.zip", "tool-*-prefix.zip", "1.2.3", False),
    ("myapp-20240115.tar.gz", "myapp-*.tar.gz", "20240115", False),
    ("firmware-v12.bin", "firmware-*.bin", "v12", False),
    ("nightly-1234-v1.2.zip", "nightly-1234-*.zip", "v1.2", False),
    ("build-42-v7.zip", "build-42-*.zip", "v7", False),
    ("build-42-2026-11-29.zip", "build-42-*.zip", "2026-11-29", False),
    ("build-42-20261129.zip", "build-42-*.zip", "20261129", False),
    ("build-20261399.zip", "build-*.zip", "20261399", False),  # no date: a bare number
    ("lua5.4_1234.zip", "lua*_1234.zip", "5.4", False),
    ("lua5.4-1234.zip", "lua*.zip", "5.4-1234", False),  # "-digits" after a version: a revision
    ("app-1.2.3xyz.zip", "app-1.2.3xyz.zip", NONE, False),
    ("abc1.2.zip", "abc*.zip", "1.2", False),
    ("py3-none-any.whl", "py3-none-any.whl", NONE, False),
    ("tool-el9.rpm", "tool-el9.rpm", NONE, False),
]  # fmt: skip


@pytest.mark.parametrize(("name", "family", "version", "prerelease"), CASES)
def test_split_version(name: str, family: str, version: str | None, prerelease: bool) -> None:
    assert split_version(name) == NameVersion(family, version, prerelease)
    assert family_of(name) == family


def test_name_version_is_frozen() -> None:
    result = split_version("app-1.2.zip")
    with pytest.raises(AttributeError):
        result.version = "2"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.2.9", "1.2.10"),
        ("v1.0.0-rc.1", "v1.0.0"),
        ("1.0.0-rc.1", "1.0.0-rc.2"),
        ("2026-11-28", "2026-11-29"),
        ("999", "1234"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-beta"),
        ("1.0.0-beta.11", "1.0.0-rc.1"),
        ("1.0.0.dev0", "1.0.0a1"),
        ("1.0.0a1", "1.0.0b1"),
        ("1.0.0b1", "1.0.0rc1"),
        ("1.0.0rc1", "1.0.0"),
        ("1.0.0", "1.0.0.post1"),
        ("1.2.3", "1.2.3-1"),
        ("8.5.0-2ubuntu9", "8.5.0-2ubuntu10"),
        ("1.1.1", "1.1.1w"),
        ("1.1.1c", "1.1.1w"),
        ("v9", "v12"),
        ("0.0.78", "v0.0.79"),
        ("1.0", "1.0.0"),
        ("1" * 5000, "1" * 5001),
    ],
)
def test_version_key_orders(lower: str, higher: str) -> None:
    assert version_key(lower) < version_key(higher)


def test_version_key_is_total() -> None:
    versions = ["1.0.0", "v1.0.0", "", "v", "abc", "1.0.0-rc.1", "0.9", "é", "0", "00"]
    keys = [version_key(v) for v in versions]
    assert len(set(keys)) == len(versions)  # distinct versions never tie
    assert sorted(versions, key=version_key)[-1] == "v1.0.0"  # same parts: the text decides


@given(st.text())
def test_split_version_never_raises_and_round_trips(name: str) -> None:
    result = split_version(name)
    if "*" in name:
        return  # a literal "*" makes the family ambiguous; the round trip needs none
    if result.version is None:
        assert result.family == name
        assert not result.prerelease
    else:
        assert result.version
        assert result.family.count("*") == 1
        assert result.family.replace("*", result.version) == name


_NAME_CHARS = st.sampled_from("0123456789.-_+ vVabcrelinuxdpt")


@given(st.text(_NAME_CHARS, max_size=40), st.text(_NAME_CHARS, max_size=40))
def test_version_key_never_raises(name: str, other: str) -> None:
    mine = split_version(name).version
    theirs = split_version(other).version
    if mine is not None and theirs is not None:
        a, b = version_key(mine), version_key(theirs)
        assert (a < b) + (a == b) + (a > b) == 1
        assert (a == b) == (mine == theirs)


@given(st.text(), st.text())
def test_version_key_total_on_any_text(a: str, b: str) -> None:
    key_a, key_b = version_key(a), version_key(b)
    assert (key_a < key_b) + (key_a == key_b) + (key_a > key_b) == 1


@pytest.mark.parametrize(
    ("name", "stable"),
    [
        ("spec-kit-template-claude-sh-v0.0.78.zip", "spec-kit-template-claude-sh.zip"),
        ("tool_1.2.3_linux_amd64.tar.gz", "tool_linux_amd64.tar.gz"),
        ("node-v20.11.0-linux-x64.tar.xz", "node-linux-x64.tar.xz"),
        ("MyApp Setup 1.2.3.exe", "MyApp Setup.exe"),
        ("go1.22.0.linux-amd64.tar.gz", "go.linux-amd64.tar.gz"),
        ("v1.2-linux.zip", "linux.zip"),
        ("v1.2.3.tar.gz", None),
        ("checksums.txt", None),
    ],
)
def test_stable_name(name: str, stable: str | None) -> None:
    assert stable_name(name) == stable
