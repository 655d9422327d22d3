"""Releases shaped as GitHub's REST API shapes them: the root release (id 1, tagged
``latest``) and the versioned releases below it.

Pure functions from data to data. Every URL is built from ``Links``, which the routes make
from the request, so links resolve on the same scheme, host, port and path prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from .media import content_type
from .model import Release
from .package import Package, iso_utc

RELEASE_ID = 1
TAG = "latest"
LOGIN = "release-server"
USER_ID = 1


@dataclass(frozen=True, slots=True)
class Links:
    """Where things live for one request: ``root`` is scheme://host[:port][/prefix];
    ``api`` is ``root`` or ``root/api/v3``; ``repository`` is ``owner/repo``."""

    root: str
    api: str
    repository: str

    @property
    def releases(self) -> str:
        return f"{self.api}/repos/{self.repository}/releases"

    @property
    def release(self) -> str:
        """The root release's API URL."""
        return f"{self.releases}/{RELEASE_ID}"

    def release_url(self, release_id: int) -> str:
        return f"{self.releases}/{release_id}"

    def upload_url(self, release_id: int) -> str:
        """Where GitHub clients upload assets (GitHub Enterprise's ``/api/uploads``)."""
        return f"{self.root}/api/uploads/repos/{self.repository}/releases/{release_id}/assets"

    def html(self, tag: str) -> str:
        """The page of a release: the package page for the root release."""
        if tag == TAG:
            return f"{self.root}/packages"
        return f"{self.root}/{self.repository}/releases/tag/{quote(tag, safe='')}"

    @property
    def user(self) -> str:
        return f"{self.api}/users/{LOGIN}"

    def asset(self, asset_id: int) -> str:
        return f"{self.releases}/assets/{asset_id}"

    def download(self, name: str, release: str = "") -> str:
        """Where an asset downloads: ``/assets/{name}`` in the root release, else GitHub's
        web path ``/{owner}/{repo}/releases/download/{tag}/{name}``."""
        if not release:
            return f"{self.root}/assets/{quote(name, safe='')}"
        owner, repo, tag = (quote(part, safe="") for part in release.split("/"))
        return f"{self.root}/{owner}/{repo}/releases/download/{tag}/{quote(name, safe='')}"


def asset_id(name: str, release: str = "") -> int:
    """A stable id per file (its name in the root release, else ``owner/repo/tag/name``),
    small enough for JavaScript clients (< 2**53)."""
    return _stable_id(f"{release}/{name}" if release else name)


def release_id(key: str) -> int:
    """A stable id per release below the root (``owner/repo/tag``); 1 is the root's."""
    return _stable_id(f"release {key}") or 2


def _stable_id(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:6], "big") or 1


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """What GitHub's release document says: the root release, or one below it."""

    id: int
    tag: str
    name: str
    body: str
    draft: bool
    prerelease: bool
    created_ns: int
    assets: Sequence[Package]
    #: "" for the root release, else ``owner/repo/tag`` (where its assets download).
    key: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    #: The release's version (model.Release): documents of it are cached under it.
    version: str = ""


def root_view(packages: Sequence[Package], changed_ns: int) -> ReleaseView:
    """The root release: every package of the root, newest first."""
    created = packages[0].mtime_ns if packages else changed_ns
    body = f"{len(packages)} package(s) published on this server."
    return ReleaseView(RELEASE_ID, TAG, TAG, body, False, False, created, packages)


def release_view(release: Release) -> ReleaseView:
    meta = release.meta
    return ReleaseView(
        release_id(release.key), release.tag, meta.name, meta.body, meta.draft,
        meta.prerelease, release.created_ns, release.assets, release.key, meta.labels,
        release.version,
    )  # fmt: skip


def user_document(links: Links) -> dict[str, object]:
    """The simple-user GitHub puts in ``author`` and ``uploader``: this server itself."""
    user = links.user
    return {
        "login": LOGIN,
        "id": USER_ID,
        "node_id": "U_release-server",
        "avatar_url": f"{links.root}/avatar.svg",
        "gravatar_id": "",
        "url": user,
        "html_url": f"{links.root}/packages",
        "followers_url": f"{user}/followers",
        "following_url": f"{user}/following{{/other_user}}",
        "gists_url": f"{user}/gists{{/gist_id}}",
        "starred_url": f"{user}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{user}/subscriptions",
        "organizations_url": f"{user}/orgs",
        "repos_url": f"{user}/repos",
        "events_url": f"{user}/events{{/privacy}}",
        "received_events_url": f"{user}/received_events",
        "type": "Bot",
        "user_view_type": "public",
        "site_admin": False,
    }


