"""GitHub's REST paths for the root release, mounted at "" and at "/api/v3" (the base URL
GitHub Enterprise clients are given), so PyGithub, octokit, gh and friends read it."""

from __future__ import annotations

import math
from collections.abc import Callable
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import github
from ..documents import cached_response
from ..errors import NotFound, Unprocessable
from ..http import json_response
from ..storage import Listing
from .assets import Assets
from .context import Context
from .listing import release_response

NO_RELEASE = "No such release: this server has one release, id 1."
#: GitHub's limits on owner and repository names; longer ones cannot exist, and would
#: otherwise be copied into every link of a document.
MAX_OWNER, MAX_REPO = 39, 100


class GitHubApi:
    """The routes of one mount point, ``prefix`` being "" or "/api/v3"."""

    def __init__(self, ctx: Context, assets: Assets, prefix: str) -> None:
        self.ctx = ctx
        self.assets = assets
        self.prefix = prefix

    def links(self, request: Request) -> github.Links:
        params = request.path_params
        if len(params["owner"]) > MAX_OWNER or len(params["repo"]) > MAX_REPO:
            raise NotFound(
                f"No such repository: owner names have at most {MAX_OWNER} characters and "
                f"repository names at most {MAX_REPO}."
            )
        owner, repo = quote(params["owner"], safe=""), quote(params["repo"], safe="")
        return self.ctx.links(request, self.prefix, f"{owner}/{repo}")

    async def release(self, request: Request) -> Response:
        return await release_response(self.ctx, request, self.links(request))

    async def release_by_id(self, request: Request) -> Response:
        if request.path_params["release_id"] != str(github.RELEASE_ID):
            raise NotFound(NO_RELEASE)
        return await self.release(request)

    async def release_by_tag(self, request: Request) -> Response:
        if request.path_params["tag"] != github.TAG:
            raise NotFound("No such release: the only tag here is 'latest'.")
        return await self.release(request)

    async def releases(self, request: Request) -> Response:
        links = self.links(request)
        listing = await self.ctx.listing()

        def build(start: int, stop: int) -> list[dict[str, object]]:
            document = github.release_document(listing.packages, links, listing.changed_ns)
            return [document][start:stop]

        return await self.paginated(request, listing, 1, build, links.releases)

    async def release_assets(self, request: Request) -> Response:
        if request.path_params["release_id"] != str(github.RELEASE_ID):
            raise NotFound(NO_RELEASE)
        links = self.links(request)
        listing = await self.ctx.listing()

        def build(start: int, stop: int) -> list[dict[str, object]]:
            user = github.user_document(links)
            return [github.asset_document(p, links, user) for p in listing.packages[start:stop]]

        count = len(listing.packages)
        return await self.paginated(request, listing, count, build, f"{links.release}/assets")

    async def paginated(
        self,
        request: Request,
        listing: Listing,
        count: int,
        build: Callable[[int, int], list[dict[str, object]]],
        url: str,
    ) -> Response:
        """One page of a list of ``count`` items, GitHub's way (``per_page``/``page`` and a
        ``Link`` header); ``url`` is the list's external address. Pages are cached like
        every other document and built off the event loop."""
        per_page, number = page_params(request)
        start = (number - 1) * per_page
        body, etag = await self.ctx.documents.get(
            listing,
            f"page {url}",
            f"{per_page} {number}",
            lambda: build(start, start + per_page),
        )
        response = cached_response(request, body, etag, "application/json")
        response.headers["link"] = link_header(url, per_page, number, count)
        return response

    async def asset(self, request: Request) -> Response:
        listing = await self.ctx.listing()
        wanted = request.path_params["asset_id"]
        for package in listing.packages:
            if str(github.asset_id(package.name)) == wanted:
                break
        else:
            raise NotFound(f"No asset with id {wanted}; list them at /latest.")
        if "application/octet-stream" in request.headers.get("accept", "").lower():
            reader = await self.ctx.storage.open(package.name)
            return await self.assets.send(request, reader, "application/octet-stream")
        return json_response(github.asset_document(package, self.links(request)))

    async def repository(self, request: Request) -> Response:
        links = self.links(request)
        params = request.path_params
        listing = await self.ctx.listing()
        document = github.repository_document(
            links, params["owner"], params["repo"], self.ctx.can_write(request), listing.changed_ns
        )
        return json_response(document)

    async def user(self, request: Request) -> Response:
        if request.path_params["login"] != github.LOGIN:
            raise NotFound(f"No such user; this server's only user is {github.LOGIN}.")
        return json_response(github.user_document(self.ctx.links(request, self.prefix)))

    async def user_list(self, request: Request) -> Response:
        return json_response([])

    def routes(self) -> list[BaseRoute]:
        api = self.prefix
        releases = f"{api}/repos/{{owner}}/{{repo}}/releases"
        return [
            Route(f"{api}/repos/{{owner}}/{{repo}}", self.repository),
            Route(f"{releases}/latest", self.release),
            Route(releases, self.releases),
            Route(f"{releases}/tags/{{tag:path}}", self.release_by_tag),
            Route(f"{releases}/assets/{{asset_id}}", self.asset, methods=["GET", "HEAD"]),
            Route(f"{releases}/{{release_id}}", self.release_by_id),
            Route(f"{releases}/{{release_id}}/assets", self.release_assets),
            Route(f"{api}/users/{{login}}", self.user),
            Route(f"{api}/users/{{login}}/{{rest:path}}", self.user_list),
        ]


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
