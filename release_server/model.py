"""Releases below the root (SPEC §8.1): plain data, and their metadata as JSON.

A release of ``owner/repo`` tagged ``tag`` lives at ``<storage>/<owner>/<repo>/<tag>/``
with its assets; its metadata is a hidden file beside them. A directory copied in by hand
has none: it is a published release whose metadata is defaulted from its files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .package import Package
from .versions import split_version


@dataclass(frozen=True, slots=True)
class ReleaseMeta:
    """What a release says about itself, beyond its files."""

    name: str
    body: str = ""
    draft: bool = False
    prerelease: bool = False
    #: ns since the epoch; 0 = not known (a directory copied in by hand).
    created_ns: int = 0
    #: Asset labels (GitHub's ``label``), by asset name.
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "name": self.name,
                "body": self.body,
                "draft": self.draft,
                "prerelease": self.prerelease,
                "created_ns": self.created_ns,
                "labels": self.labels,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes | None, tag: str) -> ReleaseMeta:
        """The stored metadata, or the defaults of a hand-copied release: named after its
        tag, a pre-release when the tag has a pre-release part (``v2.0.0-rc.1``)."""
        defaults = cls(name=tag, prerelease=split_version(tag).prerelease)
        if not data:
            return defaults
        try:
            stored = json.loads(data)
        except ValueError:
            return defaults
        if not isinstance(stored, dict):
            return defaults
        return cls(
            name=str(stored.get("name") or tag),
            body=str(stored.get("body") or ""),
            draft=bool(stored.get("draft")),
            prerelease=bool(stored.get("prerelease", defaults.prerelease)),
            created_ns=int(stored.get("created_ns") or 0),
            labels={str(k): str(v) for k, v in (stored.get("labels") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Release:
    """One release of a repository, with its assets newest first."""

    repository: str
    tag: str
    meta: ReleaseMeta
    assets: tuple[Package, ...]
    #: When the release directory last changed (for a release with no known creation time).
    changed_ns: int
    #: Changes whenever anything shown of the release does ("" when not known): for caches.
    version: str = ""

    @property
    def key(self) -> str:
        return f"{self.repository}/{self.tag}"

    @property
    def created_ns(self) -> int:
        """Creation time: stored, else the oldest asset's upload time, else the directory's."""
        if self.meta.created_ns:
            return self.meta.created_ns
        return min((a.mtime_ns for a in self.assets), default=self.changed_ns)
