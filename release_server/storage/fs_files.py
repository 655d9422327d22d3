"""Files of a storage directory: the pinned reader, legacy sidecars, directory fsync."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from anyio import to_thread

from ..package import Package
from .base import Reader
from .fs_meta import HEX64, META_DIR

SIDECAR_SUFFIX = ".sha256"
#: open() flags for reading a package: never follow a link, never block on a FIFO.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
#: Hard links to pinned versions, named for an engine to open (``local_path``), in a
#: directory of the storage's hidden metadata (same filesystem, never listed):
#: ``send/<version>/<created, ns>.<random>``. One directory per version, so a replace or
#: delete removes that version's links without reading everyone else's; the age is in the
#: name, since a hard link's ctime changes whenever any link to the same file does.
SEND_DIR = Path(META_DIR) / "send"
#: How long such a link outlives its reader: the engine opens it soon after it is given
#: the name, in a task of its own that tells nobody when; once open, the link can go.
#: A delete or replace of the key removes the links to its old version at once (so the
#: space is freed as soon as the downloads in flight end, as with pinned descriptors).
SEND_LINK_SECONDS = 10.0


class FileReader(Reader):
    """A package opened by descriptor: the bytes of this version, whatever the name does."""

    def __init__(self, fd: int, package: Package, version: str, links: Path | None = None) -> None:
        self.fd = fd
        self.package = package
        self.version = version
        self.links = links
        self.link: Path | None = None

    async def read(self, offset: int, size: int) -> bytes:
        return await to_thread.run_sync(os.pread, self.fd, size, offset)

    async def local_path(self) -> str | None:
        """A new hard link to the pinned descriptor (never to the key's current name), so
        a replace or delete of the key does not change what the engine sends. None when
        the version was deleted meanwhile (nothing to link) or the link cannot be made.
        Made on the event loop: three metadata calls on a descriptor already open cost
        less than the hop to a worker thread (as the unlink in ``close`` does)."""
        if self.links is None or self.fd < 0 or self.link is not None:
            return None
        link = self.links / self.version / f"{time.time_ns()}.{os.urandom(8).hex()}"
        try:
            _link_descriptor(self.fd, link)
        except OSError:
            return None
        self.link = link
        return str(link)

    async def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
        if self.link is not None:
            link, self.link = self.link, None
            asyncio.get_running_loop().call_later(SEND_LINK_SECONDS, _unlink, link)


def _link_descriptor(fd: int, link: Path) -> None:
    """linkat(2) with AT_SYMLINK_FOLLOW on /proc/self/fd/N: a name for the open file itself
    (Python makes a plain link(2), which fails here, unless a directory fd is given)."""
    try:
        directory = os.open(link.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        link.parent.mkdir(parents=True, exist_ok=True)
        directory = os.open(link.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(f"/proc/self/fd/{fd}", link.name, dst_dir_fd=directory, follow_symlinks=True)
    finally:
        os.close(directory)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def remove_send_links(root: Path, version: str) -> None:
    """Remove the links to one version (its key was deleted or replaced): an engine that
    opened one keeps sending; one that had not yet answers 404, as if it came later."""
    directory = root / SEND_DIR / version
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as links:
        for link in links:
            _unlink(Path(link.path))
    with contextlib.suppress(OSError):  # a link made meanwhile goes with the stale ones
        os.rmdir(directory)


def remove_stale_send_links(root: Path) -> list[str]:
    """Remove send links older than SEND_LINK_SECONDS (left by a process that died), and
    the directories of versions left without links."""
    removed = []
    cutoff = time.time_ns() - int(SEND_LINK_SECONDS * 1e9)
    with contextlib.suppress(FileNotFoundError), os.scandir(root / SEND_DIR) as versions:
        for version in versions:
            if not version.is_dir(follow_symlinks=False):  # not a version's directory
                _unlink(Path(version.path))
                removed.append(f"{SEND_DIR}/{version.name}")
                continue
            with contextlib.suppress(OSError), os.scandir(version.path) as links:
                for link in links:
                    created = link.name.partition(".")[0]
                    if not created.isdigit() or int(created) < cutoff:
                        _unlink(Path(link.path))
                        removed.append(f"{SEND_DIR}/{version.name}/{link.name}")
            with contextlib.suppress(OSError):
                os.rmdir(version.path)
    return removed


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_sidecar(directory: Path, candidate: Package, target: Package | None) -> bool:
    """Whether ``candidate`` is a legacy ``<name>.sha256`` (earlier release-server) holding
    exactly the digest of ``target``, the package ``<name>``: its digest is used, and it
    is not listed as a package."""
    if target is None or candidate.size not in (64, 65):
        return False
    try:
        content = (directory / candidate.name).read_bytes()
    except OSError:
        return False
    return bool(HEX64.match(content)) and content[:64].decode() == target.sha256


def remove_sidecar(path: Path) -> None:
    """Remove the legacy sidecar of the package at ``path``, if there is one."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    with contextlib.suppress(OSError):
        if sidecar.lstat().st_size in (64, 65) and HEX64.match(sidecar.read_bytes()):
            sidecar.unlink()
