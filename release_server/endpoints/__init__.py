"""HTTP endpoints, one module per resource; each handler parses, makes one call, answers."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import BaseRoute, Route

from .api import GitHubApi
from .api_write import GitHubWrites
from .assets import Assets
from .context import Context
from .graphql import GraphQL
from .health import Health
from .home import Home
from .listing import Listings
from .web import WebPaths


class AnyText(Convertor[str]):
    """Like ``path`` but also matches control characters, so names.py (not the router)
    decides, and a bad name gets a 400 that says why instead of a 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyText())


def github_routes(api: GitHubApi) -> list[BaseRoute]:
    return [*api.routes(), *GitHubWrites(api).routes()]


#: Routes anyone may call, and routes that check access themselves: /metrics (its own
#: scope) and GraphQL (the repositories are in the query). Every other route is guarded.
UNGUARDED = frozenset(
    ("/healthz", "/health", "/readyz", "/openapi.yaml", "/avatar.svg", "/metrics", "/graphql")
) | {"/api/graphql"}


def routes(ctx: Context) -> list[BaseRoute]:
    """Every route of the application, each behind the access check it needs."""
    return [
        route if isinstance(route, Route) and route.path in UNGUARDED else ctx.guard(route)
        for route in all_routes(ctx)
    ]


def all_routes(ctx: Context) -> list[BaseRoute]:
    assets = Assets(ctx)
    api = GitHubApi(ctx, assets, "")
    return [
        *Health(ctx).routes(),
        *Listings(ctx).routes(),
        *assets.routes(),
        *github_routes(api),
        *github_routes(GitHubApi(ctx, assets, "/api/v3")),
        *GraphQL(ctx).routes(),
        *Home(api).routes(),
        *WebPaths(ctx, assets, api).routes(),  # last: /{owner}/{repo}/... shadows nothing
    ]


__all__ = ["Context", "routes"]
