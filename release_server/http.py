"""Small HTTP helpers the routes share: error answers, JSON, content negotiation, base URLs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_ABSOLUTE = re.compile(rb"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*(/[^?#]*)?")
_HOST = re.compile(r"^[A-Za-z0-9.\-_]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def error_body(message: str, extra: dict[str, object] | None = None) -> bytes:
    """An error in both shapes clients know: ``detail`` (this API) and ``message`` (GitHub)."""
    return json_bytes({"detail": message, "message": message, **(extra or {})})


def error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response:
    return Response(error_body(message, extra), status, headers, media_type="application/json")


def json_bytes(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(json_bytes(data), status, headers, media_type="application/json")


def _quality(accept: str, wanted: str) -> float:
    """The q-value ``accept`` gives ``wanted`` (exact type beats ``type/*`` beats ``*/*``)."""
    best = (-1, 0.0)
    main_type = wanted.split("/")[0]
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        if media == wanted:
            rank = 2
        elif media == f"{main_type}/*":
            rank = 1
        elif media == "*/*":
            rank = 0
        else:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if rank > best[0]:
            best = (rank, quality)
    return best[1]


def prefers_html(accept: str | None) -> bool:
    """True when the client ranks text/html above application/json (browsers do)."""
    if not accept:
        return False
    html = _quality(accept, "text/html")
    return html > 0 and html > _quality(accept, "application/json")


def base_url(request: Request, public_url: str, trust_proxy: bool) -> str:
    """The external base URL: PUBLIC_URL, else the request's scheme, host and root path
    (X-Forwarded-Proto/Host are believed only when TRUST_PROXY is on)."""
    if public_url:
        return public_url
    scheme = request.scope.get("scheme", "http")  # not request.url: parsing it costs more
    host = request.headers.get("host", "")
    if trust_proxy:
        headers = request.headers
        scheme = forwarded(", ".join(headers.getlist("x-forwarded-proto"))) or scheme
        host = forwarded(", ".join(headers.getlist("x-forwarded-host"))) or host
    if scheme not in ("http", "https"):
        scheme = request.scope.get("scheme", "http")
    if not _HOST.match(host):
        server = request.scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}{request.scope.get('root_path', '').rstrip('/')}"


def forwarded(value: str) -> str:
    """The last of comma-separated X-Forwarded-* values: the one the nearest proxy (the
    trusted one) appended; earlier ones came from the client and may be anything."""
    return value.rsplit(",", 1)[-1].strip()


#: What document bodies depend on besides the path: shared caches must key on these.
VARY_BASE_URL = "Host, X-Forwarded-Host, X-Forwarded-Proto"


class AnswerBeforeBody(Response):
    """Answer a client that is still sending its body, then close the connection.

    Hypercorn queues body chunks until the app reads them; with the queue full, the final
    send of an answer blocks forever. So the rest of the body is read and dropped while
    the answer goes out, and ``Connection: close`` ends the exchange rather than leaving a
    half-read request on a keep-alive connection.
    """

    def __init__(self, response: Response) -> None:
        response.headers["connection"] = "close"
        self.response = response
        self.status_code = response.status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def drain() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        async with anyio.create_task_group() as group:
            group.start_soon(drain)
            await self.response(scope, receive, send)
            group.cancel_scope.cancel()


def origin_form(scope: Scope) -> Scope:
    """``scope`` with an absolute-form request target (``GET http://host/latest``, what
    clients send through a forward proxy) routed on its path, as RFC 9112 §3.2.2 requires
    of servers; ``scope`` itself for every other target."""
    match = _ABSOLUTE.match(scope.get("raw_path") or b"")
    if match is None:
        return scope
    path = match.group(1) or b"/"
    return {**scope, "raw_path": path, "path": unquote_to_bytes(path).decode("utf-8", "replace")}


#: For every answer that does not set its own (the page does): nothing in it may run.
DEFAULT_CSP = b"default-src 'none'; sandbox"


def secured(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``nosniff`` and, unless the answer sets its own, a sandboxing
    Content-Security-Policy: JSON errors echo names, and a browser must never render any
    answer as something else."""
    kept = [(key, value) for key, value in headers if key.lower() != b"x-content-type-options"]
    kept.append((b"x-content-type-options", b"nosniff"))
    if not any(key.lower() == b"content-security-policy" for key, _ in kept):
        kept.append((b"content-security-policy", DEFAULT_CSP))
    return kept


async def send_error(
    send: Send, status: int, message: str, *, close: bool = False, retry_after: str = ""
) -> None:
    """Answer with this API's JSON error straight through ASGI (for middlewares that
    answer before, or instead of, the application)."""
    body = error_body(message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
