"""The part of GitHub's GraphQL API that release clients use (SPEC §8.4): gh's
``RepositoryReleaseByTag``, ``RepositoryReleaseList`` and ``Release_fields`` (the type
introspection it sends first), and Renovate's github-releases query.

Pure: a query (read by graphql_parser), its variables and the repositories it names in;
GitHub's answer out, with exactly the fields the query selects (gh rejects answers with
more). A small schema of Repository, Release, ReleaseAsset, User and their connections
(``first``/``after`` pagination) answers it; any field outside it is a GraphQL error, as
GitHub answers an unknown field.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from .github import LOGIN, USER_ID, Links, ReleaseView, asset_id
from .graphql_parser import Field, GraphQLError, Variable, operations
from .media import content_type
from .package import Package, iso_utc

__all__ = ["GraphQLError", "Query", "Repository", "error_answer", "parse"]
#: GitHub's limit on ``first``; the most repositories one query may read.
MAX_PAGE, MAX_REPOSITORIES = 100, 10


@dataclass(frozen=True)
class Repository:
    """A repository as the caller may see it: its releases newest first (drafts only for
    the write token); ``links`` built for it, as the REST documents are."""

    owner: str
    name: str
    links: Links
    releases: Sequence[ReleaseView]

    @cached_property
    def latest(self) -> ReleaseView | None:
        """REST's ``/releases/latest``: the root release, else the newest published one
        that is not a pre-release."""
        root = [view for view in self.releases if not view.key]
        usable = [view for view in self.releases if not view.draft and not view.prerelease]
        return next(iter(root or usable), None)


# -- the schema --------------------------------------------------------------------------------


class _Missing(Exception):
    """An object the query names that is not there: null, and GitHub's NOT_FOUND error."""


@dataclass(frozen=True, slots=True)
class _Release:
    view: ReleaseView
    repository: Repository


@dataclass(frozen=True, slots=True)
class _Asset:
    package: Package
    release: _Release


@dataclass(frozen=True, slots=True)
class _Page:
    items: Sequence[Any]
    start: int
    total: int


Resolve = Callable[[Any, dict[str, Any]], Any]


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def _offset(cursor: object) -> int:
    try:
        text = base64.b64decode(cursor, validate=True) if isinstance(cursor, str) else b""
        kind, _, number = text.decode().partition(":")
        if kind == "cursor" and number.isascii() and number.isdigit():
            return int(number)
    except ValueError:
        pass
    raise GraphQLError(f"`{_show(cursor)}` does not appear to be a valid cursor.")


def _show(value: object) -> str:
    """A value for an error message: short, and never a deep structure's repr."""
    return (
        repr(value)[:100] if isinstance(value, str | int | float | None) else type(value).__name__
    )


def _page(items: Sequence[Any], args: dict[str, Any], what: str) -> _Page:
    """One page of ``items`` by ``first`` and ``after``, as GitHub's connections page; a
    cursor is the item's offset, opaque to the client."""
    first = args.get("first")
    if type(first) is not int or not 0 <= first <= MAX_PAGE:
        raise GraphQLError(
            f"You must provide a `first` value from 0 to {MAX_PAGE} to properly paginate the "
            f"`{what}` connection (it is {_show(first)})."
        )
    after = args.get("after")
    start = 0 if after is None else min(_offset(after) + 1, len(items))
    return _Page(items[start : start + first], start, len(items))


def _text(args: dict[str, Any], key: str) -> str:
    """The argument ``key``, a string, or a GraphQL error."""
    value = args.get(key)
    if not isinstance(value, str):
        raise GraphQLError(f"Argument '{key}' must be a string; it is {_show(value)}.")
    return value


def _repository(repositories: Mapping[tuple[str, str], Repository], args: dict[str, Any]) -> Any:
    owner, name = _text(args, "owner"), _text(args, "name")
    found = repositories.get((owner, name))
    if found is None:
        raise _Missing(f"Could not resolve to a Repository with the name '{owner}/{name}'.")
    return found


def _releases(repository: Repository, args: dict[str, Any]) -> _Page:
    order = args.get("orderBy") or {}
    field, direction = (
        (order.get(k) for k in ("field", "direction")) if isinstance(order, dict) else (0, 0)
    )
    if field not in ("CREATED_AT", "NAME", None) or direction not in ("ASC", "DESC", None):
        raise GraphQLError("orderBy must be {field: CREATED_AT|NAME, direction: ASC|DESC}.")
    views = list(repository.releases)  # newest first
    if field == "NAME":
        views.sort(key=lambda view: view.name, reverse=direction == "DESC")
    elif direction == "ASC":
        views.reverse()
    return _page([_Release(view, repository) for view in views], args, "releases")


