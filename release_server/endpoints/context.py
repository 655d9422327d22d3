"""What every endpoint shares: the settings, storage, services and per-request helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from .. import github
from ..auth import check_bearer
from ..config import Settings
from ..documents import DocumentCache
from ..errors import Unauthorized
from ..http import base_url
from ..metrics import Metrics
from ..publish import Publisher
from ..storage import Listing, Storage


@dataclass
class Context:
    settings: Settings
    storage: Storage
    metrics: Metrics = field(default_factory=Metrics)
    documents: DocumentCache = field(default_factory=DocumentCache)

    def __post_init__(self) -> None:
        self.publisher = Publisher(self.storage, self.metrics, self.settings)

    async def listing(self) -> Listing:
        """The root release's packages, newest first."""
        return await self.storage.listing()

    def base(self, request: Request) -> str:
        """The external base URL links are built from (PUBLIC_URL, else the request's)."""
        return base_url(request, self.settings.public_url, self.settings.trust_proxy)

    def links(self, request: Request, api: str = "", repository: str = "") -> github.Links:
        root = self.base(request)
        return github.Links(root, root + api, repository or self.settings.repository)

    def authorize(self, request: Request) -> None:
        """Raise Unauthorized unless the request carries the write token."""
        check_bearer(request.headers.get("authorization"), self.settings.auth_token)

    def can_write(self, request: Request) -> bool:
        """Whether the request carries the write token (for documents that say so)."""
        try:
            self.authorize(request)
        except Unauthorized:
            return False
        return True
