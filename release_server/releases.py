"""Repositories and their releases below the root (SPEC §8.1, §8.3): read, create, prune.

Knows nothing of HTTP: it reads the storage levels (owners, repositories, tags) and each
release's metadata, and keeps the newest ``MAX_VERSIONS`` published releases of a
repository whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field, replace

import anyio

from .errors import BadRequest, NotFound, already_exists
from .logs import log_event
from .model import Release, ReleaseMeta
from .names import check_name
from .storage import Listing, Storage

logger = logging.getLogger("release_server.releases")
#: GitHub's limits on owner and repository names (and a tag's, here).
MAX_OWNER, MAX_REPO = 39, 100
#: Reserved: the root release of the default repository is tagged ``latest``.
ROOT_TAG = "latest"
#: How long a repository's releases are served without reading them again (unless a write
#: changed the repository's stamp), and how many repositories are kept.
REVALIDATE_NS = 2_000_000_000
MAX_CACHED = 256


def check_release(owner: str, repo: str, tag: str) -> str:
    """``owner/repo/tag`` after checking each segment; BadRequest (400) saying what's wrong."""
    for what, value, limit in (("owner", owner, MAX_OWNER), ("repository", repo, MAX_REPO),
                               ("tag", tag, MAX_REPO)):  # fmt: skip
        check_name(value)
        if len(value) > limit:
            raise BadRequest(f"The {what} name is longer than {limit} characters.")
    if tag == ROOT_TAG:
        raise BadRequest(
            "The tag 'latest' is reserved for the root release; pick a version tag such as "
            "v1.2.3 (/{owner}/{repo}/releases/latest/download/NAME finds the newest)."
        )
    return f"{owner}/{repo}/{tag}"


