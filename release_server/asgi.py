"""Build the ASGI application from settings; ``app`` is what hypercorn workers import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import hypercorn.asyncio.tcp_server as tcp_server
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .config import Settings, load_settings
from .endpoints import Context, routes
from .errors import HTTPError
from .http import AnswerBeforeBody, OriginForm, SecurityHeaders, error
from .logs import AccessLogMiddleware, configure_logging, log_event
from .storage import DirectoryStorage

logger = logging.getLogger("release_server")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, in this API's JSON error shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error(404, f"Nothing at {request.url.path}; see /openapi.yaml for the routes.")
    return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def refusal(request: Request, exc: Exception) -> Response:
    """Any HTTPError as this API's JSON error. An upload refused before its body was read
    to the end is answered while the rest is drained, then the connection is closed."""
    assert isinstance(exc, HTTPError)
    response = error(exc.status, exc.message, exc.headers)
    body = request.scope.get("state", {}).get("upload_body")
    if body is not None and not body.complete:
        return AnswerBeforeBody(response)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc, extra={"fields": {"path": request.url.path}})
    return error(500, "Internal error; the server log has the details.")


#: Bytes hypercorn reads from a socket at once. Its 64 KiB means some 16,000 trips per GiB
#: uploaded through h11 and the app; larger reads double upload throughput. At most
#: max_app_queue_size (10) such chunks wait per connection.
SOCKET_READ_SIZE = 256 * 1024


def create_app(settings: Settings | None = None) -> Starlette:
    """The application for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    tcp_server.MAX_RECV = SOCKET_READ_SIZE
    configure_logging(settings.log_level, secrets=(settings.auth_token,))
    storage = DirectoryStorage(settings.storage)
    storage.prepare()
    ctx = Context(settings, storage)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        removed = storage.remove_stale_uploads()
        if removed:
            log_event(logger, "removed stale temp files", names=removed)
        if not settings.auth_token:
            logger.warning("no AUTH_TOKEN is configured: uploads and deletes answer 401")
        # Hash files copied in by hand now rather than on the first request.
        warm_up = asyncio.ensure_future(storage.listing())
        yield
        warm_up.cancel()

    app = Starlette(
        routes=routes(ctx),
        lifespan=lifespan,
        exception_handlers={
            HTTPError: refusal,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLogMiddleware, observe=ctx.metrics.observe_request)
    app.add_middleware(OriginForm)
    return app
