"""What every endpoint shares: the settings, storage, services and per-request helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .. import github
from ..access import Access, TokensFile
from ..config import Settings
from ..documents import DocumentCache, EncodedAssets
from ..errors import HTTPError
from ..http import base_url
from ..metrics import Metrics
from ..publish import Publisher
from ..storage import Listing, Storage
from ..uploads import Body


@dataclass
class Context:
    settings: Settings
    storage: Storage
    metrics: Metrics = field(default_factory=Metrics)
    documents: DocumentCache = field(default_factory=DocumentCache)
    assets: EncodedAssets = field(default_factory=EncodedAssets)

    def __post_init__(self) -> None:
        self.publisher = Publisher(self.storage, self.metrics, self.settings)
        settings = self.settings
        tokens = TokensFile(settings.tokens_file) if settings.tokens_file else None
        self.access = Access(settings.auth_token, tokens, settings.private, settings.repository)

    async def listing(self) -> Listing:
        """The root release's packages, newest first."""
        return await self.storage.listing()

    def base(self, request: Request) -> str:
        """The external base URL links are built from (PUBLIC_URL, else the request's)."""
        return base_url(request, self.settings.public_url, self.settings.trust_proxy)

    def links(self, request: Request, api: str = "", repository: str = "") -> github.Links:
        root = self.base(request)
        return github.Links(root, root + api, repository or self.settings.repository)

    def repository_of(self, request: Request) -> str:
        """The repository a routed request names: its owner/repo, else the default one
        (the root release's routes name none)."""
        params = request.path_params
        if "owner" in params and "repo" in params:
            return f"{params['owner']}/{params['repo']}"
        return self.settings.repository

    def can_write(self, request: Request, repository: str = "") -> bool:
        """Whether the caller may write ``repository`` (by default the one the request
        names): drafts are shown, and documents say so, only then."""
        repository = repository or self.repository_of(request)
        return self.access.may(request.headers.get("authorization"), repository, write=True)

    def check_read(self, request: Request, repository: str) -> None:
        self.access.check(request.headers.get("authorization"), repository, write=False)

    def guard(self, route: BaseRoute) -> BaseRoute:
        """``route`` behind the access check of the repository it names: reads of a
        private repository need a read token, every other method a write token. Checked
        here, once, so no endpoint can forget it."""
        assert isinstance(route, Route)
        inner = route.app
        write = not (route.methods or set()) & {"GET", "HEAD"}

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            authorization = request.headers.get("authorization")
            try:
                self.access.check(authorization, self.repository_of(request), write)
            except HTTPError:
                if write:  # the refusal drains the body nobody read (asgi.refusal)
                    upload_body(request, self.settings.read_timeout)
                raise
            await inner(scope, receive, send)

        route.app = app
        return route


def upload_body(request: Request, idle_timeout: float) -> Body:
    """The request body, remembered in the scope so an error answered before it was read
    to the end closes the connection (see asgi.py)."""
    body = Body(request.stream(), idle_timeout)
    request.scope.setdefault("state", {})["upload_body"] = body
    return body
