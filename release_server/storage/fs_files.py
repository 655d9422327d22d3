"""Files of a storage directory: the pinned reader, legacy sidecars, directory fsync."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from anyio import to_thread

from ..package import Package
from .base import Reader
from .fs_meta import HEX64

SIDECAR_SUFFIX = ".sha256"
#: open() flags for reading a package: never follow a link, never block on a FIFO.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class FileReader(Reader):
    """A package opened by descriptor: the bytes of this version, whatever the name does."""

    def __init__(self, fd: int, package: Package, version: str) -> None:
        self.fd = fd
        self.package = package
        self.version = version

    async def read(self, offset: int, size: int) -> bytes:
        return await to_thread.run_sync(os.pread, self.fd, size, offset)

    async def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_sidecar(directory: Path, name: str, files: dict[str, tuple[os.stat_result, str]]) -> bool:
    """A legacy ``<name>.sha256`` (earlier release-server) holding exactly the digest of
    ``<name>``: its digest is used, and it is not listed as a package."""
    if not name.endswith(SIDECAR_SUFFIX) or files[name][0].st_size not in (64, 65):
        return False
    target = files.get(name.removesuffix(SIDECAR_SUFFIX))
    if target is None:
        return False
    try:
        content = (directory / name).read_bytes()
    except OSError:
        return False
    return bool(HEX64.match(content)) and content[:64].decode() == target[1]


def remove_sidecar(path: Path) -> None:
    """Remove the legacy sidecar of the package at ``path``, if there is one."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    with contextlib.suppress(OSError):
        if sidecar.lstat().st_size in (64, 65) and HEX64.match(sidecar.read_bytes()):
            sidecar.unlink()
