"""fs_files: the hard links an engine sends from, one directory per pinned version."""

from __future__ import annotations

import os
import time
from pathlib import Path

from release_server.storage.fs_files import (
    SEND_DIR,
    SEND_LINK_SECONDS,
    remove_send_links,
    remove_stale_send_links,
)


def link(root: Path, version: str, name: str) -> Path:
    path = root / SEND_DIR / version / name
    path.parent.mkdir(parents=True, exist_ok=True)
    os.link(root / "package.bin", path)
    return path


def test_stale_links_go_by_the_age_in_their_name_not_their_ctime(tmp_path: Path) -> None:
    """A link left by a process that died goes at start-up though the file was linked
    again a moment ago (which makes every link's ctime new); a fresh one stays."""
    (tmp_path / "package.bin").write_bytes(b"x")
    old_ns = time.time_ns() - int((SEND_LINK_SECONDS + 5) * 1e9)
    stale = link(tmp_path, "v1", f"{old_ns}.aa")
    fresh = link(tmp_path, "v1", f"{time.time_ns()}.bb")
    legacy = tmp_path / SEND_DIR / "v0.cc"  # a link of the earlier flat layout
    os.link(tmp_path / "package.bin", legacy)
    empty = tmp_path / SEND_DIR / "v2"
    empty.mkdir()
    removed = remove_stale_send_links(tmp_path)
    assert sorted(removed) == sorted([f"{SEND_DIR}/v1/{stale.name}", f"{SEND_DIR}/v0.cc"])
    assert fresh.exists() and not stale.exists() and not legacy.exists()
    assert not empty.exists()


def test_a_replaced_version_loses_only_its_own_links(tmp_path: Path) -> None:
    (tmp_path / "package.bin").write_bytes(b"x")
    gone = [link(tmp_path, "v1", f"{time.time_ns()}.{i}") for i in range(3)]
    kept = link(tmp_path, "v2", f"{time.time_ns()}.k")
    remove_send_links(tmp_path, "v1")
    assert not any(path.exists() for path in gone)
    assert not (tmp_path / SEND_DIR / "v1").exists()
    assert kept.exists()
    remove_send_links(tmp_path, "v3")  # none: nothing happens