class Releases:
    """The releases below the root of one Storage."""

    def __init__(self, storage: Storage, max_versions: int) -> None:
        self.storage = storage
        self.max_versions = max_versions
        self._cache: dict[str, _Snapshot] = {}
        self._locks: dict[str, anyio.Lock] = {}
        #: (stamps of the root and the owners, when read, owners, owner/repo found).
        self._levels: tuple[tuple[int, ...], int, list[str], list[str]] = ((), 0, [], [])

    async def repositories(self) -> list[str]:
        """``owner/repo`` of every repository that has at least one release. The levels
        are listed again when the root's or an owner's stamp changes (a level added or
        removed), else at most every ``REVALIDATE_NS``: the root may hold many packages."""
        key, read_ns, owners, candidates = self._levels
        fresh = time.monotonic_ns() - read_ns < REVALIDATE_NS
        if not fresh or key != await self._levels_key(owners):
            owners = await self.storage.children("")
            key = await self._levels_key(owners)
            candidates = [f"{owner}/{repo}" for owner in owners
                          for repo in await self.storage.children(owner)]  # fmt: skip
            self._levels = (key, time.monotonic_ns(), owners, candidates)
        return [name for name in candidates if await self.has_releases(name)]

    async def _levels_key(self, owners: list[str]) -> tuple[int, ...]:
        return (await self.storage.stamp(""), *[await self.storage.stamp(o) for o in owners])

    async def release(self, repository: str, tag: str) -> Release:
        """One release (drafts included). From the repository's snapshot once the whole
        repository was read (revalidated as every listing of it is: one cheap re-read per
        ``REVALIDATE_NS`` serves every request), else read alone. Raises NotFound."""
        cached = self._cache.get(repository)
        if cached is not None and tag in cached.by_tag:
            found = (await self.snapshot(repository)).by_tag.get(tag)
            if found is not None:
                return found
        key = f"{repository}/{tag}"
        listing = await self.storage.listing(key)
        meta = await self.storage.read_meta(key)
        if meta is None and not listing.packages and tag not in await self._tags(repository):
            raise NotFound(f"No release tagged {tag!r} in {repository}.")
        return _release(repository, tag, listing, meta, _version(listing, meta))

    async def releases(self, repository: str) -> list[Release]:
        """Every release of ``repository``, newest first (drafts included)."""
        return list((await self.snapshot(repository)).releases)

    async def snapshot(self, repository: str) -> _Snapshot:
        """The releases of ``repository`` with a version that changes with them. Kept while
        the repository's stamp stays the same (every write through storage, by any process,
        changes it) and read again at least every ``REVALIDATE_NS`` (for hand edits inside
        a release directory and for download counts), so a request costs no read per
        release."""
        stamp = await self.storage.stamp(repository)
        cached = self._cache.get(repository)
        if cached and cached.fresh(stamp):
            return cached
        lock = self._locks.setdefault(repository, anyio.Lock())
        async with lock:  # one read at a time; those who waited take its result
            cached = self._cache.get(repository)
            if cached and cached.fresh(stamp):
                return cached
            return await self._read(repository, stamp)

    async def has_releases(self, repository: str) -> bool:
        """Whether ``repository`` has a release (or had one a moment ago: a repository
        whose directory is there and was seen with releases counts without a new read)."""
        if not await self.storage.stamp(repository):
            return False
        cached = self._cache.get(repository)
        return bool(cached.releases if cached else (await self.snapshot(repository)).releases)

    async def _read(self, repository: str, stamp: int) -> _Snapshot:
        """Read the whole repository in one call to storage (which reads again only what
        changed); a release whose listing and metadata are as before is the same object,
        and when none changed the snapshot keeps its version (caches of documents stay)."""
        now = time.monotonic_ns()
        old = self._cache.get(repository)
        known = old.by_tag if old else {}
        found = []
        for entry in await self.storage.repository_releases(repository):
            version = _version(entry.listing, entry.meta)
            same = known.get(entry.tag)
            if same is None or same.version != version:
                same = _release(repository, entry.tag, entry.listing, entry.meta, version)
            found.append(same)
        found.sort(key=lambda r: (-r.created_ns, r.tag))
        if (
            old is not None
            and len(old.releases) == len(found)
            and all(a is b for a, b in zip(old.releases, found, strict=True))
        ):
            version = old.version
        else:
            shown = repr([(r.tag, r.version) for r in found]).encode()
            version = hashlib.blake2b(shown, digest_size=12).hexdigest()
        snapshot = _Snapshot(stamp, now, tuple(found), version)
        if len(self._cache) >= MAX_CACHED and repository not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[repository] = snapshot
        if len(self._locks) > MAX_CACHED:
            self._locks = {name: lock for name, lock in self._locks.items() if lock.locked()}
        return snapshot

    async def latest(self, repository: str) -> Release:
        """The newest published release that is not a pre-release, as GitHub defines it."""
        for release in (await self.snapshot(repository)).releases:
            if not release.meta.draft and not release.meta.prerelease:
                return release
        raise NotFound(f"{repository} has no published release that is not a pre-release.")

    async def ensure(self, repository: str, tag: str) -> None:
        """Create the release if it does not exist: published, named after its tag, a
        pre-release when the tag has a pre-release part (the curl path of SPEC §8.5)."""
        key = f"{repository}/{tag}"
        if await self.storage.read_meta(key) is None:
            meta = ReleaseMeta.from_json(None, tag)
            created = ReleaseMeta(meta.name, prerelease=meta.prerelease, created_ns=time.time_ns())
            await self.storage.write_meta(key, created.to_json())

    async def prune(self, repository: str, keep_tag: str) -> list[str]:
        """Keep the newest ``max_versions`` published releases of ``repository`` whole;
        older ones go with all their assets. The release just written to never goes.
        Returns the removed assets' keys."""
        if self.max_versions <= 0:
            return []
        published = [r for r in await self.releases(repository) if not r.meta.draft]
        removed = []
        for release in published[self.max_versions :]:
            if release.tag == keep_tag:
                continue
            for asset in release.assets:
                key = f"{release.key}/{asset.name}"
                try:
                    await self.storage.delete(key)
                except NotFound:
                    continue  # another process pruned it first
                removed.append(key)
            await self.storage.remove_release(release.key)
            log_event(logger, "pruned a release", release=release.key,
                      assets=len(release.assets))  # fmt: skip
        return removed

    async def release_of(self, key: str) -> Release:
        repository, _, tag = key.rpartition("/")
        return await self.release(repository, tag)

    async def create(self, key: str, meta: ReleaseMeta) -> Release:
        """Create the release ``owner/repo/tag`` (GitHub's POST .../releases); 422
        ``already_exists`` when the tag is taken."""
        repository, _, tag = key.rpartition("/")
        if await self.storage.read_meta(key) is not None or tag in await self._tags(repository):
            raise already_exists("Release", "tag_name", tag)
        created = replace(meta, created_ns=time.time_ns())
        await self.storage.write_meta(key, created.to_json())
        return await self.release(repository, tag)

    async def update(self, release: Release, meta: ReleaseMeta) -> Release:
        created = replace(meta, created_ns=release.created_ns)
        await self.storage.write_meta(release.key, created.to_json())
        return await self.release_of(release.key)

    async def label(self, key: str, name: str, label: str) -> None:
        """Give the asset ``name`` of release ``key`` a label (GitHub's ``label``)."""
        release = await self.release_of(key)
        meta = replace(release.meta, labels={**release.meta.labels, name: label[:1000]})
        await self.update(release, meta)

    async def delete(self, key: str) -> None:
        """Delete a release with all its assets."""
        release = await self.release_of(key)
        for asset in release.assets:
            with contextlib.suppress(NotFound):
                await self.storage.delete(f"{key}/{asset.name}")
        await self.storage.remove_release(key)
        log_event(logger, "deleted a release", release=key, assets=len(release.assets))

    async def _tags(self, repository: str) -> list[str]:
        return await self.storage.children(repository)


def _version(listing: Listing, meta: bytes | None) -> str:
    """The version of a release made of ``listing`` and ``meta``."""
    digest = hashlib.blake2b(meta or b"", digest_size=8).hexdigest()
    return f"{listing.version}-{listing.changed_ns:x}-{digest}"


def _release(
    repository: str, tag: str, listing: Listing, meta: bytes | None, version: str
) -> Release:
    return Release(repository, tag, ReleaseMeta.from_json(meta, tag), listing.packages,
                   listing.changed_ns, version)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The releases of one repository as read at ``read_ns`` under ``stamp``."""

    stamp: int
    read_ns: int
    releases: tuple[Release, ...]
    #: Changes whenever anything shown of the releases does (for document caches).
    version: str
    by_tag: dict[str, Release] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_tag", {r.tag: r for r in self.releases})

    def fresh(self, stamp: int) -> bool:
        return stamp == self.stamp and time.monotonic_ns() - self.read_ns < REVALIDATE_NS
