"""Starlette's router, matching each request only against the routes that can match it.

Starlette tries every route in order with a regular expression each; with ~55 routes a
path served by the last ones (``/{owner}/{repo}/releases/download/...``) paid for ~50
failed matches per request. A route whose first path segment is literal can only match a
path with that first segment, so the routes are grouped by it: a request is matched, in
the original order, against its segment's routes and those whose first segment is a
parameter. Which route answers is exactly what Starlette would pick. Paths that only lack
(or have an extra) trailing slash are not redirected here: asgi.http_error does that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send


def first_segment(path: str) -> str:
    """``latest`` for ``/latest/download/x``, ``""`` for ``/``. One trailing newline is
    dropped first, as the routes' ``$`` ignores it (``/latest\n`` is routed to /latest)."""
    path = path.removesuffix("\n")
    return path.split("/", 2)[1] if path.startswith("/") else ""


class SegmentRouter(Router):
    """A Router that looks up candidates by the first path segment before matching."""

    def __init__(self, routes: Sequence[BaseRoute], **options: Any) -> None:
        super().__init__(list(routes), redirect_slashes=False, **options)
        literal: dict[str, list[int]] = {}
        wild: list[int] = []
        for index, route in enumerate(self.routes):
            segment = first_segment(route.path) if isinstance(route, Route) else "{"
            (wild if "{" in segment else literal.setdefault(segment, [])).append(index)
        self._wild = self._part(wild)
        self._by_segment = {
            segment: self._part(sorted(indexes + wild)) for segment, indexes in literal.items()
        }

    def _part(self, indexes: list[int]) -> Router:
        return Router([self.routes[i] for i in indexes], redirect_slashes=False,
                      default=self.default)  # fmt: skip

    def candidates(self, path: str) -> Router:
        """The routes that may match ``path``, in their original order, as a Router."""
        return self._by_segment.get(first_segment(path), self._wild)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        await self.candidates(scope["path"]).app(scope, receive, send)
