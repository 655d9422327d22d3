"""HTTP: parse the request, call storage and retention, answer. One place per route."""

from __future__ import annotations

import importlib.resources
import logging
import math
import os
from collections.abc import Awaitable, Callable
from urllib.parse import quote, unquote_to_bytes, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from . import github, page
from .auth import AuthError, check_bearer
from .config import Settings
from .download import FileDownload
from .http import AnswerBeforeBody, base_url, error, json_bytes, json_response, prefers_html
from .logs import log_event
from .metrics import Metrics
from .names import InvalidName, check_name
from .package import Package
from .retention import choose_pruned
from .storage import (
    AlreadyExists,
    ChecksumMismatch,
    DiskFull,
    Listing,
    NotFound,
    Storage,
    TooLarge,
    Upload,
)
from .uploads import (
    MULTIPART_SLACK,
    Body,
    MultipartReceiver,
    Rejected,
    parse_checksum,
    receive_raw,
)

logger = logging.getLogger("release_server")
#: Reads a body into the Upload(s) it opens by name; returns a form-sent sha256, if any.
Receiver = Callable[["Body", Callable[[str], Upload]], Awaitable[str | None]]
AVATAR = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect width="16" height="16" rx="3" fill="#2f6feb"/>'
    b'<path d="M4 9l4-5 4 5H9v3H7V9z" fill="#fff"/></svg>'
)


