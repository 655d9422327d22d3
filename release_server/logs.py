"""JSON log lines on stdout, the access line of each request among them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import quote, quote_plus

from starlette.types import Scope

#: A word of a log line that could be a token (16+ printable ASCII characters, split at the
#: characters that separate the parts of a URL or of a JSON line).
_WORD = re.compile(r"[^\s\"/?&=,:\\]{16,}")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# ASCII only: U+2028, NEL and terminal controls in a path must neither split the line for
# splitlines() readers nor reach a terminal raw.
_ENCODER = json.JSONEncoder(ensure_ascii=True, default=str)
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def head(when: datetime, level: str, message: str, logger: str) -> dict[str, object]:
    """The fields every line begins with."""
    return {
        "ts": when.isoformat(timespec="milliseconds"),
        "level": level,
        "msg": message,
        "logger": logger,
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, msg, logger, and any ``extra`` fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.digests: frozenset[bytes] = frozenset()
        self.redact(secrets)

    def redact(self, secrets: Iterable[str], digests: Iterable[bytes] = ()) -> None:
        """Replace ``secrets`` too wherever they appear in a line from now on, and every
        word whose sha256 is one of ``digests`` (tokens the server only knows hashed)."""
        self.digests |= frozenset(digests)
        # Too short a secret would redact ordinary words; such tokens are never logged anyway.
        # A token a client put in a URL is logged percent-encoded: redact that form too.
        kept = [secret for secret in secrets if len(secret) >= 8]
        forms = {
            form for secret in kept for form in (secret, quote(secret, safe=""), quote_plus(secret))
        }
        self.secrets = tuple(sorted(forms | set(self.secrets), key=len, reverse=True))

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        entry = head(when, record.levelname.lower(), record.getMessage(), record.name)
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        fields = entry.pop("fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return self.line(entry)

    def line(self, entry: dict[str, object]) -> str:
        """``entry`` as one JSON line, with every secret redacted."""
        line = _ENCODER.encode(entry)
        for secret in self.secrets:
            line = line.replace(secret, "[redacted]")
        if self.digests:
            line = _WORD.sub(self._hashed, line)
        return line

    def _hashed(self, word: re.Match[str]) -> str:
        digest = hashlib.sha256(word.group().encode()).digest()
        return "[redacted]" if digest in self.digests else word.group()


class JsonLineHandler(logging.StreamHandler[TextIO]):
    """Writes JSON lines to stdout. Access lines are gathered and written once per turn of
    the event loop, so under load one write carries every request that ended in that turn
    (a write and a flush per request were a fifth of a 304's cost). Any other record first
    writes what is gathered, so lines keep their order."""

    #: Gathered lines written at once beyond this many, even within one turn.
    MAX_PENDING = 256

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def write_soon(self, line: str) -> None:
        """Write ``line`` at the end of this turn of the running loop (now, without one)."""
        with self.lock or contextlib.nullcontext():
            self._pending.append(line)
            count = len(self._pending)
        if count >= self.MAX_PENDING:
            self.flush()
        elif count == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._write_pending()
            super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        self._write_pending()  # Handler.handle holds the lock
        super().emit(record)

    def _write_pending(self) -> None:
        if self._pending:
            lines = "".join(self._pending)
            self._pending.clear()
            # A closed stdout: as logging does, never fail a request over its log line.
            with contextlib.suppress(OSError, ValueError):
                self.stream.write(lines)


def redact(secrets: Iterable[str], digests: Iterable[bytes] = ()) -> None:
    """Keep tokens read after start-up out of every log line from now on: ``secrets`` as
    they are, and the tokens of ``digests`` (their sha256) wherever one is a word."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.redact(secrets, digests)


def configure_logging(
    level: str, secrets: tuple[str, ...] = (), one_of_several_workers: bool = False
) -> None:
    """Send every logger (ours and hypercorn's) to stdout as JSON lines."""
    handler = JsonLineHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Hypercorn gives its loggers plain-text handlers of its own, possibly after this runs
    # (under `hypercorn app:app`): a filter on the logger itself outlives that, hands each
    # record to the JSON handler, and stops it there.
    for name in ("hypercorn.error", "hypercorn.access"):
        engine_logger = logging.getLogger(name)
        engine_logger.filters = [_Redirect(handler, quiet_start=one_of_several_workers)]


class _Redirect(logging.Filter):
    """Send a record to ``handler`` instead of the logger's own handlers. In one of several
    workers, Hypercorn's "Running on" is dropped: the CLI says it once for all of them."""

    def __init__(self, handler: logging.Handler, quiet_start: bool) -> None:
        super().__init__()
        self.handler = handler
        self.quiet_start = quiet_start

    def filter(self, record: logging.LogRecord) -> bool:
        quiet = self.quiet_start and record.getMessage().startswith("Running on")
        if not quiet and record.levelno >= logging.getLogger().level:
            self.handler.handle(record)
        return False


access_logger = logging.getLogger("release_server.access")


def log_event(
    logger: logging.Logger, message: str, level: int = logging.INFO, **fields: object
) -> None:
    """Log ``message`` with structured fields (any names, ``name`` included). The record
    is made directly: ``Logger.log`` would walk the stack for a source line never shown,
    a fifth of the cost of an access line."""
    _log(logger, level, message, fields)


def _log(logger: logging.Logger, level: int, message: str, fields: dict[str, object]) -> None:
    if logger.isEnabledFor(level):
        extra = {"fields": fields}
        logger.handle(logger.makeRecord(logger.name, level, "", 0, message, (), None, extra=extra))


def log_request(fields: dict[str, object]) -> None:
    """The access line: what ``log_event(access_logger, "request", **fields)`` writes,
    without a LogRecord and the handler chain (a third of the server's own CPU for a 304)
    when the handler of ``configure_logging`` is the only one; else through logging."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    handlers = logging.getLogger().handlers
    handler = handlers[0] if len(handlers) == 1 else None
    if (
        not isinstance(handler, JsonLineHandler)
        or not isinstance(handler.formatter, JsonFormatter)
        or access_logger.handlers
    ):
        _log(access_logger, logging.INFO, "request", fields)
        return
    entry = head(datetime.now(UTC), "info", "request", access_logger.name)
    entry.update(fields)
    handler.write_soon(handler.formatter.line(entry) + handler.terminator)


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a sane one, else a new one."""
    key: bytes
    value: bytes
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = value.decode("latin-1")[:128]
            if text and set(text) <= _REQUEST_ID_OK:
                return text
    # 128 random bits, as uuid4().hex has, without its system call (a request id is a
    # name, not a secret; the random module is seeded again in each forked worker)
    return f"{random.getrandbits(128):032x}"


def access_fields(
    scope: Scope, status: int, sent: int, seconds: float, trust_proxy: bool
) -> dict[str, object]:
    """The fields of a request's access line, in their order."""
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else None
    # A trusted proxy names the client: the last X-Forwarded-For hop (the one it appended;
    # earlier hops come from the client and may be anything).
    forwarded = _header(scope, b"x-forwarded-for").rsplit(",", 1)[-1].strip() if trust_proxy else ""
    return dict(
        method=scope["method"],
        path=scope["path"],
        status=status,
        bytes=sent,
        duration_ms=round(seconds * 1000, 2),
        client=forwarded[:100] or peer,
        peer=peer,
        query=scope.get("query_string", b"").decode("latin-1")[:1000] or None,
        user_agent=_header(scope, b"user-agent")[:300] or None,
        request_id=scope.get("state", {}).get("request_id"),
    )


def _header(scope: Scope, name: bytes) -> str:
    """All values of one request header, joined as HTTP joins them."""
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == name]
    return ", ".join(values)
