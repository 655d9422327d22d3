"""``/``: the index of what the server holds, the root release and every repository with
its latest release (SPEC §8.4): a page for browsers, JSON for everyone else (as
``/packages`` negotiates)."""

from __future__ import annotations

from collections.abc import Sequence

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import github, page
from ..github import ReleaseView
from ..http import VARY_BASE_URL, json_response
from ..package import iso_utc
from ..page_releases import ReleaseRow, RepositoryRow, render_index
from .api import GitHubApi, quote_repository
from .listing import wants_html


def latest_view(views: Sequence[ReleaseView]) -> ReleaseView | None:
    """The one of ``views`` (newest first) that /releases/latest answers: the root release
    in the default repository, else the newest published release not a pre-release."""
    root = next((view for view in views if not view.key), None)
    return root or next((v for v in views if not (v.draft or v.prerelease)), None)


def release_row(view: ReleaseView, links: github.Links, latest: bool) -> ReleaseRow:
    """A release as the pages show it."""
    return ReleaseRow(view.tag, view.name, links.html(view.tag), iso_utc(view.created_ns),
                      view.prerelease, view.draft, latest, len(view.assets))  # fmt: skip


def release_rows(views: Sequence[ReleaseView], links: github.Links) -> list[ReleaseRow]:
    """``views`` (newest first) as the pages show them, the latest marked."""
    latest = latest_view(views)
    return [release_row(view, links, view is latest) for view in views]


class Home:
    def __init__(self, api: GitHubApi) -> None:
        self.api = api
        self.ctx = api.ctx

    async def repository_row(self, request: Request, repository: str) -> RepositoryRow:
        quoted = quote_repository(repository)
        links = self.ctx.links(request, "", quoted)
        views = await self.api.repository_views(repository, False)
        newest = latest_view(views)
        latest = release_row(newest, links, True) if newest else None
        updated = iso_utc(views[0].created_ns) if views else None
        return RepositoryRow(repository, f"{links.root}/{quoted}/releases", len(views),
                             latest, updated, views[0].created_ns if views else 0)  # fmt: skip

    async def index(self, request: Request) -> Response:
        html = wants_html(request)
        default = self.ctx.settings.repository
        authorization = request.headers.get("authorization")
        names = [
            name
            for name in await self.ctx.publisher.releases.repositories()
            if name != default and self.ctx.access.may(authorization, name, write=False)
        ]  # a private repository is listed only to those who may read it
        repositories = [await self.repository_row(request, name) for name in names]
        repositories.sort(key=lambda row: -row.updated_ns)
        root = await self.repository_row(request, default)
        links = self.ctx.links(request)
        if root.latest is not None:  # the default repository's own page lists its releases
            root_release = root.latest
            root = RepositoryRow(default, f"{links.root}/packages", root_release.assets,
                                 root_release, root_release.created_at)  # fmt: skip
        vary = f"Accept, Authorization, {VARY_BASE_URL}"  # private ones are listed to some
        if html:
            body = await to_thread.run_sync(
                lambda: render_index(root, repositories, base_url=links.root)
            )
            headers = {**page.PAGE_HEADERS, "vary": vary}
            return Response(body, media_type="text/html", headers=headers)
        document = {
            "root": {"full_name": default, "tag_name": github.TAG, "packages": root.releases,
                     "updated_at": root.updated_at, "html_url": root.url,
                     "url": f"{links.root}/latest"},
            "repositories": [
                {"full_name": row.name, "html_url": row.url,
                 "url": f"{links.root}/repos/{quote_repository(row.name)}",
                 "releases": row.releases, "latest": row.latest.tag if row.latest else None,
                 "updated_at": row.updated_at}
                for row in repositories
            ],
        }  # fmt: skip
        response = json_response(document)
        response.headers["vary"] = vary
        return response

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.index, methods=["GET", "HEAD"])]
