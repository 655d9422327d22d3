"""GitHub's REST paths for the root release, mounted at "" and at "/api/v3" (the base URL
GitHub Enterprise clients are given), so PyGithub, octokit, gh and friends read it."""

from __future__ import annotations

import math
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import github
from ..errors import NotFound, Unprocessable
from ..http import json_response
from .assets import Assets
from .context import Context
from .listing import release_response

NO_RELEASE = "No such release: this server has one release, id 1."


class GitHubApi:
    """The routes of one mount point, ``prefix`` being "" or "/api/v3"."""

    def __init__(self, ctx: Context, assets: Assets, prefix: str) -> None:
        self.ctx = ctx
        self.assets = assets
        self.prefix = prefix

    def links(self, request: Request) -> github.Links:
        params = request.path_params
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
        document = github.release_document(listing.packages, links, listing.changed_ns)
        return paginated(request, [document], links.releases)

    async def release_assets(self, request: Request) -> Response:
        if request.path_params["release_id"] != str(github.RELEASE_ID):
            raise NotFound(NO_RELEASE)
        links = self.links(request)
        listing = await self.ctx.listing()
        user = github.user_document(links)
        documents = [github.asset_document(p, links, user) for p in listing.packages]
        return paginated(request, documents, f"{links.release}/assets")

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
            Route(f"{releases}/latest", self.release),
            Route(releases, self.releases),
            Route(f"{releases}/tags/{{tag:path}}", self.release_by_tag),
            Route(f"{releases}/assets/{{asset_id}}", self.asset, methods=["GET", "HEAD"]),
            Route(f"{releases}/{{release_id}}", self.release_by_id),
            Route(f"{releases}/{{release_id}}/assets", self.release_assets),
            Route(f"{api}/users/{{login}}", self.user),
            Route(f"{api}/users/{{login}}/{{rest:path}}", self.user_list),
        ]


def paginated(request: Request, items: list[dict[str, object]], url: str) -> Response:
    """A JSON list page with GitHub's ``per_page``/``page`` and ``Link`` header; ``url``
    is the list's external address (links stay on the client's host and prefix)."""
    try:
        per_page = min(max(int(request.query_params.get("per_page", 30)), 1), 100)
        number = max(int(request.query_params.get("page", 1)), 1)
    except ValueError:
        raise Unprocessable("per_page and page must be whole numbers.") from None
    last = max(math.ceil(len(items) / per_page), 1)
    start = (number - 1) * per_page
    rels = {"first": 1, "last": last}
    if number > 1:
        rels["prev"] = min(number - 1, last)
    if number < last:
        rels["next"] = number + 1
    link = ", ".join(
        f'<{url}?{urlencode({"per_page": per_page, "page": value})}>; rel="{rel}"'
        for rel, value in rels.items()
    )
    return json_response(items[start : start + per_page], headers={"link": link})
