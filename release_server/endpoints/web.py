"""GitHub's web paths for releases, which install scripts and updaters hard-code, and the
same path for writing with curl (SPEC §8.4, §8.5):

    GET/HEAD  /{owner}/{repo}/releases/download/{tag}/{name}   the asset's bytes
    PUT       /{owner}/{repo}/releases/download/{tag}/{name}   upload (creates the release)
    DELETE    /{owner}/{repo}/releases/download/{tag}/{name}   remove the asset
    GET/HEAD  /{owner}/{repo}/releases/latest/download/{name}  302 to the newest release's
              asset of that name, or of the family the name stands for (for the default
              repository: its root release, which REST /releases/latest answers too)
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import feeds, github, page, page_releases
from ..documents import cached_response
from ..errors import InvalidName, NotFound
from ..names import check_name
from ..releases import check_release
from ..uploads import OpenUpload, receive_raw
from .api import GitHubApi
from .assets import Assets
from .context import Context, upload_body
from .home import release_row, release_rows
from .listing import newest_matching, root_latest_download

DOWNLOAD = "/{owner}/{repo}/releases/download/{tag}/{name}"
LATEST = "/{owner}/{repo}/releases/latest/download/{name}"
PAGE = "/{owner}/{repo}/releases/tag/{tag}"
LIST = "/{owner}/{repo}/releases"
FEED = "/{owner}/{repo}/releases.atom"


class WebPaths:
    def __init__(self, ctx: Context, assets: Assets, api: GitHubApi) -> None:
        self.ctx = ctx
        self.assets = assets
        self.api = api

    def key(self, request: Request) -> tuple[str, str]:
        """(``owner/repo/tag``, name), each segment checked; the name decoded strictly from
        the raw path, as for /assets/."""
        params = request.path_params
        release = check_release(params["owner"], params["repo"], params["tag"])
        return release, last_segment(request)

    async def get(self, request: Request) -> Response:
        release, name = self.key(request)
        return await self.assets.send(request, await self.ctx.storage.open(f"{release}/{name}"))

    async def put(self, request: Request) -> Response:
        body = upload_body(request, self.ctx.settings.read_timeout)
        release, name = self.key(request)

        async def receive(open_upload: OpenUpload) -> str | None:
            await receive_raw(body, await open_upload(name))
            return None

        return await self.assets.store(
            request, receive, created_status=201, slack=0, release=release
        )

    async def delete(self, request: Request) -> Response:
        release, name = self.key(request)
        await self.ctx.publisher.delete(f"{release}/{name}")
        return Response(status_code=204)

    async def latest(self, request: Request) -> Response:
        params = request.path_params
        repository = f"{params['owner']}/{params['repo']}"
        wanted = last_segment(request)
        if self.api.is_default(repository):
            # As REST /releases/latest: the default repository's latest is its root release.
            return await root_latest_download(self.ctx, request, wanted)
        release = await self.ctx.publisher.releases.latest(repository)
        found = newest_matching(release.assets, wanted)
        if found is None:
            raise NotFound(
                f"The latest release of {repository} ({release.tag}) has no asset {wanted!r}, "
                "nor a versioned asset that name stands for."
            )
        return RedirectResponse(self.ctx.links(request).download(found, release.key), 302)

    async def page(self, request: Request) -> Response:
        """The release's ``html_url``: its notes and files, as /packages shows files."""
        params = request.path_params
        repository = self.api.repository_name(request)
        check_release(params["owner"], params["repo"], params["tag"])
        release = await self.ctx.publisher.releases.release(repository, params["tag"])
        if release.meta.draft and not self.ctx.can_write(request):
            raise NotFound(f"No release tagged {release.tag!r} in {repository}.")
        links = self.api.links(request)
        view = github.release_view(release)
        latest = await self.latest_tag(repository)
        row = release_row(view, links, view.tag == latest)
        html = await to_thread.run_sync(
            lambda: page_releases.render_release(
                repository, row, view.body, view.assets,
                lambda name: links.download(name, release.key),
                base_url=links.root, api_url=f"{links.root}/repos/{links.repository}",
            )
        )  # fmt: skip
        return Response(html, media_type="text/html", headers=dict(page.PAGE_HEADERS))

    async def latest_tag(self, repository: str) -> str | None:
        """The tag /releases/latest answers for ``repository`` (None if there is none)."""
        if self.api.is_default(repository):
            return github.TAG
        try:
            return (await self.ctx.publisher.releases.latest(repository)).tag
        except NotFound:
            return None

    async def published(
        self,
        request: Request,
        kind: str,
        build: Callable[[str, list[github.ReleaseView], github.Links], bytes],
    ) -> tuple[bytes, str]:
        """A document of the repository's published releases, built by ``build`` once per
        version of the releases (it names every one) and base URL."""
        repository = self.api.repository_name(request)
        await self.api.known(repository)
        views, version = await self.api.versioned_views(repository, False)
        links = self.api.links(request)
        return await self.ctx.documents.get(
            version, kind, f"{links.root} {links.repository}",
            lambda: build(repository, views, links), encode=bytes,
        )  # fmt: skip

    async def feed(self, request: Request) -> Response:
        """The atom feed of the releases below the root."""
        body, etag = await self.published(
            request, "feed",
            lambda repository, views, links: feeds.releases_feed(
                repository, [v for v in views if v.key], links
            ),
        )  # fmt: skip
        return cached_response(request, body, etag, "application/atom+xml")

    async def list_page(self, request: Request) -> Response:
        """The repository's releases, newest first (for the default repository, its root
        release too, which links to /packages)."""
        body, etag = await self.published(
            request, "releases page",
            lambda repository, views, links: page_releases.render_release_list(
                repository, release_rows(views, links), base_url=links.root,
                api_url=f"{links.root}/repos/{links.repository}",
            ).encode(),
        )  # fmt: skip
        response = cached_response(request, body, etag, "text/html")
        response.headers.update(page.PAGE_HEADERS)
        return response

    def routes(self) -> list[BaseRoute]:
        return [
            Route(FEED, self.feed, methods=["GET", "HEAD"]),
            Route(LIST, self.list_page, methods=["GET", "HEAD"]),
            Route(PAGE, self.page, methods=["GET", "HEAD"]),
            Route(LATEST, self.latest, methods=["GET", "HEAD"]),
            Route(DOWNLOAD, self.get, methods=["GET", "HEAD"]),
            Route(DOWNLOAD, self.put, methods=["PUT"]),
            Route(DOWNLOAD, self.delete, methods=["DELETE"]),
        ]


def last_segment(request: Request) -> str:
    """The last path segment, percent-decoded strictly from the raw path (the router's
    own decoding turns bytes that are not UTF-8 into U+FFFD), then checked."""
    raw = (request.scope.get("raw_path") or b"").split(b"?", 1)[0]
    if not raw:
        return check_name(request.path_params["name"])
    try:
        return check_name(unquote_to_bytes(raw.rsplit(b"/", 1)[-1]).decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidName("Invalid file name: it is not valid UTF-8.") from None