class AnyText(Convertor[str]):
    """Like ``path`` but also matches control characters, so names.py (not the router)
    decides, and a bad name gets a 400 that says why instead of a 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyText())


class Api:
    """The routes, bound to one Settings and one Storage."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.metrics = Metrics()
        self._documents: dict[tuple[str, str, str], bytes] = {}
        self._documents_version = ""
        self.openapi = (
            importlib.resources.files("release_server").joinpath("openapi.yaml").read_bytes()
        )

    # -- shared steps --------------------------------------------------------------------------

    async def listing(self) -> Listing:
        return self.storage.cached_listing() or await run_in_threadpool(self.storage.listing)

    def base(self, request: Request) -> str:
        return base_url(request, self.settings.public_url, self.settings.trust_proxy)

    def links(self, request: Request, api: str = "", repository: str = "") -> github.Links:
        root = self.base(request)
        return github.Links(root, root + api, repository or self.settings.repository)

    def package_json(self, package: Package, root: str) -> dict[str, object]:
        return {
            "name": package.name,
            "size": package.size,
            "created_at": package.created_at,
            "sha256": package.sha256,
            "downloads": package.downloads,
            "url": f"{root}/assets/{quote(package.name, safe='')}",
        }

    async def cached_document(
        self, listing: Listing, kind: str, key: str, build: Callable[[], object]
    ) -> bytes:
        """Serialize a document once per listing version and base URL (cheap polling);
        a large one is built in a worker thread so the event loop keeps serving."""
        if listing.version != self._documents_version:
            self._documents = {}
            self._documents_version = listing.version
        cache_key = (kind, key, listing.version)
        body = self._documents.get(cache_key)
        if body is None:
            if len(self._documents) > 64:
                self._documents.clear()
            body = await run_in_threadpool(lambda: json_bytes(build()))
            self._documents[cache_key] = body
        return body

    @staticmethod
    def cached_response(request: Request, body: bytes, version: str, media: str) -> Response:
        etag = f'"{version}-{len(body):x}"'
        headers = {"etag": etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, headers=headers, media_type=media)

    def authorize(self, request: Request) -> Response | None:
        try:
            check_bearer(request.headers.get("authorization"), self.settings.auth_token)
        except AuthError as refusal:
            return error(401, str(refusal), {"WWW-Authenticate": 'Bearer realm="release-server"'})
        return None

    # -- health --------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("OK")

    async def readyz(self, request: Request) -> Response:
        problem = await run_in_threadpool(self.storage.problem)
        if problem:
            return PlainTextResponse(problem, status_code=503)
        return PlainTextResponse("OK")

    async def metrics_text(self, request: Request) -> Response:
        listing = await self.listing()
        return PlainTextResponse(
            self.metrics.render(listing.packages),
            media_type="text/plain; version=0.0.4",
        )

    async def openapi_yaml(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/yaml")

    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/packages", 302)

    async def avatar(self, request: Request) -> Response:
        return Response(AVATAR, media_type="image/svg+xml")

    # -- listing -------------------------------------------------------------------------------

    async def packages(self, request: Request) -> Response:
        wanted = request.query_params.get("format")
        if wanted not in (None, "json", "html"):
            return error(422, "Unknown format: use ?format=json or ?format=html.")
        html = wanted == "html" or (wanted is None and prefers_html(request.headers.get("accept")))
        listing = await self.listing()
        root = self.base(request)
        if html:
            body = page.render_page(listing.packages, base_url=root)
            return Response(
                body, media_type="text/html", headers={**page.PAGE_HEADERS, "vary": "Accept"}
            )
        body = await self.cached_document(
            listing,
            "packages",
            root,
            lambda: [self.package_json(p, root) for p in listing.packages],
        )
        response = self.cached_response(request, body, listing.version, "application/json")
        response.headers["vary"] = "Accept"
        return response

    async def latest(self, request: Request) -> Response:
        return await self.release_response(request, self.links(request))

    async def release_response(self, request: Request, links: github.Links) -> Response:
        listing = await self.listing()
        body = await self.cached_document(
            listing,
            "release",
            f"{links.api} {links.repository}",
            lambda: github.release_document(listing.packages, links, listing.dir_mtime_ns),
        )
        return self.cached_response(request, body, listing.version, "application/json")

    # -- GitHub REST API -----------------------------------------------------------------------

    def api_links(self, request: Request, api: str) -> github.Links:
        params = request.path_params
        owner, repo = quote(params["owner"], safe=""), quote(params["repo"], safe="")
        return self.links(request, api, f"{owner}/{repo}")

    def github_routes(self, api: str) -> list[BaseRoute]:
        """The GitHub-shaped routes, mounted at ``api`` ("" or "/api/v3")."""

        async def release(request: Request) -> Response:
            return await self.release_response(request, self.api_links(request, api))

        async def release_by_id(request: Request) -> Response:
            if request.path_params["release_id"] != str(github.RELEASE_ID):
                return error(404, "No such release: this server has one release, id 1.")
            return await release(request)

        async def release_by_tag(request: Request) -> Response:
            if request.path_params["tag"] != github.TAG:
                return error(404, "No such release: the only tag here is 'latest'.")
            return await release(request)

        async def releases(request: Request) -> Response:
            links = self.api_links(request, api)
            listing = await self.listing()
            document = github.release_document(listing.packages, links, listing.dir_mtime_ns)
            return paginated(request, [document], links.releases)

        async def assets(request: Request) -> Response:
            if request.path_params["release_id"] != str(github.RELEASE_ID):
                return error(404, "No such release: this server has one release, id 1.")
            links = self.api_links(request, api)
            listing = await self.listing()
            user = github.user_document(links)
            return paginated(
                request,
                [github.asset_document(p, links, user) for p in listing.packages],
                f"{links.release}/assets",
            )

        async def asset(request: Request) -> Response:
            listing = await self.listing()
            wanted = request.path_params["asset_id"]
            for package in listing.packages:
                if str(github.asset_id(package.name)) == wanted:
                    break
            else:
                return error(404, f"No asset with id {wanted}; list them at /latest.")
            accept = request.headers.get("accept", "")
            if "application/octet-stream" in accept.lower():
                return await self.send_file(
                    request,
                    package.name,
                    head=request.method == "HEAD",
                    media_type="application/octet-stream",
                )
            links = self.api_links(request, api)
            return json_response(github.asset_document(package, links))

        async def user(request: Request) -> Response:
            if request.path_params["login"] != github.LOGIN:
                return error(404, f"No such user; this server's only user is {github.LOGIN}.")
            return json_response(github.user_document(self.links(request, api)))

        async def user_list(request: Request) -> Response:
            return json_response([])

        repo = f"{api}/repos/{{owner}}/{{repo}}/releases"
        return [
            Route(f"{repo}/latest", release),
            Route(repo, releases),
            Route(f"{repo}/tags/{{tag:path}}", release_by_tag),
            Route(f"{repo}/assets/{{asset_id}}", asset, methods=["GET", "HEAD"]),
            Route(f"{repo}/{{release_id}}", release_by_id),
            Route(f"{repo}/{{release_id}}/assets", assets),
            Route(f"{api}/users/{{login}}", user),
            Route(f"{api}/users/{{login}}/{{rest:path}}", user_list),
        ]

    # -- downloads -----------------------------------------------------------------------------

    async def get_asset(self, request: Request) -> Response:
        try:
            name = asset_name(request)
        except InvalidName as problem:
            return error(400, str(problem))
        return await self.send_file(request, name, head=request.method == "HEAD")

    async def send_file(
        self, request: Request, name: str, head: bool, media_type: str | None = None
    ) -> Response:
        try:
            fd, st = self.storage.open(name)
        except NotFound:
            return error(404, f"No package named {name!r}; see /packages for what is published.")
        try:
            digest = self.storage.known_digest(st) or await run_in_threadpool(
                self.storage.digest, fd, st
            )
        except BaseException:
            os.close(fd)
            raise
        return FileDownload(
            fd,
            st,
            name,
            digest,
            request.headers,
            head=head,
            media_type=media_type,
            on_complete=lambda: self.downloaded(st),
            stall_timeout=self.settings.read_timeout,
        )

    def downloaded(self, st: os.stat_result) -> None:
        self.storage.count_download(st)
        self.metrics.count("downloads")

    # -- writes --------------------------------------------------------------------------------

    async def delete_asset(self, request: Request) -> Response:
        refused = self.authorize(request)
        if refused:
            return refused
        try:
            name = asset_name(request)
            package = await run_in_threadpool(self.storage.delete, name)
        except InvalidName as problem:
            return error(400, str(problem))
        except NotFound:
            return error(404, f"No package named {name!r}; nothing was deleted.")
        self.metrics.count("deletes")
        log_event(logger, "deleted", name=name, size=package.size, sha256=package.sha256 or None)
        return Response(status_code=204)

    async def put_asset(self, request: Request) -> Response:
        async def receive(body: Body, open_upload: Callable[[str], Upload]) -> str | None:
            await receive_raw(body, open_upload(asset_name(request)))
            return None

        return await self.store(request, receive, created_status=201)

    async def post_upload(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")

        async def receive(body: Body, open_upload: Callable[[str], Upload]) -> str | None:
            if not content_type.lower().startswith("multipart/form-data"):
                raise Rejected(400, "Send the file as multipart/form-data in field 'file'.")
            receiver = MultipartReceiver(content_type, open_upload)
            await receiver.feed(body)
            return receiver.sha256

        return await self.store(request, receive, created_status=200, multipart=True)

    async def store(
        self,
        request: Request,
        receive: Receiver,
        *,
        created_status: int,
        multipart: bool = False,
    ) -> Response:
        """Store an upload; an error answered before the body was read closes the connection."""
        body = Body(request.stream(), self.settings.read_timeout)
        response = await self.receive_and_publish(request, body, receive, created_status, multipart)
        if response.status_code >= 400 and not body.complete:
            return AnswerBeforeBody(response)
        return response

    async def receive_and_publish(
        self,
        request: Request,
        body: Body,
        receive: Receiver,
        created_status: int,
        multipart: bool,
    ) -> Response:
        """Authorize, stream the body into a temp file, verify, publish, apply retention."""
        refused = self.authorize(request)
        if refused:
            return refused
        limit = self.settings.max_upload_size
        uploads: list[Upload] = []
        try:
            overwrite = parse_overwrite(request.query_params.get("overwrite"))
            expected = parse_checksum(
                request.headers.get("x-checksum-sha256"), "The X-Checksum-Sha256 header"
            )
            declared = request.headers.get("content-length")
            slack = MULTIPART_SLACK if multipart else 0
            if limit and declared and declared.isdigit() and int(declared) > limit + slack:
                raise Rejected(413, too_large(limit))

            def open_upload(chosen: str) -> Upload:
                try:
                    check_name(chosen)
                except InvalidName as problem:
                    raise Rejected(400, str(problem)) from None
                if not overwrite and os.path.lexists(self.storage.root / chosen):
                    raise Rejected(409, exists_message(chosen))
                upload = self.storage.begin_upload(chosen, limit)
                uploads.append(upload)
                return upload

            sent = await receive(body, open_upload)
            upload = uploads[0]
            if sent and expected and sent != expected:
                raise Rejected(400, "The 'sha256' field and X-Checksum-Sha256 header disagree.")
            digest = await run_in_threadpool(upload.finish, expected or sent)
            package, replaced = await run_in_threadpool(
                self.storage.publish, upload, upload.name, digest, overwrite
            )
        except Rejected as rejection:
            if rejection.status == 408:
                chosen = uploads[0].name if uploads else None
                log_event(logger, "upload timed out", logging.WARNING, name=chosen)
            return error(rejection.status, rejection.message)
        except InvalidName as problem:
            return error(400, str(problem))
        except TooLarge as problem:
            return error(413, too_large(problem.limit))
        except ChecksumMismatch as problem:
            return error(422, f"{problem}. Nothing was stored; upload the file again.")
        except AlreadyExists as problem:
            return error(409, exists_message(str(problem)))
        except DiskFull:
            return error(507, "The storage volume is full. Nothing was stored; free some space.")
        except ClientDisconnect:
            chosen = uploads[0].name if uploads else None
            log_event(logger, "upload aborted by the client", logging.WARNING, name=chosen)
            return error(400, "The upload was interrupted; nothing was stored.")
        finally:
            for upload in uploads:
                await run_in_threadpool(upload.discard)
        pruned = await run_in_threadpool(self.prune, package.name)
        self.metrics.count("uploads")
        self.metrics.count("upload_bytes", package.size)
        self.metrics.count("pruned", len(pruned))
        log_event(
            logger,
            "uploaded",
            name=package.name,
            size=package.size,
            sha256=package.sha256,
            replaced=replaced,
        )
        body = {**self.package_json(package, self.base(request)), "pruned": pruned}
        status = 200 if replaced else created_status
        headers = {"location": body["url"]} if status == 201 else None
        return json_response(body, status, headers)

    def prune(self, keep: str) -> list[str]:
        """Apply retention after an upload; returns the names removed. Blocks."""
        listing = self.storage.listing()
        pruned = []
        for name in choose_pruned(listing.packages, self.settings.max_packages, keep):
            try:
                package = self.storage.delete(name)
            except NotFound:
                continue  # another process pruned it first
            pruned.append(name)
            log_event(logger, "pruned", name=name, size=package.size, sha256=package.sha256 or None)
        return pruned


def asset_name(request: Request) -> str:
    """The {name} of /assets/{name}, percent-decoded strictly from the raw path (the
    server's own decoding turns bytes that are not UTF-8 into U+FFFD), then validated."""
    raw = request.scope.get("raw_path") or b""
    prefix = request.scope.get("root_path", "").encode("latin-1") + b"/assets/"
    if not raw.startswith(prefix):
        return check_name(request.path_params["filename"])
    try:
        name = unquote_to_bytes(raw[len(prefix) :].split(b"?", 1)[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidName("Invalid file name: it is not valid UTF-8.") from None
    return check_name(name)


def parse_overwrite(value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise Rejected(400, "overwrite must be true or false.")


def too_large(limit: int) -> str:
    return (
        f"The upload is larger than MAX_UPLOAD_SIZE ({limit} bytes). Nothing was stored; "
        "send a smaller file or raise the limit on the server."
    )


def exists_message(name: str) -> str:
    return f"A package named {name!r} already exists; add ?overwrite=true to replace it."


def paginated(request: Request, items: list, url: str) -> Response:
    """A JSON list page with GitHub's ``per_page``/``page`` and ``Link`` header; ``url``
    is the list's external address (links stay on the client's host and prefix)."""
    try:
        per_page = min(max(int(request.query_params.get("per_page", 30)), 1), 100)
        number = max(int(request.query_params.get("page", 1)), 1)
    except ValueError:
        return error(422, "per_page and page must be whole numbers.")
    last = max(math.ceil(len(items) / per_page), 1)
    start = (number - 1) * per_page
    rels = {"first": 1, "last": last}
    if number > 1:
        rels["prev"] = min(number - 1, last)
    if number < last:
        rels["next"] = number + 1
    link = ", ".join(
        f'<{url}?{urlencode({"per_page": per_page, "page": value})}>; rel="{rel}"'
        for rel, value in rels.items()
    )
    return json_response(items[start : start + per_page], headers={"link": link})


def routes(api: Api) -> list[BaseRoute]:
    assets = "/assets/{filename:anytext}"
    return [
        Route("/", api.home),
        Route("/healthz", api.healthz, methods=["GET", "HEAD"]),
        Route("/health", api.healthz, methods=["GET", "HEAD"]),
        Route("/readyz", api.readyz, methods=["GET", "HEAD"]),
        Route("/openapi.yaml", api.openapi_yaml),
        Route("/metrics", api.metrics_text),
        Route("/avatar.svg", api.avatar),
        Route("/packages", api.packages),
        Route("/latest", api.latest),
        Route("/upload", api.post_upload, methods=["POST"]),
        Route(assets, api.get_asset, methods=["GET", "HEAD"]),
        Route(assets, api.put_asset, methods=["PUT"]),
        Route(assets, api.delete_asset, methods=["DELETE"]),
        *api.github_routes(""),
        *api.github_routes("/api/v3"),
    ]
