"""SegmentRouter picks, for every path and method, the route Starlette's Router would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import BaseRoute, Match, Route

from release_server.asgi import create_app
from release_server.config import load_settings
from release_server.routing import SegmentRouter

SAMPLES = ("acme", "tool", "v1.2.3", "latest", "download", "releases", "assets", "12", "x y")
ODD_PATHS = (
    *("/", "//", "*", "", "/latest/", "/latest\n", "/acme", "/acme/tool/releases/", "/repos"),
    *("/api/v3", "/%2e%2e/latest", "/api/uploads/repos/a/b/releases/1/assets/x"),
)


def chosen(routes: list[BaseRoute], path: str, method: str) -> BaseRoute | None:
    """Starlette's rule: the first full match, else the first partial (405) one."""
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def paths(routes: list[BaseRoute]) -> list[str]:
    """Each route's path with its parameters filled in several ways, and odd paths."""
    found = set(ODD_PATHS)
    for route in routes:
        assert isinstance(route, Route)
        for sample in SAMPLES:
            found.add(re.sub(r"\{[^}]*\}", sample, route.path))
            found.add(re.sub(r"\{[^}]*\}", sample, route.path) + "/extra")
    return sorted(found)


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> SegmentRouter:
    storage = Path(tmp_path_factory.mktemp("storage"))
    app = create_app(load_settings(env={"STORAGE_PATH": str(storage)}))
    assert isinstance(app.router, SegmentRouter)
    return app.router


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def test_the_same_route_as_starlette_for_every_path(router: SegmentRouter, method: str) -> None:
    every = list(router.routes)
    checked = 0
    for path in paths(every):
        expected = chosen(every, path, method)
        assert chosen(router.candidates(path).routes, path, method) is expected, path
        checked += expected is not None
    assert checked > 50  # most sample paths do reach a route
