"""What is published: ``/packages`` (JSON or the page) and ``/latest`` (GitHub's shape)."""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import github, page
from ..documents import cached_response
from ..errors import Unprocessable
from ..http import VARY_BASE_URL, prefers_html
from ..package import package_document
from .context import Context


class Listings:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def packages(self, request: Request) -> Response:
        wanted = request.query_params.get("format")
        if wanted not in (None, "json", "html"):
            raise Unprocessable("Unknown format: use ?format=json or ?format=html.")
        html = wanted == "html" or (wanted is None and prefers_html(request.headers.get("accept")))
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
            listing,
            "packages",
            links.root,
            lambda: [package_document(p, links.download(p.name)) for p in listing.packages],
        )
        return cached_response(request, body, etag, "application/json", vary)

    async def latest(self, request: Request) -> Response:
        return await release_response(self.ctx, request, self.ctx.links(request))

    def routes(self) -> list[BaseRoute]:
        return [Route("/packages", self.packages), Route("/latest", self.latest)]


async def release_response(ctx: Context, request: Request, links: github.Links) -> Response:
    """The root release as GitHub shapes it, for the links of this request."""
    listing = await ctx.listing()
    body, etag = await ctx.documents.get(
        listing,
        "release",
        f"{links.api} {links.repository}",
        lambda: github.release_document(listing.packages, links, listing.changed_ns),
    )
    return cached_response(request, body, etag, "application/json")