def _by_tag(repository: Repository, args: dict[str, Any]) -> _Release | None:
    tag = _text(args, "tagName")
    return next((_Release(v, repository) for v in repository.releases if v.tag == tag), None)


def _assets(release: _Release, args: dict[str, Any]) -> _Page:
    wanted = args.get("name")
    assets = [_Asset(p, release) for p in release.view.assets if wanted in (None, p.name)]
    return _page(assets, args, "releaseAssets")


def _download(asset: _Asset, _: object = None) -> str:
    return asset.release.repository.links.download(asset.package.name, asset.release.view.key)


#: type → field → (resolver of (object, arguments), the field's object type; None: a scalar)
SCHEMA: dict[str, dict[str, tuple[Resolve, str | None]]] = {
    "Query": {"repository": (_repository, "Repository"),
              "__type": (lambda _, a: n if (n := _text(a, "name")) in SCHEMA else None, "__Type")},
    "Repository": {
        "id": (lambda r, _: f"R_{r.owner}/{r.name}", None),
        "name": (lambda r, _: r.name, None),
        "nameWithOwner": (lambda r, _: f"{r.owner}/{r.name}", None),
        "isPrivate": (lambda r, _: False, None),
        "url": (lambda r, _: f"{r.links.root}/packages", None),
        "release": (_by_tag, "Release"),
        "releases": (_releases, "ReleaseConnection"),
        "latestRelease": (lambda r, _: r.latest and _Release(r.latest, r), "Release"),
    },
    "Release": {
        "id": (lambda r, _: f"RE_{r.view.id}", None),
        "databaseId": (lambda r, _: r.view.id, None),
        "tagName": (lambda r, _: r.view.tag, None),
        "name": (lambda r, _: r.view.name, None),
        "description": (lambda r, _: r.view.body, None),
        "isDraft": (lambda r, _: r.view.draft, None),
        "isPrerelease": (lambda r, _: r.view.prerelease, None),
        "isLatest": (lambda r, _: r.view is r.repository.latest, None),
        "immutable": (lambda r, _: False, None),
        "createdAt": (lambda r, _: iso_utc(r.view.created_ns), None),
        "updatedAt": (lambda r, _: iso_utc(r.view.created_ns), None),
        "publishedAt": (lambda r, _: None if r.view.draft else iso_utc(r.view.created_ns), None),
        "url": (lambda r, _: r.repository.links.html(r.view.tag), None),
        "resourcePath": (lambda r, _: urlsplit(r.repository.links.html(r.view.tag)).path, None),
        "author": (lambda r, _: r.repository.links, "User"),
        "releaseAssets": (_assets, "ReleaseAssetConnection"),
    },
    "ReleaseAsset": {
        "id": (lambda a, _: f"RA_{asset_id(a.package.name, a.release.view.key)}", None),
        "databaseId": (lambda a, _: asset_id(a.package.name, a.release.view.key), None),
        "name": (lambda a, _: a.package.name, None),
        "contentType": (lambda a, _: content_type(a.package.name), None),
        "size": (lambda a, _: a.package.size, None),
        "downloadCount": (lambda a, _: a.package.downloads, None),
        "digest": (lambda a, _: f"sha256:{a.package.sha256}", None),
        "downloadUrl": (_download, None),
        "url": (_download, None),
        "createdAt": (lambda a, _: a.package.created_at, None),
        "updatedAt": (lambda a, _: a.package.created_at, None),
        "release": (lambda a, _: a.release, "Release"),
        "uploadedBy": (lambda a, _: a.release.repository.links, "User"),
    },
    "User": {"id": (lambda links, _: f"U_{LOGIN}", None), "login": (lambda links, _: LOGIN, None),
             "databaseId": (lambda links, _: USER_ID, None),
             "url": (lambda links, _: f"{links.root}/packages", None)},
    "PageInfo": {
        "hasNextPage": (lambda p, _: p.start + len(p.items) < p.total, None),
        "hasPreviousPage": (lambda p, _: p.start > 0, None),
        "startCursor": (lambda p, _: _cursor(p.start) if p.items else None, None),
        "endCursor": (lambda p, _: _cursor(p.start + len(p.items) - 1) if p.items else None, None),
    },
    "__Type": {
        "name": (lambda t, _: t, None),
        "kind": (lambda t, _: "OBJECT", None),
        "description": (lambda t, _: None, None),
        "fields": (lambda t, _: [f for f in SCHEMA[t] if not f.startswith("__")], "__Field"),
    },
    "__Field": {"name": (lambda f, _: f, None), "description": (lambda f, _: None, None)},
}  # fmt: skip
for _node in ("Release", "ReleaseAsset"):
    SCHEMA[f"{_node}Connection"] = {
        "nodes": (lambda p, _: list(p.items), _node),
        "totalCount": (lambda p, _: p.total, None),
        "pageInfo": (lambda p, _: p, "PageInfo"),
    }


