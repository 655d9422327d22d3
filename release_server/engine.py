"""Hypercorn, the embedded engine (pure Python, in the pyz): how the CLI runs it, its typed
config and the few internals tuned here.

Internals are touched in this module only, and tests/unit/test_engine.py fails loudly if a
Hypercorn release moves them (pyproject.toml bounds the version for the same reason).
"""

from __future__ import annotations

import logging
import socket

import hypercorn.asyncio.tcp_server as tcp_server
from hypercorn.config import Config, Sockets
from hypercorn.protocol.h11 import H11Protocol

from .config import Settings

#: Connections the kernel queues before the app accepts them. Hypercorn's 100 makes a burst
#: of clients wait for SYN retries.
BACKLOG = 2048

#: Bytes hypercorn reads from a socket at once. Its 64 KiB means some 16,000 trips per GiB
#: uploaded through h11 and the app; larger reads double upload throughput. At most
#: max_app_queue_size (10) such chunks wait per connection.
SOCKET_READ_SIZE = 256 * 1024

logger = logging.getLogger("hypercorn.error")
_check_protocol = H11Protocol._check_protocol


async def _http11_only(self: H11Protocol, event: object) -> None:
    """Hypercorn switches a plain-HTTP connection to HTTP/2 on ``Upgrade: h2c`` or the
    HTTP/2 preface; a proxy in front sees only the first request, so rules it applies to
    paths (blocking /metrics, say) can be walked past. Ignore both: answer in HTTP/1.1."""


def tune(h2c: bool) -> None:
    """Apply the engine settings in this process (each worker process calls it)."""
    tcp_server.MAX_RECV = SOCKET_READ_SIZE
    H11Protocol._check_protocol = _check_protocol if h2c else _http11_only  # type: ignore[method-assign]


class ServerConfig(Config):
    """Hypercorn's config, plus TCP_USER_TIMEOUT on the listening sockets (accepted
    connections inherit it): the kernel drops a client that stops reading a download for
    READ_TIMEOUT, which frees its connection even with unsent data still buffered."""

    user_timeout_ms = 60_000

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.user_timeout_ms)
        if self.workers > 1:  # the workers themselves stay quiet about it (logs.py)
            scheme = "https" if self.ssl_enabled else "http"
            for bind in self.bind:
                logger.info(f"Running on {scheme}://{bind} ({self.workers} workers)")
        return sockets


def serve(settings: Settings) -> int:
    """Run Hypercorn in this process (one worker) or with worker processes."""
    from hypercorn.run import run

    config = ServerConfig()
    config.user_timeout_ms = int(settings.read_timeout * 1000)
    config.application_path = "release_server.asgi:create_app()"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.workers = 0 if settings.workers == 1 else settings.workers
    config.backlog = BACKLOG
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = settings.keep_alive_timeout
    # READ_TIMEOUT is enforced by the app on request bodies (uploads.Body) and on
    # downloads nobody reads (download.FileDownload, ServerConfig). Hypercorn's read
    # timeout would also cut off downloads that simply take longer than it.
    config.read_timeout = None
    config.graceful_timeout = settings.graceful_timeout
    config.include_server_header = False
    if settings.certfile:
        config.certfile = settings.certfile
        config.keyfile = settings.keyfile
    return run(config)
