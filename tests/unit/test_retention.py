"""retention.py: which packages a prune removes."""

from __future__ import annotations

import itertools

from release_server.retention import choose_pruned

from .helpers import pkg

SECOND = 1_000_000_000


NOW = 100 * SECOND


def test_retention_keeps_newest() -> None:
    packages = [pkg(f"p{i}", i) for i in range(5)]
    assert choose_pruned(packages, 3, 0, keep="p4", now_ns=NOW) == ["p1", "p0"]
    assert choose_pruned(packages, 0, 0, keep="p4", now_ns=NOW) == []
    assert choose_pruned(packages, 5, 0, keep="p4", now_ns=NOW) == []


def test_retention_never_prunes_the_upload() -> None:
    packages = [pkg("upload", 1), pkg("newer-a", 10), pkg("newer-b", 11)]
    assert choose_pruned(packages, 1, 0, keep="upload", now_ns=NOW) == ["newer-a"]
    # The upload stays, but it does not push a newer package out of the window either.
    assert choose_pruned(packages, 2, 0, keep="upload", now_ns=NOW) == []


def test_files_dated_in_the_future_rank_as_the_oldest() -> None:
    future = NOW + 3600 * SECOND
    packages = [pkg("now", NOW), pkg("future-a", future), pkg("future-b", future)]
    assert choose_pruned(packages, 2, 0, keep="now", now_ns=NOW) == ["future-b"]
    slightly_ahead = [pkg("now", NOW), pkg("skewed", NOW + SECOND), pkg("old", 1)]
    assert choose_pruned(slightly_ahead, 2, 0, keep="now", now_ns=NOW) == ["old"]


def test_retention_ties_break_by_name() -> None:
    packages = [pkg("b", 5), pkg("a", 5), pkg("c", 5)]
    assert choose_pruned(packages, 2, 0, keep="a", now_ns=NOW) == ["c"]
    assert choose_pruned(packages, 2, 0, keep="c", now_ns=NOW) == []


def test_racing_prunes_never_leave_fewer_than_the_limit() -> None:
    """Two uploads prune from listings taken at different moments; whatever the order,
    the union of what they remove leaves at least the newest ``limit`` packages."""
    limit = 5
    files = [pkg(f"f{i}", i) for i in range(12)]
    for first, second in itertools.permutations(range(6, 12), 2):
        seen_first = files[: first + 1]
        seen_second = files[: second + 1]
        removed = set(choose_pruned(seen_first, limit, 0, f"f{first}", NOW))
        removed |= set(choose_pruned(seen_second, limit, 0, f"f{second}", NOW))
        remaining = [p.name for p in files if p.name not in removed]
        newest = [p.name for p in sorted(files, key=lambda p: -p.mtime_ns)[:limit]]
        assert set(newest) <= set(remaining), (first, second)


def test_families_keep_their_newest_versions() -> None:
    packages = [
        pkg("tool-1.0.zip", 1), pkg("tool-1.1.zip", 2), pkg("tool-1.2.zip", 3),
        pkg("tool-1.3.zip", 4), pkg("app_2.0_linux.tar.gz", 5), pkg("app_2.1_linux.tar.gz", 6),
        pkg("checksums.txt", 7), pkg("install.sh", 0),
    ]  # fmt: skip
    assert choose_pruned(packages, 0, 2, keep="tool-1.3.zip", now_ns=NOW) == [
        "tool-1.1.zip",
        "tool-1.0.zip",
    ]
    # Both rules: a package goes when either says so.
    assert choose_pruned(packages, 4, 2, keep="x", now_ns=NOW) == [
        "tool-1.2.zip", "tool-1.1.zip", "tool-1.0.zip", "install.sh",
    ]  # fmt: skip


def test_the_upload_is_kept_even_when_it_is_an_old_version() -> None:
    packages = [pkg("tool-2.0.zip", 5), pkg("tool-2.1.zip", 6), pkg("tool-1.0.zip", 7)]
    assert choose_pruned(packages, 0, 1, keep="tool-1.0.zip", now_ns=NOW) == [
        "tool-2.1.zip",
        "tool-2.0.zip",
    ]


def test_an_unversioned_name_like_a_family_pattern_stays_apart() -> None:
    packages = [pkg("app-*.zip", 1), pkg("app-1.0.zip", 2), pkg("app-1.1.zip", 3)]
    assert choose_pruned(packages, 0, 1, keep="app-1.1.zip", now_ns=NOW) == ["app-1.0.zip"]


def test_racing_family_prunes_never_leave_fewer_than_n_versions() -> None:
    files = [pkg(f"tool-1.{i}.zip", i) for i in range(10)]
    for first, second in itertools.permutations(range(4, 10), 2):
        removed = set(choose_pruned(files[: first + 1], 0, 3, f"tool-1.{first}.zip", NOW))
        removed |= set(choose_pruned(files[: second + 1], 0, 3, f"tool-1.{second}.zip", NOW))
        assert {"tool-1.9.zip", "tool-1.8.zip", "tool-1.7.zip"}.isdisjoint(removed) or (
            max(first, second) < 9
        )
        remaining = [p for p in files[: max(first, second) + 1] if p.name not in removed]
        assert len(remaining) >= 3
