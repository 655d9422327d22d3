"""Packages shaped as GitHub's REST API shapes them: one release, tagged ``latest``.

Pure functions from data to data. Every URL is built from ``Links``, which the routes make
from the request, so links resolve on the same scheme, host, port and path prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from .media import content_type
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
        return f"{self.releases}/{RELEASE_ID}"

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


def asset_id(name: str) -> int:
    """A stable id per file name, small enough for JavaScript clients (< 2**53)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:6], "big") or 1


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
    package: Package, links: Links, user: dict[str, object] | None = None
) -> dict[str, object]:
    """A GitHub release asset for one package, with every field GitHub returns."""
    ident = asset_id(package.name)
    return {
        "url": links.asset(ident),
        "id": ident,
        "node_id": f"RA_{ident}",
        "name": package.name,
        "label": "",
        "uploader": user or user_document(links),
        "content_type": content_type(package.name),
        "state": "uploaded",
        "size": package.size,
        "digest": f"sha256:{package.sha256}",
        "download_count": package.downloads,
        "created_at": package.created_at,
        "updated_at": package.created_at,
        "browser_download_url": links.download(package.name),
    }


def release_document(
    packages: Sequence[Package], links: Links, fallback_time_ns: int
) -> dict[str, object]:
    """The one release, with assets newest first (clients take the first match)."""
    user = user_document(links)
    published = iso_utc(packages[0].mtime_ns if packages else fallback_time_ns)
    return {
        "url": links.release,
        "html_url": f"{links.root}/packages",
        "assets_url": f"{links.release}/assets",
        "upload_url": f"{links.release}/assets{{?name,label}}",
        "tarball_url": None,
        "zipball_url": None,
        "id": RELEASE_ID,
        "node_id": f"RE_{RELEASE_ID}",
        "tag_name": TAG,
        "target_commitish": "main",
        "name": TAG,
        "body": f"{len(packages)} package(s) published on this server.",
        "draft": False,
        "prerelease": False,
        "immutable": False,
        "created_at": published,
        "published_at": published,
        "author": user,
        "assets": [asset_document(package, links, user) for package in packages],
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
