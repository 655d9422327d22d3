"""Build the ASGI application from settings; ``app`` is what hypercorn workers import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator
from pathlib import Path

from anyio import to_thread
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send

from .config import Settings, load_settings
from .endpoints import Context, routes
from .errors import HTTPError
from .front import Front, Refused
from .http import AnswerBeforeBody, error
from .logs import configure_logging, log_event
from .metrics import SHARE_ENV, Metrics
from .routing import SegmentRouter
from .storage import open_storage

logger = logging.getLogger("release_server")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, in this API's JSON error shape; a path that only
    lacks a trailing slash is redirected, built from the same base URL as the documents
    (PUBLIC_URL, or the trusted request), never from a Host nobody checked."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        path = request.url.path
        if path.endswith("/") and path != "/" and routes_path(request, path.rstrip("/")):
            ctx: Context = request.app.state.context
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(ctx.base(request) + path.rstrip("/") + query, 307)
        return error(404, f"Nothing at {path}; see /openapi.yaml for the routes.")
    return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))


def routes_path(request: Request, path: str) -> bool:
    """Whether some route matches ``path`` (for any method)."""
    scope = {**request.scope, "path": path}
    return any(route.matches(scope)[0] != Match.NONE for route in request.app.router.routes)


async def refusal(request: Request, exc: Exception) -> Response:
    """Any HTTPError as this API's JSON error. An upload refused before its body was read
    to the end is answered while the rest is drained, then the connection is closed."""
    assert isinstance(exc, HTTPError)
    response = error(exc.status, exc.message, exc.headers, exc.extra)
    body = request.scope.get("state", {}).get("upload_body")
    if body is not None and not body.complete:
        return AnswerBeforeBody(response)
    return response


#: How an HTTPError and an HTTPException are answered, inside an endpoint (Starlette's
#: wrapper of each reads them from the scope) or outside one (the front).
HANDLERS: dict[type[Exception], Refused] = {HTTPError: refusal, HTTPException: http_error}
EXCEPTION_HANDLERS: tuple[dict[type[Exception], Refused], dict[int, Refused]] = (HANDLERS, {})


async def refused(request: Request, exc: Exception) -> Response:
    """The answer to an HTTPError or HTTPException raised outside an endpoint."""
    handler = next(handler for kind, handler in HANDLERS.items() if isinstance(exc, kind))
    return await handler(request, exc)


class App:
    """The application: the front (front.py), then the router. Not a Starlette app: its
    two exception layers would add a wrapper around every message that the front makes
    unnecessary. Endpoints reach it as ``request.app`` (``state.context``, ``router``)."""

    def __init__(self, router: Router, front: Front) -> None:
        self.router = router
        self.front = front
        self.state = State()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if scope["type"] == "lifespan":
            await self.router(scope, receive, send)
            return
        scope["starlette.exception_handlers"] = EXCEPTION_HANDLERS
        await self.front(scope, receive, send)


async def share_metrics(metrics: Metrics) -> None:
    """Write this worker's counters for the others once a second (when they changed)."""
    while metrics.share is not None:
        await asyncio.sleep(1)
        await to_thread.run_sync(metrics.flush)


def create_app(settings: Settings | None = None) -> App:
    """The application for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    if settings.engine != "granian":  # Hypercorn's internals, in its own worker processes
        from . import engine

        engine.tune(h2c=settings.h2c)
    in_worker = settings.workers > 1 and multiprocessing.parent_process() is not None
    configure_logging(settings.log_level, (settings.auth_token,), one_of_several_workers=in_worker)
    storage = open_storage(settings.storage_url, settings.storage)
    storage.prepare()
    share = os.environ.get(SHARE_ENV)
    ctx = Context(settings, storage, Metrics(Path(share) if share else None))

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        removed = storage.remove_stale_uploads()
        if removed:
            log_event(logger, "removed stale temp files", names=removed)
        if not (settings.auth_token or settings.tokens_file):
            logger.warning("no AUTH_TOKEN or TOKENS_FILE: uploads and deletes answer 401")
        # Hash files copied in by hand now rather than on the first request.
        warm_up = asyncio.ensure_future(storage.listing())
        sharing = asyncio.ensure_future(share_metrics(ctx.metrics))
        yield
        warm_up.cancel()
        sharing.cancel()
        await to_thread.run_sync(ctx.metrics.flush)
        await storage.close()

    router = SegmentRouter(routes(ctx), lifespan=lifespan)  # http_error redirects slashes
    front = Front(
        router,
        refused=refused,
        storage_problem=storage.problem,
        observe=ctx.metrics.observe_request,
        allowed_hosts=settings.allowed_hosts,
        trust_proxy=settings.trust_proxy,
    )
    app = App(router, front)
    app.state.context = ctx
    return app
