"""What is published: ``/packages`` (JSON or the page) and ``/latest`` (GitHub's shape)."""

from __future__ import annotations

from collections.abc import Sequence

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .. import github, page
from ..documents import cached_response
from ..errors import NotFound, Unprocessable
from ..http import VARY_BASE_URL, prefers_html
from ..package import Package, package_document
from ..versions import stable_name
from .assets import asset_name
from .context import Context


class Listings:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def packages(self, request: Request) -> Response:
        html = wants_html(request)
        listing = await self.ctx.listing()
        links = self.ctx.links(request)
        vary = f"Accept, {VARY_BASE_URL}"
        if html:
            html_page = await to_thread.run_sync(
                lambda: page.render_page(listing.packages, base_url=links.root)
            )
            return Response(
                html_page,
                media_type="text/html",
                headers={**page.PAGE_HEADERS, "vary": vary},
            )
        body, etag = await self.ctx.documents.get(
            listing.version,
            "packages",
            links.root,
            lambda: [package_document(p, links.download(p.name)) for p in listing.packages],
        )
        return cached_response(request, body, etag, "application/json", vary)

    async def latest(self, request: Request) -> Response:
        return await release_response(self.ctx, request, self.ctx.links(request))

    async def latest_download(self, request: Request) -> Response:
        """A stable link: the file of that name, or the newest file of the family that
        name stands for with its version left out (``tool.zip`` -> ``tool-1.3.zip``);
        a redirect to the file's own URL, as GitHub's ``/releases/latest/download/``."""
        wanted = asset_name(request, "/latest/download/", "name")
        return await root_latest_download(self.ctx, request, wanted)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/packages", self.packages),
            Route("/latest", self.latest),
            Route("/latest/download/{name:anytext}", self.latest_download, methods=["GET", "HEAD"]),
        ]


def wants_html(request: Request) -> bool:
    """``?format=html``, or no ``?format`` and an Accept that ranks HTML above JSON
    (browsers); ``?format=json`` and everything else get JSON. 422 for another format."""
    wanted = request.query_params.get("format")
    if wanted not in (None, "json", "html"):
        raise Unprocessable("Unknown format: use ?format=json or ?format=html.")
    return wanted == "html" or (wanted is None and prefers_html(request.headers.get("accept")))


def newest_matching(packages: Sequence[Package], wanted: str) -> str | None:
    """The package called ``wanted``, else the newest whose name without its version is
    ``wanted`` (``packages`` are newest first)."""
    if any(package.name == wanted for package in packages):
        return wanted
    return next((p.name for p in packages if stable_name(p.name) == wanted), None)


async def root_latest_download(ctx: Context, request: Request, wanted: str) -> Response:
    """302 to the root release's file ``wanted``, or the newest of the family it stands for."""
    listing = await ctx.listing()
    found = newest_matching(listing.packages, wanted)
    if found is None:
        raise NotFound(
            f"The root release has no package named {wanted!r}, and no family of versioned "
            "names it stands for (e.g. tool.zip for tool-1.2.zip); see /packages."
        )
    return RedirectResponse(ctx.links(request).download(found), 302)


async def release_response(ctx: Context, request: Request, links: github.Links) -> Response:
    """The root release as GitHub shapes it, for the links of this request."""
    listing = await ctx.listing()
    body, etag = await ctx.documents.get(
        listing.version,
        "release",
        f"{links.api} {links.repository}",
        lambda: ctx.assets.release_json(
            github.root_view(listing.packages, listing.changed_ns), links
        ),
        encode=bytes,
    )
    return cached_response(request, body, etag, "application/json")
