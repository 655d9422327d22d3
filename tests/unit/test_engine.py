"""The Hypercorn internals this server still relies on, checked loudly.

pyproject.toml bounds Hypercorn (<0.19) because asgi.py tunes ``MAX_RECV``, a module
constant of its asyncio TCP server. If a release renames it or stops reading with it,
these fail and say so, instead of the tuning silently doing nothing.
"""

from __future__ import annotations

import inspect
import socket

import hypercorn.asyncio.tcp_server as tcp_server
from hypercorn.protocol.h11 import H11Protocol

from release_server import engine
from release_server.asgi import create_app
from release_server.config import Settings
from release_server.engine import SOCKET_READ_SIZE, ServerConfig


def test_hypercorn_reads_sockets_with_max_recv() -> None:
    assert isinstance(tcp_server.MAX_RECV, int), "hypercorn moved MAX_RECV"
    source = inspect.getsource(tcp_server.TCPServer)
    assert "read(MAX_RECV)" in source, "hypercorn no longer reads with MAX_RECV"


def test_create_app_raises_the_socket_read_size(tmp_path) -> None:
    create_app(Settings(storage_path=str(tmp_path)))
    assert tcp_server.MAX_RECV == SOCKET_READ_SIZE


def test_h2c_is_refused_through_the_protocol_check_hypercorn_calls() -> None:
    source = inspect.getsource(H11Protocol)
    assert "await self._check_protocol(event)" in source, "hypercorn moved its h2c check"
    engine.tune(h2c=True)
    assert H11Protocol._check_protocol is engine._check_protocol
    engine.tune(h2c=False)
    assert H11Protocol._check_protocol is engine._http11_only


def test_listening_sockets_carry_the_user_timeout() -> None:
    """Through Config.create_sockets, Hypercorn's public hook for making its sockets."""
    config = ServerConfig()
    config.bind = ["127.0.0.1:0"]
    config.user_timeout_ms = 4321
    sockets = config.create_sockets()
    try:
        [sock] = sockets.insecure_sockets
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 4321
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()
