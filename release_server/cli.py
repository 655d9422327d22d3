"""The command line: flags -> settings -> hypercorn; and ``healthcheck`` for the image."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from hypercorn.config import Config, Sockets

from . import __version__
from .config import ConfigError, Settings, load_settings, settings_to_env
from .storage import DirectoryStorage

DESCRIPTION = """\
Serve release packages: upload with a bearer token, find the newest through a
GitHub-Releases-compatible /latest, download, and browse /packages.
Every flag has an environment variable (in brackets); see the README."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="release-server",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"release-server {__version__}")
    parser.add_argument("--host", help="address to listen on [HOST] (default 127.0.0.1)")
    parser.add_argument("--port", help="port to listen on [PORT] (default 8000)")
    parser.add_argument(
        "--storage", dest="storage_path", help="package directory [STORAGE_PATH] (default ./data)"
    )
    parser.add_argument(
        "--max-packages", help="packages kept by retention, 0 = unlimited [MAX_PACKAGES] (10)"
    )
    parser.add_argument(
        "--max-upload-size", help="largest upload, e.g. 512M, 0 = unlimited [MAX_UPLOAD_SIZE] (2G)"
    )
    parser.add_argument("--workers", help="worker processes [WORKERS] (default 1)")
    parser.add_argument("--certfile", help="TLS certificate (PEM) [CERTFILE]")
    parser.add_argument("--keyfile", help="TLS private key (PEM) [KEYFILE]")
    parser.add_argument(
        "--log-level", help="debug, info, warning, error [LOG_LEVEL] (default info)"
    )
    commands = parser.add_subparsers(dest="command", metavar="{healthcheck}")
    check = commands.add_parser(
        "healthcheck", help="exit 0 if the server answers /healthz, else 1 (for containers)"
    )
    check.add_argument("--url", help="URL to check (default http://127.0.0.1:$PORT/healthz)")
    return parser


def healthcheck(url: str | None, settings: Settings) -> int:
    """GET the health URL; 0 when it answers 200. Needs no curl (distroless image)."""
    scheme = "https" if settings.certfile else "http"
    url = url or f"{scheme}://127.0.0.1:{settings.port}/healthz"
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            healthy = response.status == 200
    except (urllib.error.URLError, OSError, ValueError) as problem:
        print(f"release-server healthcheck: {url}: {problem}", file=sys.stderr)
        return 1
    print(f"release-server healthcheck: {url}: {'OK' if healthy else 'unhealthy'}")
    return 0 if healthy else 1


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
        return sockets


def serve(settings: Settings) -> int:
    """Run hypercorn in this process (one worker) or with worker processes."""
    from hypercorn.run import run

    os.environ.update(settings_to_env(settings))
    os.environ.pop("CONFIG_PATH", None)
    os.environ.pop("AUTH_TOKEN_FILE", None)
    config = ServerConfig()
    config.user_timeout_ms = int(settings.read_timeout * 1000)
    config.application_path = "release_server.asgi:create_app()"
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.workers = 0 if settings.workers == 1 else settings.workers
    config.backlog = 2048  # hypercorn's 100 makes a burst of clients wait for SYN retries
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


def fail(message: str) -> int:
    print(f"release-server: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "url")}
    try:
        settings = load_settings(flags)
    except ConfigError as problem:
        return fail(str(problem))
    if args.command == "healthcheck":
        return healthcheck(args.url, settings)
    for setting, path in (("--certfile", settings.certfile), ("--keyfile", settings.keyfile)):
        if path and not os.path.isfile(path):
            return fail(f"{setting}: no such file {path!r}")
    try:
        DirectoryStorage(settings.storage).prepare()
    except OSError as problem:
        reason = problem.strerror or str(problem)
        return fail(f"STORAGE_PATH: {str(settings.storage)!r} is not usable: {reason}")
    try:
        return serve(settings)
    except OSError as problem:
        if problem.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            return fail(f"--port/--host: cannot listen on {settings.host}:{settings.port}: "
                        f"{problem.strerror}")  # fmt: skip
        return fail(f"the server could not start: {problem}")
