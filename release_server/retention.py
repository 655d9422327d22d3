"""Which packages retention removes: a pure choice, given the listing and the limit."""

from collections.abc import Sequence

from .package import Package

#: A file dated further ahead than this (copied in by hand from a machine whose clock
#: runs ahead, or touched by hand) has no believable upload time: it ranks as the oldest.
FUTURE_SLACK_NS = 60 * 1_000_000_000


def choose_pruned(packages: Sequence[Package], limit: int, keep: str, now_ns: int) -> list[str]:
    """Names outside the newest ``limit`` packages by upload time (0 = unlimited).

    ``keep`` (the package just uploaded) is never chosen, and it never pushes another
    package out of the window either: a package outside the newest ``limit`` of one
    listing stays outside as more uploads arrive, so prunes racing from listings taken at
    different moments only ever agree, and never leave fewer than ``limit``.
    """
    if limit <= 0 or len(packages) <= limit:
        return []

    def rank(package: Package) -> tuple[bool, int, str]:
        believable = package.mtime_ns <= now_ns + FUTURE_SLACK_NS
        return (not believable, -package.mtime_ns, package.name)

    newest_first = sorted(packages, key=rank)
    return [p.name for p in newest_first[limit:] if p.name != keep]
