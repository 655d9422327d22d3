"""Liveness, readiness, metrics, the contract, and the small fixed answers."""

from __future__ import annotations

import importlib.resources

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from .context import Context

AVATAR = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect width="16" height="16" rx="3" fill="#2f6feb"/>'
    b'<path d="M4 9l4-5 4 5H9v3H7V9z" fill="#fff"/></svg>'
)


class Health:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.openapi = (
            importlib.resources.files("release_server").joinpath("openapi.yaml").read_bytes()
        )

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    async def readyz(self, request: Request) -> Response:
        problem = await self.ctx.storage.problem()
        if problem:
            return PlainTextResponse(problem, status_code=503)
        skipped = self.ctx.storage.skipped_entries()
        notes = "".join(f"\nskipped {key!r}: {why}" for key, why in sorted(skipped.items()))
        return PlainTextResponse("OK" + notes)

    async def metrics(self, request: Request) -> Response:
        self.ctx.access.check_metrics(request.headers.get("authorization"))
        listing = await self.ctx.listing()
        text = await to_thread.run_sync(self.ctx.metrics.render, listing.packages)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def openapi_yaml(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/yaml")

    async def avatar(self, request: Request) -> Response:
        return Response(AVATAR, media_type="image/svg+xml")

    def routes(self) -> list[BaseRoute]:
        read = ["GET", "HEAD"]
        return [
            Route("/healthz", self.healthz, methods=read),
            Route("/health", self.healthz, methods=read),
            Route("/readyz", self.readyz, methods=read),
            Route("/openapi.yaml", self.openapi_yaml),
            Route("/metrics", self.metrics),
            Route("/avatar.svg", self.avatar),
        ]