def asset_document(
    package: Package,
    links: Links,
    user: dict[str, object] | None = None,
    release: str = "",
    label: str = "",
) -> dict[str, object]:
    """A GitHub release asset for one package, with every field GitHub returns."""
    ident = asset_id(package.name, release)
    return {
        "url": links.asset(ident),
        "id": ident,
        "node_id": f"RA_{ident}",
        "name": package.name,
        "label": label,
        "uploader": user or user_document(links),
        "content_type": content_type(package.name),
        "state": "uploaded",
        "size": package.size,
        "digest": f"sha256:{package.sha256}",
        "download_count": package.downloads,
        "created_at": package.created_at,
        "updated_at": package.created_at,
        "browser_download_url": links.download(package.name, release),
    }


def release_document(view: ReleaseView, links: Links) -> dict[str, object]:
    """A release with every field GitHub returns, assets newest first (clients take the
    first match)."""
    user = user_document(links)
    return {
        **release_fields(view, links, user),
        "assets": [
            asset_document(p, links, user, view.key, view.labels.get(p.name, ""))
            for p in view.assets
        ],
    }


def release_fields(view: ReleaseView, links: Links, user: dict[str, object]) -> dict[str, object]:
    """Every field of a release document but ``assets``, which comes last."""
    url = links.release_url(view.id)
    created = iso_utc(view.created_ns)
    return {
        "url": url,
        "html_url": links.html(view.tag),
        "assets_url": f"{url}/assets",
        "upload_url": f"{links.upload_url(view.id)}{{?name,label}}",
        "tarball_url": None,
        "zipball_url": None,
        "id": view.id,
        "node_id": f"RE_{view.id}",
        "tag_name": view.tag,
        "target_commitish": "main",
        "name": view.name,
        "body": view.body,
        "draft": view.draft,
        "prerelease": view.prerelease,
        "immutable": False,
        "created_at": created,
        "published_at": None if view.draft else created,
        "author": user,
    }


def tag_document(view: ReleaseView, links: Links) -> dict[str, object]:
    """A tag as ``GET /repos/{o}/{r}/tags`` lists it (there is no git here: the "commit"
    is the release)."""
    page = links.html(view.tag)
    return {
        "name": view.tag,
        "commit": {"sha": f"{view.id:040x}"[-40:], "url": links.release_url(view.id)},
        "zipball_url": page,
        "tarball_url": page,
        "node_id": f"REF_{view.id}",
    }


def repository_document(
    links: Links, owner: str, name: str, can_write: bool, updated_ns: int
) -> dict[str, object]:
    """GitHub's repository object (``GET /repos/{owner}/{repo}``, PyGithub's ``get_repo``):
    what release tools read of it, with ``permissions`` for the caller's token."""
    url = f"{links.api}/repos/{links.repository}"
    html = f"{links.root}/packages"
    updated = iso_utc(updated_ns)
    return {
        "id": asset_id(f"repository {owner}/{name}"),
        "node_id": f"R_{owner}/{name}",
        "name": name,
        "full_name": f"{owner}/{name}",
        "private": False,
        "visibility": "public",
        "owner": {**user_document(links), "login": owner, "type": "Organization"},
        "html_url": html,
        "description": "Release packages served by release-server.",
        "fork": False,
        "url": url,
        "releases_url": f"{url}/releases{{/id}}",
        "tags_url": f"{url}/tags",
        "clone_url": f"{links.root}/{links.repository}.git",
        "git_url": f"{links.root}/{links.repository}.git",
        "ssh_url": f"{links.root}/{links.repository}.git",
        "svn_url": html,
        "homepage": html,
        "default_branch": "main",
        "archived": False,
        "disabled": False,
        "has_issues": False,
        "has_downloads": True,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "forks_count": 0,
        "open_issues_count": 0,
        "created_at": updated,
        "updated_at": updated,
        "pushed_at": updated,
        "permissions": {
            "admin": False,
            "maintain": can_write,
            "push": can_write,
            "triage": can_write,
            "pull": True,
        },
    }
