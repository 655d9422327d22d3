"""Build the ASGI application from settings; ``app`` is what hypercorn workers import."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator

import hypercorn.asyncio.tcp_server as tcp_server
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .config import Settings, load_settings
from .http import error
from .logs import AccessLogMiddleware, configure_logging, log_event
from .routes import Api, routes
from .storage import Storage

logger = logging.getLogger("release_server")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, in this API's JSON error shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error(404, f"Nothing at {request.url.path}; see /openapi.yaml for the routes.")
    return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))


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
    storage = Storage(settings.storage)
    storage.prepare()
    api = Api(settings, storage)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        removed = storage.remove_stale_temp_files()
        if removed:
            log_event(logger, "removed stale temp files", names=removed)
        if not settings.auth_token:
            logger.warning("no AUTH_TOKEN is configured: uploads and deletes answer 401")
        # Hash files copied in by hand now rather than on the first request.
        threading.Thread(target=storage.listing, daemon=True).start()
        yield

    app = Starlette(
        routes=routes(api),
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.add_middleware(AccessLogMiddleware, observe=api.metrics.observe_request)
    return app
