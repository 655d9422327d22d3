"""The front: the one layer every HTTP request passes before it is routed.

For each request, in this order:

- an ``X-Request-ID`` (the client's when it is a sane one, else a new one), echoed on
  the answer and in every log line about the request;
- an absolute-form target (``GET http://host/latest``) routed on its path (http.py);
- request hygiene (guard.py): refused with 400, connection closed, before routing;
- every answer gets ``nosniff`` and, unless it sets its own, a sandboxing CSP (http.py);
- an ``HTTPError`` or Starlette ``HTTPException`` raised outside an endpoint (no route,
  wrong method, the access check) is answered by the same handlers as inside one;
  anything else that escapes becomes the failsafe's answer (failsafe.py);
- when it ends, one access line and the request metrics.

One layer with one wrapper around ``send``, where there were five middlewares and
Starlette's two exception layers, each adding a coroutine call to every message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import HTTPError
from .failsafe import Cancelled, StorageProblem, fail
from .guard import refusal
from .http import origin_form, secured, send_error
from .logs import access_fields, log_request, request_id

#: Called after each request with method, route template, status, bytes sent and seconds.
Observer = Callable[[str, str, int, int, float], None]
#: Answers an HTTPError or HTTPException (the app's exception handlers).
Refused = Callable[[Request, Exception], Awaitable[Response]]


class Front:
    """The layer described above, around ``app`` (the router)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        refused: Refused,
        storage_problem: StorageProblem,
        observe: Observer,
        allowed_hosts: tuple[str, ...] = (),
        trust_proxy: bool = False,
    ) -> None:
        self.app = app
        self.refused = refused
        self.storage_problem = storage_problem
        self.observe = observe
        self.allowed_hosts = allowed_hosts
        self.trust_proxy = trust_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        routed = origin_form(scope)
        status = 0
        sent = 0
        headers: list[tuple[bytes, bytes]] = []

        async def send_front(message: Message) -> None:
            nonlocal status, sent, headers
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = secured(message.get("headers", ()))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind == "http.response.pathsend":  # a whole file, sent by the engine
                sent += int(dict(headers).get(b"content-length", b"0"))
            await send(message)

        try:
            try:
                problem = refusal(routed, self.allowed_hosts, self.trust_proxy)
                if problem:
                    await send_error(send_front, 400, problem, close=True)
                else:
                    await self.app(routed, receive, send_front)
            except (HTTPError, HTTPException) as refused:
                if status:
                    raise  # too late to answer it: a failure like any other
                response = await self.refused(Request(routed, receive), refused)
                await response(routed, receive, send_front)
        except Cancelled as problem:
            await self._fail(problem, routed["path"], rid, None if status else send_front)
            raise
        except Exception as problem:
            await self._fail(problem, routed["path"], rid, None if status else send_front)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(routed.get("route"), "path", "unmatched")
            self.observe(scope["method"], route, status or 500, sent, seconds)
            log_request(access_fields(scope, status or 500, sent, seconds, self.trust_proxy))

    async def _fail(self, problem: BaseException, path: str, rid: str, send: Send | None) -> None:
        fields: dict[str, object] = {"path": path, "request_id": rid}
        await fail(problem, self.storage_problem, fields, send)
