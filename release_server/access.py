"""Who may read and write what (SPEC §10): AUTH_TOKEN, the scoped tokens of TOKENS_FILE,
and which repositories are private (PRIVATE).

A caller is known by the sha256 of the token it sends, compared in constant time with the
digest of every token the server knows, so neither the comparison nor a file that stores
``sha256:<hex>`` gives a token away. A scope is ``read:`` or ``write:`` on ``*``,
``owner/*`` or ``owner/repo`` (``write:`` implies ``read:``), or ``metrics`` (which makes
/metrics need a token). The root release belongs to the default repository (REPOSITORY).
AUTH_TOKEN may do everything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass

from .errors import Forbidden, Unauthorized
from .logs import log_event, redact
from .parsing import repository_pattern
from .parsing import token as check_token

logger = logging.getLogger("release_server")

#: How often (seconds) the tokens file is checked for changes.
RECHECK_EVERY = 1.0
HASHED = "sha256:"


class TokensFileError(ValueError):
    """The tokens file cannot be used; the message has one line per problem."""


def matches(pattern: str, repository: str) -> bool:
    """Whether ``*``, ``owner/*`` or ``owner/repo`` names ``repository``."""
    if pattern in ("*", repository):
        return True
    owner, _, rest = pattern.partition("/")
    return rest == "*" and repository.partition("/")[0] == owner


@dataclass(frozen=True, slots=True)
class Scope:
    write: bool
    pattern: str

    def covers(self, repository: str, write: bool) -> bool:
        return (self.write or not write) and matches(self.pattern, repository)


@dataclass(frozen=True, slots=True)
class Grant:
    """What one token may do; the token is kept only as its sha256."""

    digest: bytes
    scopes: tuple[Scope, ...]
    metrics: bool = False

    def may(self, repository: str, write: bool) -> bool:
        return any(scope.covers(repository, write) for scope in self.scopes)


def digest_of(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def parse_scopes(text: str) -> tuple[tuple[Scope, ...], bool]:
    """The scopes of ``read:X,write:Y,metrics``; raises ValueError saying what is wrong."""
    scopes: list[Scope] = []
    metrics = False
    for item in text.split(","):
        kind, colon, pattern = item.partition(":")
        if item == "metrics":
            metrics = True
        elif colon and kind in ("read", "write"):
            scopes.append(Scope(kind == "write", repository_pattern(pattern)))
        else:
            raise ValueError(
                f"unknown scope {item!r}: use read:<target>, write:<target> or metrics, "
                "where <target> is *, owner/* or owner/repo"
            )
    return tuple(scopes), metrics


def parse_token(text: str) -> bytes:
    """The digest of a plain token or of ``sha256:<64 hex digits>``."""
    if text.lower().startswith(HASHED):
        hexdigest = text[len(HASHED) :]
        if len(hexdigest) != 64 or not all(c in "0123456789abcdefABCDEF" for c in hexdigest):
            raise ValueError("a hashed token is 'sha256:' and 64 hex digits")
        return bytes.fromhex(hexdigest)
    return digest_of(check_token(text))


def parse_tokens(text: str) -> tuple[tuple[Grant, ...], list[str]]:
    """The grants of a tokens file (``<token> <scope>[,<scope>...] [# comment]`` a line)
    and the tokens it holds in plain text (for the log redaction). Raises TokensFileError
    with one line per bad line; no message repeats a token."""
    grants: list[Grant] = []
    plain: list[str] = []
    problems: list[str] = []
    lines_of: dict[bytes, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        comment = next((i for i, word in enumerate(words) if word.startswith("#")), len(words))
        words = words[:comment]
        if not words:
            continue
        if len(words) != 2:
            problems.append(
                f"line {number}: expected '<token> <scope>[,<scope>...]', two words (scopes "
                f"separated by commas without spaces); this line has {len(words)}"
            )
            continue
        try:
            digest = parse_token(words[0])
            scopes, metrics = parse_scopes(words[1])
        except ValueError as problem:
            problems.append(f"line {number}: {problem}")
            continue
        if digest in lines_of:
            problems.append(
                f"line {number}: the same token as line {lines_of[digest]}; "
                "give each token one line with all its scopes"
            )
            continue
        lines_of[digest] = number
        grants.append(Grant(digest, scopes, metrics))
        if not words[0].lower().startswith(HASHED):
            plain.append(words[0])
    if problems:
        raise TokensFileError("\n".join(problems))
    return tuple(grants), plain


class TokensFile:
    """TOKENS_FILE, re-read when it changes (checked at most once a second). A change that
    does not parse is logged and the tokens read before stay in force, so a typo locks
    nobody out; the start-up read is strict (TokensFileError)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp, text = self._read()
        self.grants = self._parse(text)
        self.checked = time.monotonic()

    @staticmethod
    def _parse(text: str) -> tuple[Grant, ...]:
        grants, plain = parse_tokens(text)
        redact(plain, (grant.digest for grant in grants))
        return grants

    def _read(self) -> tuple[tuple[int, int, int], str]:
        try:
            with open(self.path, encoding="utf-8-sig") as handle:
                info = os.fstat(handle.fileno())
                return (info.st_ino, info.st_size, info.st_mtime_ns), handle.read()
        except OSError as error:
            raise TokensFileError(f"cannot read {self.path!r}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise TokensFileError(f"{self.path!r} is not UTF-8 text") from None

    def current(self) -> tuple[Grant, ...]:
        now = time.monotonic()
        if now - self.checked >= RECHECK_EVERY:
            self.checked = now
            self._reload()
        return self.grants

    def _reload(self) -> None:
        try:
            info = os.stat(self.path)
            if (info.st_ino, info.st_size, info.st_mtime_ns) == self.stamp:
                return
            self.stamp, text = self._read()
            self.grants = self._parse(text)
        except (OSError, TokensFileError) as problem:
            log_event(
                logger,
                "TOKENS_FILE not re-read; the tokens read before stay in force",
                level=logging.ERROR,
                problems=str(problem).splitlines(),
            )
            return
        log_event(logger, "TOKENS_FILE re-read", tokens=len(self.grants))


def presented_token(authorization: str | None) -> str | None:
    """The token in ``Bearer T``, GitHub's ``token T`` or HTTP Basic auth (the password,
    or the user name when the password is empty, as ``curl -u TOKEN:`` sends it); "" when
    the header is there but holds none; None when there is no header."""
    if authorization is None:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() in ("bearer", "token"):
        return value
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return password or user
    return ""


HOW = (
    "as 'Authorization: Bearer <token>' (or GitHub's 'Authorization: token <token>', or as "
    "the password of HTTP Basic auth)"
)


class Access:
    """The decisions: ``check`` raises 401/403 with what is missing, ``may`` answers."""

    def __init__(
        self,
        admin_token: str,
        tokens: TokensFile | None,
        private: tuple[str, ...],
        repository: str,
    ) -> None:
        everything = (Scope(True, "*"),)
        self.admin = Grant(digest_of(admin_token), everything, True) if admin_token else None
        self.tokens = tokens
        self.private = private
        self.repository = repository

    def grants(self) -> tuple[Grant, ...]:
        admin = (self.admin,) if self.admin else ()
        return admin + (self.tokens.current() if self.tokens else ())

    def grant(self, token: str) -> Grant | None:
        """The grant of ``token``, comparing its digest with every known one in full."""
        digest = digest_of(token)
        found = None
        for grant in self.grants():
            if hmac.compare_digest(digest, grant.digest) and found is None:
                found = grant
        return found

    def is_private(self, repository: str) -> bool:
        return any(matches(pattern, repository) for pattern in self.private)

    def may(self, authorization: str | None, repository: str, write: bool) -> bool:
        if not write and not self.is_private(repository):
            return True
        token = presented_token(authorization)
        grant = self.grant(token) if token else None
        return grant is not None and grant.may(repository, write)

    def check(self, authorization: str | None, repository: str, write: bool) -> None:
        """Raise Unauthorized (no usable token) or Forbidden (a token without the scope)
        unless the caller may read (or write) ``repository``. Public reads ignore any
        token: clients send the GITHUB_TOKEN they were given for github.com."""
        if not write and not self.is_private(repository):
            return
        kind = "write" if write else "read"
        owner = repository.partition("/")[0]
        needed = f"{kind}:{repository} (or {kind}:{owner}/*, {kind}:*)"
        scheme = "Bearer" if write else "Basic"
        if write and not self.grants():
            raise Unauthorized(
                "Writes are disabled: no AUTH_TOKEN or TOKENS_FILE is configured on the "
                "server. Set AUTH_TOKEN (or AUTH_TOKEN_FILE, TOKENS_FILE) and restart it."
            )
        doing = "Writing to" if write else "Reading"
        grant = self.caller(authorization, f"{doing} {repository} needs {needed}", scheme)
        if not grant.may(repository, write):
            raise Forbidden(f"This token may not {kind} {repository}: that needs {needed}.")

    def caller(self, authorization: str | None, needs: str, scheme: str = "Bearer") -> Grant:
        """The grant of the token sent; Unauthorized when there is none (``needs`` says
        what the request needs) or it is not one this server knows."""
        token = presented_token(authorization)
        if not token:
            raise Unauthorized(f"{needs}: send a token with it {HOW}.", scheme)
        grant = self.grant(token)
        if grant is None:
            raise Unauthorized("The token is not valid; check the token you send.", scheme)
        return grant

    def check_metrics(self, authorization: str | None) -> None:
        """/metrics is open unless some token has the ``metrics`` scope; then it needs one."""
        if not any(grant.metrics for grant in self.grants() if grant is not self.admin):
            return
        grant = self.caller(authorization, "/metrics needs the metrics scope")
        if not grant.metrics:
            raise Forbidden("This token may not read /metrics: that needs the metrics scope.")
