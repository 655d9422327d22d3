"""GitHub's GraphQL endpoint (SPEC §8.4), ``POST /api/graphql`` (where GitHub Enterprise
clients such as gh and Renovate send it) and ``POST /graphql``: the few queries release
clients send, answered by ..graphql from the releases the caller may see.

A query this server does not answer is a GraphQL error (200 with ``errors``), as GitHub
answers one; only a body that is not a JSON object is a 400.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import github, graphql
from ..errors import BadRequest
from ..http import json_response
from ..names import name_problem
from ..releases import MAX_OWNER, MAX_REPO
from .context import Context

#: The most a GraphQL request may weigh (the queries release clients send are < 1 KiB).
MAX_BODY = 64 * 1024


class GraphQL:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def repository(self, request: Request, owner: str, name: str) -> graphql.Repository:
        """The repository's releases the caller may see, newest first, as the REST list
        shows them; NotFound-like None when there is no such repository."""
        links = self.ctx.links(
            request, "/api/v3", f"{quote(owner, safe='')}/{quote(name, safe='')}"
        )
        repository = f"{owner}/{name}"
        drafts = self.ctx.can_write(request, repository)
        releases = await self.ctx.publisher.releases.releases(repository)
        views = [github.release_view(r) for r in releases if drafts or not r.meta.draft]
        if repository == self.ctx.settings.repository:
            listing = await self.ctx.listing()
            views.append(github.root_view(listing.packages, listing.changed_ns))
        views.sort(key=lambda view: -view.created_ns)
        return graphql.Repository(owner, name, links, views)

    async def exists(self, owner: str, name: str) -> bool:
        """The default repository, or one with releases (as the REST routes answer)."""
        if name_problem(owner) or name_problem(name):
            return False
        if len(owner) > MAX_OWNER or len(name) > MAX_REPO:
            return False
        repository = f"{owner}/{name}"
        return repository == self.ctx.settings.repository or bool(
            await self.ctx.storage.children(repository)
        )

    async def query(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise BadRequest(f"The GraphQL request is larger than {MAX_BODY} bytes.")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise BadRequest('Problems parsing JSON: send {"query": "...", "variables": {...}}.')
        try:
            query = graphql.parse(
                data.get("query"), data.get("variables"), data.get("operationName")
            )
        except graphql.GraphQLError as problem:
            return json_response(graphql.error_answer(str(problem)))
        repositories = {}
        for owner, name in query.repositories():
            self.ctx.check_read(request, f"{owner}/{name}")
            if await self.exists(owner, name):
                repositories[owner, name] = await self.repository(request, owner, name)
        return json_response(query.answer(repositories))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/graphql", self.query, methods=["POST"]),
            Route("/graphql", self.query, methods=["POST"]),
        ]
