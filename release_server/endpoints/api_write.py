"""GitHub's write API for releases (SPEC §8.5), so gh, GoReleaser, octokit and PyGithub
publish unchanged: create, edit and delete a release, upload an asset to its
``upload_url`` (GitHub Enterprise's ``/api/uploads`` prefix), delete an asset."""

from __future__ import annotations

import json
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import github
from ..documents import document_response
from ..errors import AlreadyExists, BadRequest, Unprocessable, already_exists
from ..http import json_response
from ..model import ReleaseMeta
from ..releases import check_release
from ..uploads import OpenUpload, receive_raw
from .api import GitHubApi
from .context import upload_body

#: The most a release's JSON may weigh; GitHub's bodies are at most 125,000 characters.
MAX_JSON = 1 << 20


class GitHubWrites:
    def __init__(self, api: GitHubApi) -> None:
        self.api = api
        self.ctx = api.ctx

    async def fields(self, request: Request) -> dict[str, object]:
        """The JSON object of the request; 400 when it is not one."""
        body = await request.body()
        if len(body) > MAX_JSON:
            raise BadRequest("The release JSON is larger than 1 MiB.")
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise BadRequest("Send the release as a JSON object.") from None
        if not isinstance(data, dict):
            raise BadRequest("Send the release as a JSON object.")
        return data

    async def create(self, request: Request) -> Response:
        repository = self.api.repository_name(request)
        data = await self.fields(request)
        tag = data.get("tag_name")
        if not isinstance(tag, str) or not tag:
            missing = {"resource": "Release", "code": "missing_field", "field": "tag_name"}
            raise Unprocessable("tag_name is required.", {"errors": [missing]})
        owner, repo = repository.split("/")
        key = check_release(owner, repo, tag)
        meta = meta_from(data, ReleaseMeta.from_json(None, tag))
        release = await self.ctx.publisher.releases.create(key, meta)
        links = self.api.links(request)
        document = github.release_document(github.release_view(release), links)
        return document_response(request, document, 201)

    async def edit(self, request: Request) -> Response:
        view = await self.api.release_for(request)
        if not view.key:
            raise Unprocessable("The root release (id 1) is the storage root; it cannot be edited.")
        data = await self.fields(request)
        if data.get("tag_name") not in (None, view.tag):
            raise Unprocessable(
                "Renaming a release's tag is not supported here; create a new release."
            )
        release = await self.ctx.publisher.releases.release_of(view.key)
        meta = meta_from(data, release.meta)
        updated = await self.ctx.publisher.releases.update(release, meta)
        links = self.api.links(request)
        return document_response(
            request, github.release_document(github.release_view(updated), links)
        )

    async def delete(self, request: Request) -> Response:
        view = await self.api.release_for(request)
        if not view.key:
            raise Unprocessable("The root release (id 1) cannot be deleted; delete its packages.")
        await self.ctx.publisher.releases.delete(view.key)
        return Response(status_code=204)

    async def upload(self, request: Request) -> Response:
        body = upload_body(request, self.ctx.settings.read_timeout)
        view = await self.api.release_for(request)
        name = request.query_params.get("name", "")

        async def receive(open_upload: OpenUpload) -> str | None:
            await receive_raw(body, await open_upload(name))
            return None

        try:
            published = await self.ctx.publisher.publish(
                receive, False, self.api.expected(request), view.key
            )
        except AlreadyExists:
            raise already_exists("ReleaseAsset", "name", name) from None
        label = request.query_params.get("label", "")
        if label and view.key:
            await self.ctx.publisher.releases.label(view.key, published.package.name, label)
        links = self.api.links(request)
        document = github.asset_document(published.package, links, None, view.key, label)
        return json_response(document, 201)

    async def delete_asset(self, request: Request) -> Response:
        view, package = await self.api.asset_for(request)
        await self.ctx.publisher.delete(f"{view.key}/{package.name}" if view.key else package.name)
        return Response(status_code=204)

    def routes(self) -> list[BaseRoute]:
        api = self.api.prefix
        releases = f"{api}/repos/{{owner}}/{{repo}}/releases"
        uploads = "/api/uploads/repos/{owner}/{repo}/releases/{release_id}/assets"
        routes: list[BaseRoute] = [
            Route(releases, self.create, methods=["POST"]),
            Route(f"{releases}/{{release_id}}", self.edit, methods=["PATCH"]),
            Route(f"{releases}/{{release_id}}", self.delete, methods=["DELETE"]),
            Route(f"{releases}/assets/{{asset_id}}", self.delete_asset, methods=["DELETE"]),
        ]
        if api:
            # One upload URL for every client, as on GitHub Enterprise; its answers link
            # under /api/v3 (which base-URL clients can follow too: PyGithub checks it).
            routes.append(Route(uploads, self.upload, methods=["POST"]))
            routes.append(Route(uploads, self.api.release_assets, methods=["GET"]))
        return routes


def meta_from(data: dict[str, object], current: ReleaseMeta) -> ReleaseMeta:
    """``current`` with what the JSON sets; 422 for a field of the wrong type."""
    values: dict[str, object] = {}
    for field, kind in (("name", str), ("body", str), ("draft", bool), ("prerelease", bool)):
        value = data.get(field)
        if value is None:
            continue
        if not isinstance(value, kind):
            raise Unprocessable(f"{field} must be a {kind.__name__}.")
        values[field] = value
    return replace(
        current,
        name=str(values.get("name") or current.name),
        body=str(values.get("body", current.body)),
        draft=bool(values.get("draft", current.draft)),
        prerelease=bool(values.get("prerelease", current.prerelease)),
    )
