"""media.py: the media type of a release file, from its name."""

from __future__ import annotations

import pytest

from release_server.media import content_type


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tool_1.2.3_linux_amd64.tar.gz", "application/gzip"),
        ("release-server-0.1.0.tgz", "application/gzip"),
        ("notes.txt.gz", "application/gzip"),
        ("node-v20.11.0-linux-x64.tar.xz", "application/x-xz"),
        ("a.tar.bz2", "application/x-bzip2"),
        ("a.tar.zst", "application/zstd"),
        ("a.tar", "application/x-tar"),
        ("release_server-0.1.0-py3-none-any.whl", "application/zip"),
        ("app_1.2.3-1_amd64.deb", "application/vnd.debian.binary-package"),
        ("nginx-1.24.0-1.el9.x86_64.rpm", "application/x-rpm"),
        ("MyApp-1.2.3.AppImage", "application/vnd.appimage"),
        ("MyApp-1.2.3.dmg", "application/x-apple-diskimage"),
        ("MyApp-1.2.3.msi", "application/x-msi"),
        ("MyApp Setup 1.2.3.exe", "application/vnd.microsoft.portable-executable"),
        ("latest-linux.yml", "application/yaml"),
        ("checksums.txt", "text/plain"),
        ("x.png", "image/png"),
        ("no-extension", "application/octet-stream"),
        ("odd.gz.unknown", "application/octet-stream"),
    ],
)
def test_content_type(name: str, expected: str) -> None:
    assert content_type(name) == expected
