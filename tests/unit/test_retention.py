"""retention.py: which packages a prune removes."""

from __future__ import annotations

import itertools

from release_server.retention import choose_pruned

from .helpers import pkg

SECOND = 1_000_000_000


NOW = 100 * SECOND


def test_retention_keeps_newest() -> None:
    packages = [pkg(f"p{i}", i) for i in range(5)]
    assert choose_pruned(packages, 3, keep="p4", now_ns=NOW) == ["p1", "p0"]
    assert choose_pruned(packages, 0, keep="p4", now_ns=NOW) == []
    assert choose_pruned(packages, 5, keep="p4", now_ns=NOW) == []


def test_retention_never_prunes_the_upload() -> None:
    packages = [pkg("upload", 1), pkg("newer-a", 10), pkg("newer-b", 11)]
    assert choose_pruned(packages, 1, keep="upload", now_ns=NOW) == ["newer-a"]
    # The upload stays, but it does not push a newer package out of the window either.
    assert choose_pruned(packages, 2, keep="upload", now_ns=NOW) == []


def test_files_dated_in_the_future_rank_as_the_oldest() -> None:
    future = NOW + 3600 * SECOND
    packages = [pkg("now", NOW), pkg("future-a", future), pkg("future-b", future)]
    assert choose_pruned(packages, 2, keep="now", now_ns=NOW) == ["future-b"]
    slightly_ahead = [pkg("now", NOW), pkg("skewed", NOW + SECOND), pkg("old", 1)]
    assert choose_pruned(slightly_ahead, 2, keep="now", now_ns=NOW) == ["old"]


def test_retention_ties_break_by_name() -> None:
    packages = [pkg("b", 5), pkg("a", 5), pkg("c", 5)]
    assert choose_pruned(packages, 2, keep="a", now_ns=NOW) == ["c"]
    assert choose_pruned(packages, 2, keep="c", now_ns=NOW) == []


def test_racing_prunes_never_leave_fewer_than_the_limit() -> None:
    """Two uploads prune from listings taken at different moments; whatever the order,
    the union of what they remove leaves at least the newest ``limit`` packages."""
    limit = 5
    files = [pkg(f"f{i}", i) for i in range(12)]
    for first, second in itertools.permutations(range(6, 12), 2):
        seen_first = files[: first + 1]
        seen_second = files[: second + 1]
        removed = set(choose_pruned(seen_first, limit, f"f{first}", NOW))
        removed |= set(choose_pruned(seen_second, limit, f"f{second}", NOW))
        remaining = [p.name for p in files if p.name not in removed]
        newest = [p.name for p in sorted(files, key=lambda p: -p.mtime_ns)[:limit]]
        assert set(newest) <= set(remaining), (first, second)
