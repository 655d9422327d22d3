"""Request hygiene before anything is routed: what no handler should ever see.

Refused with 400 and a closed connection: ambiguous body framing (RFC 9112 §6.1: both
Content-Length and Transfer-Encoding, Transfer-Encoding other than exactly ``chunked``,
Transfer-Encoding on HTTP/1.0), several Authorization headers, a Host or X-Forwarded-Host
longer than a host name can be (links embed it many times per document), and, when
ALLOWED_HOSTS is set, a host not on the list (the probes stay open to any host).
"""

from __future__ import annotations

from starlette.types import Scope

from .http import forwarded

#: A host name is at most 255 bytes; with ``:65535`` and brackets, 263.
MAX_HOST_BYTES = 263
PROBES = frozenset(("/healthz", "/health", "/readyz"))


def refusal(scope: Scope, allowed_hosts: tuple[str, ...], trust_proxy: bool) -> str | None:
    """Why the request is refused (400, connection closed), or None."""
    headers: dict[bytes, list[bytes]] = {}
    for key, value in scope["headers"]:
        headers.setdefault(key.lower(), []).append(value)
    encoding = headers.get(b"transfer-encoding")
    if encoding is not None and (
        b"content-length" in headers
        or encoding != [b"chunked"]
        or scope.get("http_version") == "1.0"
    ):
        return (
            "Ambiguous body framing: send either Content-Length or "
            "'Transfer-Encoding: chunked' (HTTP/1.1), not both."
        )
    if len(headers.get(b"authorization", [])) > 1:
        return "Send one Authorization header."
    hosts = headers.get(b"host", [])
    if trust_proxy and b"x-forwarded-host" in headers:
        hosts = [forwarded(b", ".join(headers[b"x-forwarded-host"]).decode("latin-1")).encode()]
    if any(len(host) > MAX_HOST_BYTES for host in hosts):
        return f"The Host is longer than a host name can be ({MAX_HOST_BYTES} bytes)."
    if allowed_hosts and scope["path"] not in PROBES:
        host = hosts[-1].decode("latin-1").lower() if hosts else ""
        if not host_allowed(host, allowed_hosts):
            return "This host name is not served here: it is not in ALLOWED_HOSTS."
    return None


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """``host`` (with or without a port) is listed, or matches a ``*.domain`` entry."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    for entry in allowed:
        if name == entry or (entry.startswith("*.") and name.endswith(entry[1:])):
            return True
    return False
