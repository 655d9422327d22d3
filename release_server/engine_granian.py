"""Granian, the fast engine (Rust, binary wheels; ``release-server[fast]``): how the CLI runs
it with the same settings as Hypercorn, its own logs sent through ours.

Granian always serves from worker processes (one per WORKERS) that it forks from this one;
each builds the app with ``create_app()`` below from the environment, as Hypercorn's do.
Granian's internals are touched in this module only (pyproject.toml bounds its version).
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import logging
import multiprocessing
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .config import Settings

if TYPE_CHECKING:
    from granian._granian import WorkerSignal

BACKLOG = 2048
#: Seconds a worker gets to answer the requests it cut off before it is killed.
KILL_AFTER_CUT_OFF = 3.0
logger = logging.getLogger("_granian")
#: Granian's own loggers: sent to the root logger, which logs.configure_logging makes JSON.
LOGGERS = ("_granian", "granian.access")
#: Replaces Granian's plain-text logging config (its handlers and formatters).
LOG_CONFIG: dict[str, Any] = {
    "formatters": {},
    "handlers": {},
    "loggers": {name: {"handlers": [], "propagate": True} for name in LOGGERS},
}


def available() -> bool:
    """Whether Granian can be imported (never in the pyz, which is pure Python)."""
    try:
        return importlib.util.find_spec("granian") is not None
    except (ImportError, ValueError):
        return False


def serve(settings: Settings) -> int:
    """Run Granian until SIGTERM/SIGINT; in-flight requests get GRACEFUL_TIMEOUT."""
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    server_class = _server_class()
    options: dict[str, Any] = {}
    if settings.certfile:
        options.update(ssl_cert=Path(settings.certfile), ssl_key=Path(settings.keyfile))
        options.update(ssl_protocol_min=SSLProtocols.tls12)  # as Hypercorn allows
    server = server_class(
        "release_server.engine_granian:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        backlog=BACKLOG,
        # H2C off: HTTP/1.1 only, so a proxy in front always sees every request (engine.py)
        http=HTTPModes.auto if settings.h2c or settings.certfile else HTTPModes.http1,
        http1_settings=HTTP1Settings(
            # How long a connection may take to send a request's headers, idle keep-alive
            # connections included (slowloris, KEEP_ALIVE_TIMEOUT).
            header_read_timeout=max(1, int(settings.keep_alive_timeout * 1000)),
        ),
        websockets=False,
        log_level=LogLevels(settings.log_level),
        log_dictconfig=LOG_CONFIG,
        # The workers cut requests off themselves after GRACEFUL_TIMEOUT (CutOff), answering
        # 503; they are killed only if that does not end them.
        workers_kill_timeout=settings.graceful_timeout + KILL_AFTER_CUT_OFF,
        **options,
    )
    server.user_timeout_ms = int(settings.read_timeout * 1000)
    try:
        server.serve()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    return 0


def create_app() -> ASGIApp:
    """The app of one Granian worker: ``asgi.create_app()``, whose requests still running
    GRACEFUL_TIMEOUT after SIGTERM are cancelled (503 with Retry-After, failsafe.py), as
    Hypercorn does; Granian itself would wait for them until the worker is killed."""
    from .asgi import create_app as create

    die_with_parent()
    app = create()
    cut_off = CutOff(app)
    _on_stop(
        lambda loop: loop.call_later(
            app.state.context.settings.graceful_timeout, cut_off.cancel_all
        )
    )
    return cut_off


class CutOff:
    """Remembers the tasks of the requests in flight, to cancel them when called."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tasks: set[asyncio.Task[Any]] = set()
        self.cut_off = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or task is None:
            await self.app(scope, receive, send)
            return
        self.tasks.add(task)
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if not self.cut_off:
                raise
            # Answered (failsafe.py) and logged; Granian would log a traceback too.
        finally:
            self.tasks.discard(task)

    def cancel_all(self) -> None:
        self.cut_off = True
        for task in list(self.tasks):
            task.cancel()


def _on_stop(callback: Any) -> None:
    """Call ``callback(loop)`` too when the worker is told to stop (SIGTERM, SIGINT):
    Granian's workers install their signal handlers after the app is built."""
    import granian._signals as granian_signals

    install: Any = granian_signals.set_loop_signals

    def set_loop_signals(loop: asyncio.AbstractEventLoop) -> WorkerSignal:
        event: WorkerSignal = install(loop)

        def stop() -> None:
            event.set()
            callback(loop)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        return event

    granian_signals.set_loop_signals = set_loop_signals


def die_with_parent() -> None:
    """In a worker: be killed when the main process dies. Hypercorn serves one worker in
    its main process; Granian's workers are children, which a SIGKILL of the main process
    (an OOM kill, say) would leave running, holding the port and finishing uploads."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent.pid:  # it died before prctl
        os._exit(1)


def _server_class() -> Any:
    """Granian's process server, its listening socket made once here (not once per worker,
    SO_REUSEPORT) so TCP_USER_TIMEOUT can be set on it: accepted connections inherit it,
    and the kernel drops a client that stops reading a download for READ_TIMEOUT."""
    from granian._granian import ListenerSpec
    from granian.server import MPServer

    class UserTimeoutServer(MPServer):
        user_timeout_ms = 60_000

        def _init_shared_socket(self) -> None:
            holder = ListenerSpec(self.bind_addr, self.bind_port, self.backlog).build()
            fd = holder.get_fd()
            if hasattr(socket, "TCP_USER_TIMEOUT"):
                with socket.socket(fileno=os.dup(fd)) as listener:
                    listener.setsockopt(
                        socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, self.user_timeout_ms
                    )
            self._ssp, self._sfd = None, fd
            self._shd = holder  # type: ignore[assignment]
            self._sso = socket.socket(fileno=fd)
            self._sso.set_inheritable(True)
            # The line Hypercorn writes, so operators find the same line on both engines.
            scheme = "https" if self.ssl_ctx[0] else "http"
            count = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
            logger.info(f"Running on {scheme}://{self._bind_addr_fmt} ({count})")

    return UserTimeoutServer
