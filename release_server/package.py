"""The record every module passes around: one stored package, as the directory shows it."""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Package:
    """A file in the storage directory with its digest and download count.

    ``mtime_ns`` is the upload time: the file is written to a temp name and renamed into
    place when complete, so its modification time is when the upload finished (and for a
    file copied in by hand, when it was copied).
    """

    name: str
    size: int
    mtime_ns: int
    sha256: str
    downloads: int = 0

    @property
    def created_at(self) -> str:
        """Upload time as ISO 8601 UTC with a ``Z`` suffix, as GitHub writes it."""
        return iso_utc(self.mtime_ns)


def iso_utc(ns: int) -> str:
    """Format nanoseconds since the epoch as GitHub does: ``2024-01-31T12:00:00Z``."""
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def package_document(package: Package, url: str) -> dict[str, object]:
    """This API's own JSON for a package (``/packages``, upload answers); ``url`` is where
    it downloads."""
    return {
        "name": package.name,
        "size": package.size,
        "created_at": package.created_at,
        "sha256": package.sha256,
        "downloads": package.downloads,
        "url": url,
    }
