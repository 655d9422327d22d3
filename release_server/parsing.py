"""Parse setting values from text; each parser raises ValueError saying what it expected."""

from __future__ import annotations

import re
from collections.abc import Callable

SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
ENGINES = ("auto", "hypercorn", "granian")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def parse_size(text: str) -> int:
    """Parse ``512M``, ``2G``, ``1048576`` (binary suffixes) into bytes."""
    match = SIZE_RE.match(text)
    if not match:
        raise ValueError(f"expected a size in bytes such as 1048576, 512M or 2G, got {text!r}")
    return int(match.group(1)) * SIZE_FACTORS[match.group(2).lower()]


def whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"expected a whole number {bound}, got {value}")
        return value

    return parse


def seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {text!r}")
    return value


def flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected 1/0, true/false, yes/no or on/off, got {text!r}")


def engine(text: str) -> str:
    if text.strip().lower() not in ENGINES:
        raise ValueError(f"expected one of {', '.join(ENGINES)}, got {text!r}")
    return text.strip().lower()


def log_level(text: str) -> str:
    if text.strip().lower() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return text.strip().lower()


def public_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if url and not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
        raise ValueError(f"expected an http(s) URL such as https://host/prefix, got {text!r}")
    return url


def repository(text: str) -> str:
    if not REPOSITORY_RE.match(text.strip()):
        raise ValueError(f"expected owner/repo, got {text!r}")
    return text.strip()


def repository_pattern(text: str) -> str:
    """``*``, ``owner/*`` or ``owner/repo`` (the target of a scope, or of PRIVATE)."""
    target = text[:-1] + "x" if text.endswith("/*") else text
    if text == "*" or REPOSITORY_RE.match(target):
        return text
    raise ValueError(f"expected '*', 'owner/*' or 'owner/repo', got {text!r}")


def private(text: str) -> tuple[str, ...]:
    """PRIVATE: 1 (every repository), 0, or which ones: ``owner/repo,owner/*``."""
    try:
        return ("*",) if flag(text) else ()
    except ValueError:
        return tuple(repository_pattern(item.strip()) for item in text.split(","))


def verbatim(text: str) -> str:
    return text


def storage_url(text: str) -> str:
    """``s3://bucket`` or ``s3://bucket/prefix`` (the S3 backend), or empty (the directory)."""
    url = text.strip()
    if url and not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/\S*)?$", url):
        raise ValueError(f"expected s3://BUCKET or s3://BUCKET/PREFIX, got {text!r}")
    if any(segment in (".", "..") for segment in url.split("/")[3:]):
        raise ValueError(f"the prefix may not have . or .. segments, got {text!r}")
    return url


#: The shortest token accepted: shorter ones are guessable, and the log redaction of
#: tokens (logs.py) needs them long enough not to match ordinary words.
MIN_TOKEN_LENGTH = 16


def token(text: str) -> str:
    token = text.strip()
    if token and not all("!" <= char <= "~" for char in token):
        raise ValueError(
            "the token must be printable ASCII without spaces (clients send it in a header)"
        )
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the token must be at least {MIN_TOKEN_LENGTH} characters long "
            "(e.g. openssl rand -hex 32)"
        )
    return token


def hosts(text: str) -> tuple[str, ...]:
    hosts = tuple(host.strip().lower() for host in text.split(",") if host.strip())
    for host in hosts:
        if len(host) > 255 or not re.match(r"^(\*\.)?[a-z0-9.\-_]+$|^\[[0-9a-f:.]+\]$", host):
            raise ValueError(f"expected host names separated by commas, got {host!r}")
    return hosts
