"""JSON log lines on stdout, and the access-log middleware that writes one per request."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, msg, logger, and any ``extra`` fields."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        # Too short a secret would redact ordinary words; such tokens are never logged anyway.
        self.secrets = tuple(secret for secret in secrets if len(secret) >= 8)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        fields = entry.pop("fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        line = json.dumps(entry, ensure_ascii=False, default=str)
        for secret in self.secrets:
            line = line.replace(secret, "[redacted]")
        return line


def configure_logging(level: str, secrets: tuple[str, ...] = ()) -> None:
    """Send every logger (ours and hypercorn's) to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


access_logger = logging.getLogger("release_server.access")


def log_event(
    logger: logging.Logger, message: str, level: int = logging.INFO, **fields: object
) -> None:
    """Log ``message`` with structured fields (any names, ``name`` included)."""
    logger.log(level, message, extra={"fields": fields})


def _request_id(scope: Scope) -> str:
    key: bytes
    value: bytes
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = value.decode("latin-1")[:128]
            if text and set(text) <= _REQUEST_ID_OK:
                return text
    return uuid.uuid4().hex


#: Called after each request with method, route template, status, bytes sent and seconds.
Observer = Callable[[str, str, int, int, float], None]


class AccessLogMiddleware:
    """Logs method, path, status, bytes, duration and client of each request, and echoes
    (or creates) its ``X-Request-ID``. Pure ASGI so streaming bodies are not buffered."""

    def __init__(self, app: ASGIApp, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0
        sent = 0

        async def send_logged(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            seconds = time.perf_counter() - started
            client = scope.get("client")
            if self.observe is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.observe(scope["method"], route, status or 500, sent, seconds)
            log_event(
                access_logger,
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status or 500,
                bytes=sent,
                duration_ms=round(seconds * 1000, 2),
                client=f"{client[0]}:{client[1]}" if client else None,
                request_id=request_id,
            )