# -- answering ---------------------------------------------------------------------------------


def _check(fields: Sequence[Field], type_name: str) -> None:
    """GitHub's validation errors for a field the type lacks, or selections that do not
    fit the field's type."""
    for field in fields:
        spec = SCHEMA[type_name].get(field.name)
        child = spec[1] if spec else None
        if field.name != "__typename" and spec is None:
            raise GraphQLError(f"Field '{field.name}' doesn't exist on type '{type_name}'")
        if child and not field.selections:
            raise GraphQLError(f"Field must have selections (field '{field.name}' returns "
                               f"{child} but has no selections)")  # fmt: skip
        if not child and field.selections:
            raise GraphQLError(f"Selections can't be made on scalars (field '{field.name}')")
        if child:
            _check(field.selections, child)


def _bind(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, Variable):
        return variables.get(value.name)
    if isinstance(value, list):
        return [_bind(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: _bind(item, variables) for key, item in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed, checked query with its variables bound, ready to answer."""

    fields: tuple[Field, ...]
    variables: Mapping[str, Any]

    def repositories(self) -> list[tuple[str, str]]:
        """(owner, name) of each repository the query reads, to be loaded for ``answer``."""
        wanted = {}
        for field in self.fields:
            owner, name = (_bind(field.args.get(k), self.variables) for k in ("owner", "name"))
            if field.name == "repository" and isinstance(owner, str) and isinstance(name, str):
                wanted[owner, name] = True
        if len(wanted) > MAX_REPOSITORIES:
            raise GraphQLError(f"Ask for at most {MAX_REPOSITORIES} repositories in one query.")
        return list(wanted)

    def answer(self, repositories: Mapping[tuple[str, str], Repository]) -> dict[str, Any]:
        """GitHub's answer: ``data`` with exactly the selected fields, and ``errors`` for
        the repositories that are not there (or only ``errors`` for a query it refuses)."""
        errors: list[dict[str, Any]] = []
        try:
            data = self._resolve(repositories, self.fields, "Query", [], errors)
        except GraphQLError as problem:
            return error_answer(str(problem))
        return {"data": data, "errors": errors} if errors else {"data": data}

    def _resolve(
        self, obj: Any, fields: Sequence[Field], kind: str, path: list[Any], errors: list[Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in fields:
            if field.name == "__typename":
                out[field.alias] = kind
                continue
            resolve, child = SCHEMA[kind][field.name]
            args = {key: _bind(value, self.variables) for key, value in field.args.items()}
            here = [*path, field.alias]
            try:
                value = resolve(obj, args)
            except _Missing as missing:
                errors.append({"type": "NOT_FOUND", "path": here, "message": str(missing)})
                value = None
            if child and isinstance(value, list):
                value = [self._resolve(item, field.selections, child, [*here, index], errors)
                         for index, item in enumerate(value)]  # fmt: skip
            elif child and value is not None:
                value = self._resolve(value, field.selections, child, here, errors)
            out[field.alias] = value
        return out


def parse(query: object, variables: object = None, operation_name: object = None) -> Query:
    """The operation of a GraphQL request (``query``, ``variables``, ``operationName``),
    checked against the schema. Raises GraphQLError for anything this server does not
    answer."""
    if not isinstance(query, str) or not query.strip():
        raise GraphQLError("A query attribute must be specified and must be a string.")
    if not isinstance(variables, dict | None):
        raise GraphQLError("Variables must be a JSON object.")
    found = operations(query)
    if isinstance(operation_name, str) and operation_name:
        if operation_name not in found:
            raise GraphQLError(f'No operation named "{operation_name}"')
        defaults, fields = found[operation_name]
    elif len(found) == 1:
        defaults, fields = next(iter(found.values()))
    else:
        raise GraphQLError("Send one operation, or name the one to run in operationName.")
    _check(fields, "Query")
    return Query(fields, {**defaults, **(variables or {})})


def error_answer(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}
