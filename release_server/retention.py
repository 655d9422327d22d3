"""Which packages retention removes: a pure choice, given the listing and the limits.

Two rules, each optional (0 = off): keep the newest ``max_versions`` versions of each
family (SPEC §8.2-8.3: ``tool-1.2.zip`` and ``tool-1.3.zip`` are two versions of the family
``tool-*.zip``; a name without a version is a family of its own), and keep the newest
``max_packages`` packages overall. A package goes when either rule says so.
"""

from collections import defaultdict
from collections.abc import Sequence

from .package import Package
from .versions import split_version, version_key

#: A file dated further ahead than this (copied in by hand from a machine whose clock
#: runs ahead, or touched by hand) has no believable upload time: it ranks as the oldest.
FUTURE_SLACK_NS = 60 * 1_000_000_000


def choose_pruned(
    packages: Sequence[Package], max_packages: int, max_versions: int, keep: str, now_ns: int
) -> list[str]:
    """Names to remove, newest first.

    ``keep`` (the package just uploaded) is never chosen, and it never pushes another
    package out of a window either: a package outside the newest N of one listing stays
    outside as more uploads arrive, so prunes racing from listings taken at different
    moments only ever agree, and never leave fewer than a rule says.
    """

    if max_packages <= 0 and max_versions <= 0:
        return []
    newest_first = newest_to_oldest(packages, now_ns)
    pruned: set[str] = set()
    if max_packages > 0:
        pruned.update(p.name for p in newest_first[max_packages:])
    if max_versions > 0:
        families: dict[tuple[str, bool], list[Package]] = defaultdict(list)
        for package in newest_first:
            split = split_version(package.name)
            families[(split.family, split.version is None)].append(package)
        for (_, unversioned), members in families.items():
            if not unversioned:
                pruned.update(p.name for p in members[max_versions:])
    pruned.discard(keep)
    return [p.name for p in newest_first if p.name in pruned]


def newest_to_oldest(packages: Sequence[Package], now_ns: int) -> list[Package]:
    """By upload time, newest first; files dated in the future last; equal times by
    version (newest first), then name. (Stable sorts, applied from the last key.)"""
    ordered = sorted(packages, key=lambda p: p.name)
    ordered.sort(key=lambda p: version_key(split_version(p.name).version or ""), reverse=True)
    ordered.sort(key=lambda p: (p.mtime_ns > now_ns + FUTURE_SLACK_NS, -p.mtime_ns))
    return ordered
