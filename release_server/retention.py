"""Which packages retention removes: a pure choice, given the listing and the limit."""

from collections.abc import Sequence

from .package import Package


def choose_pruned(packages: Sequence[Package], limit: int, keep: str) -> list[str]:
    """Names to remove so that at most ``limit`` packages stay (0 = unlimited).

    The newest by upload time stay; ``keep`` (the package just uploaded) always stays,
    even if a file copied in by hand looks newer.
    """
    if limit <= 0 or len(packages) <= limit:
        return []
    newest_first = sorted(packages, key=lambda p: (-p.mtime_ns, p.name))
    kept = [p for p in newest_first if p.name == keep]
    for package in newest_first:
        if len(kept) >= limit:
            break
        if package.name != keep:
            kept.append(package)
    kept_names = {p.name for p in kept}
    return [p.name for p in newest_first if p.name not in kept_names]
