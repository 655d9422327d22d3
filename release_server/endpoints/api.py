"""GitHub's REST paths for releases, mounted at "" and at "/api/v3" (the base URL GitHub
Enterprise clients are given), so PyGithub, octokit, gh and friends read them.

``/repos/{owner}/{repo}`` names the default repository (``REPOSITORY``: its release
``latest``, id 1, is the root release, plus any releases below it) or a repository that
has releases; any other is 404, as on GitHub. Drafts are shown only to the write token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import github
from ..documents import cached_response
from ..errors import NotFound, Unprocessable
from ..github import ReleaseView
from ..http import json_bytes, json_response
from ..names import name_problem
from ..package import Package
from ..releases import MAX_OWNER, MAX_REPO
from ..uploads import parse_checksum
from .assets import Assets
from .context import Context
from .listing import release_response


class GitHubApi:
    """The read routes of one mount point, ``prefix`` being "" or "/api/v3"."""

    def __init__(self, ctx: Context, assets: Assets, prefix: str) -> None:
        self.ctx = ctx
        self.assets = assets
        self.prefix = prefix
        self._views: dict[tuple[str, bool], tuple[list[ReleaseView], str]] = {}
        self._assets: dict[tuple[str, bool], tuple[str, dict[str, tuple[ReleaseView, Package]]]]
        self._assets = {}

    # -- what a request names ------------------------------------------------------------------

    def repository_name(self, request: Request) -> str:
        params = request.path_params
        if len(params["owner"]) > MAX_OWNER or len(params["repo"]) > MAX_REPO:
            raise NotFound(
                f"No such repository: owner names have at most {MAX_OWNER} characters and "
                f"repository names at most {MAX_REPO}."
            )
        return f"{params['owner']}/{params['repo']}"

    def links(self, request: Request) -> github.Links:
        repository = self.repository_name(request)
        return self.ctx.links(request, self.prefix, quote_repository(repository))

    def is_default(self, repository: str) -> bool:
        return repository == self.ctx.settings.repository

    async def known(self, repository: str) -> None:
        """NotFound unless ``repository`` is the default one or has releases."""
        if self.is_default(repository):
            return
        if await self.ctx.publisher.releases.has_releases(repository):
            return
        others = [self.ctx.settings.repository, *await self.ctx.publisher.releases.repositories()]
        raise NotFound(f"No repository {repository!r} here; there are: {', '.join(others)}.")

    async def views(self, request: Request) -> list[ReleaseView]:
        """Every release of the repository the caller may see, newest first."""
        repository = self.repository_name(request)
        await self.known(repository)
        return await self.repository_views(repository, self.ctx.can_write(request))

    async def repository_views(self, repository: str, drafts: bool) -> list[ReleaseView]:
        """The releases of a known ``repository``, newest first; drafts only if asked."""
        return (await self.versioned_views(repository, drafts))[0]

    async def versioned_views(self, repository: str, drafts: bool) -> tuple[list[ReleaseView], str]:
        """``repository_views`` and a version that changes whenever they do; both kept
        while the releases (and the root listing, for the default repository) are the same,
        so a request in a repository of 1,000 releases builds nothing per release."""
        snapshot = await self.ctx.publisher.releases.snapshot(repository)
        root = await self.ctx.listing() if self.is_default(repository) else None
        version = f"{snapshot.version} {root.version if root else ''} {drafts}"
        memo = self._views.get((repository, drafts))
        if memo is not None and memo[1] == version:
            return memo
        views = [github.release_view(r) for r in snapshot.releases if drafts or not r.meta.draft]
        if root is not None:
            views.append(github.root_view(root.packages, root.changed_ns))
        views.sort(key=lambda view: -view.created_ns)
        if len(self._views) >= MAX_MEMO and (repository, drafts) not in self._views:
            self._views.pop(next(iter(self._views)))
        self._views[(repository, drafts)] = (views, version)
        return views, version

    async def view_of(self, request: Request, tag: str) -> ReleaseView:
        """One release by tag, read alone (not the whole repository); drafts only for the
        write token. NotFound as GitHub answers."""
        repository = self.repository_name(request)
        await self.known(repository)
        if self.is_default(repository) and tag == github.TAG:
            listing = await self.ctx.listing()
            return github.root_view(listing.packages, listing.changed_ns)
        missing = NotFound(f"No release tagged {tag!r} in this repository.")
        if name_problem(tag):
            raise missing
        release = await self.ctx.publisher.releases.release(repository, tag)
        if release.meta.draft and not self.ctx.can_write(request):
            raise missing
        return github.release_view(release)

    async def release_for(self, request: Request) -> ReleaseView:
        """The release ``{release_id}`` names (ids are derived from tags, so only the
        tags are read to find it); NotFound as GitHub answers."""
        repository = self.repository_name(request)
        await self.known(repository)
        wanted = request.path_params["release_id"]
        if self.is_default(repository) and wanted == str(github.RELEASE_ID):
            return await self.view_of(request, github.TAG)
        for view in await self.repository_views(repository, True):
            if str(view.id) == wanted:
                return await self.view_of(request, view.tag)
        raise NotFound(f"No release with id {wanted!r} in this repository.")

    async def asset_for(self, request: Request) -> tuple[ReleaseView, Package]:
        """The asset ``{asset_id}`` names, from an index of the repository's assets by id
        (built once per version of its releases: ids are hashes of names)."""
        repository = self.repository_name(request)
        await self.known(repository)
        drafts = self.ctx.can_write(request)
        views, version = await self.versioned_views(repository, drafts)
        memo = self._assets.get((repository, drafts))
        if memo is None or memo[0] != version:
            index = {str(github.asset_id(package.name, view.key)): (view, package)
                     for view in reversed(views) for package in view.assets}  # fmt: skip
            memo = (version, index)
            if len(self._assets) >= MAX_MEMO and (repository, drafts) not in self._assets:
                self._assets.pop(next(iter(self._assets)))
            self._assets[(repository, drafts)] = memo
        found = memo[1].get(request.path_params["asset_id"])
        if found is None:
            wanted = request.path_params["asset_id"]
            raise NotFound(f"No asset with id {wanted}; list a release's assets to find one.")
        return found

    @staticmethod
    def expected(request: Request) -> str | None:
        return parse_checksum(request.headers.get("x-checksum-sha256"), "X-Checksum-Sha256")

    # -- reading -------------------------------------------------------------------------------

    async def release(self, request: Request, view: ReleaseView) -> Response:
        links = self.links(request)
        if not view.key:  # the root release: cached, as /latest
            return await release_response(self.ctx, request, links)
        # Cached per version of the release: a repository's tags are polled (updaters).
        body, etag = await self.ctx.documents.get(
            view.version, "release",
            f"{links.root} {links.api} {links.repository} {view.key}",
            lambda: self.ctx.assets.release_json(view, links), encode=bytes,
        )  # fmt: skip
        return cached_response(request, body, etag, "application/json")

    async def latest(self, request: Request) -> Response:
        repository = self.repository_name(request)
        await self.known(repository)
        if self.is_default(repository):
            return await release_response(self.ctx, request, self.links(request))
        release = await self.ctx.publisher.releases.latest(repository)
        return await self.release(request, github.release_view(release))

    async def by_tag(self, request: Request) -> Response:
        return await self.release(request, await self.view_of(request, request.path_params["tag"]))

    async def by_id(self, request: Request) -> Response:
        return await self.release(request, await self.release_for(request))

    async def releases(self, request: Request) -> Response:
        links = self.links(request)
        repository = self.repository_name(request)
        await self.known(repository)
        views, version = await self.versioned_views(repository, self.ctx.can_write(request))

        def build(start: int, stop: int) -> bytes:
            return self.ctx.assets.releases_json(views[start:stop], links)

        return await self.paginated(
            request, version, len(views), build, links.releases, encode=bytes
        )

    async def release_assets(self, request: Request) -> Response:
        view = await self.release_for(request)
        links = self.links(request)

        def build(start: int, stop: int) -> list[dict[str, object]]:
            user = github.user_document(links)
            return [
                github.asset_document(p, links, user, view.key, view.labels.get(p.name, ""))
                for p in view.assets[start:stop]
            ]

        version = repr([(p.name, p.size, p.mtime_ns, p.downloads) for p in view.assets])
        url = f"{links.release_url(view.id)}/assets"
        return await self.paginated(request, version, len(view.assets), build, url)

    async def asset(self, request: Request) -> Response:
        view, package = await self.asset_for(request)
        if "application/octet-stream" in request.headers.get("accept", "").lower():
            key = f"{view.key}/{package.name}" if view.key else package.name
            reader = await self.ctx.storage.open(key)
            return await self.assets.send(request, reader, "application/octet-stream")
        label = view.labels.get(package.name, "")
        document = github.asset_document(package, self.links(request), None, view.key, label)
        return json_response(document)

    async def tags(self, request: Request) -> Response:
        links = self.links(request)
        views = [view for view in await self.views(request) if view.key and not view.draft]
        documents = [github.tag_document(view, links) for view in views]
        return json_response(documents)

    async def repository(self, request: Request) -> Response:
        repository = self.repository_name(request)
        await self.known(repository)
        owner, name = repository.split("/")
        listing = await self.ctx.listing()
        document = github.repository_document(
            self.links(request), owner, name, self.ctx.can_write(request), listing.changed_ns
        )
        return json_response(document)

    async def user(self, request: Request) -> Response:
        if request.path_params["login"] != github.LOGIN:
            raise NotFound(f"No such user; this server's only user is {github.LOGIN}.")
        return json_response(github.user_document(self.ctx.links(request, self.prefix)))

    async def user_list(self, request: Request) -> Response:
        return json_response([])

    async def paginated(
        self,
        request: Request,
        version: str,
        count: int,
        build: Callable[[int, int], object],
        url: str,
        encode: Callable[[Any], bytes] = json_bytes,
    ) -> Response:
        """One page of a list of ``count`` items, GitHub's way (``per_page``/``page`` and a
        ``Link`` header); ``url`` is the list's external address. Pages are cached like
        every other document (keyed by ``version`` of what they show) and built off the
        event loop."""
        per_page, number = page_params(request)
        start = (number - 1) * per_page
        body, etag = await self.ctx.documents.get(
            version,
            f"page {url} {self.ctx.can_write(request)}",
            f"{per_page} {number}",
            lambda: build(start, start + per_page),
            encode,
        )
        response = cached_response(request, body, etag, "application/json")
        response.headers["link"] = link_header(url, per_page, number, count)
        return response

    def routes(self) -> list[BaseRoute]:
        api = self.prefix
        repo = f"{api}/repos/{{owner}}/{{repo}}"
        releases = f"{repo}/releases"
        return [
            Route(repo, self.repository),
            Route(f"{repo}/tags", self.tags),
            Route(f"{releases}/latest", self.latest),
            Route(releases, self.releases),
            Route(f"{releases}/tags/{{tag:path}}", self.by_tag),
            Route(f"{releases}/assets/{{asset_id}}", self.asset, methods=["GET", "HEAD"]),
            Route(f"{releases}/{{release_id}}", self.by_id),
            Route(f"{releases}/{{release_id}}/assets", self.release_assets),
            Route(f"{api}/users/{{login}}", self.user),
            Route(f"{api}/users/{{login}}/{{rest:path}}", self.user_list),
        ]


#: Repositories whose release views are kept (per mount point and draft visibility).
MAX_MEMO = 256


def quote_repository(repository: str) -> str:
    """``owner/repo`` with each part percent-encoded for a URL path."""
    owner, repo = repository.split("/")
    return f"{quote(owner, safe='')}/{quote(repo, safe='')}"


def page_params(request: Request) -> tuple[int, int]:
    """``per_page`` (1-100, default 30) and ``page`` (from 1), or 422."""
    try:
        per_page = min(max(int(request.query_params.get("per_page", 30)), 1), 100)
        number = max(int(request.query_params.get("page", 1)), 1)
    except ValueError:
        raise Unprocessable("per_page and page must be whole numbers.") from None
    return per_page, number


def link_header(url: str, per_page: int, number: int, count: int) -> str:
    last = max(math.ceil(count / per_page), 1)
    rels = {"first": 1, "last": last}
    if number > 1:
        rels["prev"] = min(number - 1, last)
    if number < last:
        rels["next"] = number + 1
    return ", ".join(
        f'<{url}?{urlencode({"per_page": per_page, "page": value})}>; rel="{rel}"'
        for rel, value in rels.items()
    )
