"""One package by name: download (GET/HEAD), upload (PUT raw, POST multipart), delete."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..download import FileDownload
from ..errors import BadRequest, InvalidName, TooLarge
from ..http import json_response
from ..names import check_name
from ..package import package_document
from ..publish import Receiver
from ..storage import Reader
from ..uploads import (
    MULTIPART_SLACK,
    MultipartReceiver,
    OpenUpload,
    parse_checksum,
    receive_raw,
)
from .context import Context, upload_body

ASSET_PATH = "/assets/{filename:anytext}"


class Assets:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- reading -------------------------------------------------------------------------------

    async def get(self, request: Request) -> Response:
        return await self.send(request, await self.ctx.storage.open(asset_name(request)))

    async def send(
        self, request: Request, reader: Reader, media_type: str | None = None
    ) -> Response:
        """Answer with the pinned version ``reader`` (which the answer then owns)."""
        storage, metrics = self.ctx.storage, self.ctx.metrics
        key = reader.package.name

        async def downloaded() -> None:
            await storage.count_download(key, reader.version)
            metrics.count("downloads")

        try:
            return FileDownload(
                reader,
                request.headers,
                head=request.method == "HEAD",
                media_type=media_type,
                on_complete=downloaded,
                stall_timeout=self.ctx.settings.read_timeout,
            )
        except BaseException:
            await reader.close()
            raise

    # -- writing -------------------------------------------------------------------------------

    async def delete(self, request: Request) -> Response:
        await self.ctx.publisher.delete(asset_name(request))
        return Response(status_code=204)

    async def put(self, request: Request) -> Response:
        body = upload_body(request, self.ctx.settings.read_timeout)

        async def receive(open_upload: OpenUpload) -> str | None:
            await receive_raw(body, await open_upload(asset_name(request)))
            return None

        return await self.store(request, receive, created_status=201, slack=0)

    async def post(self, request: Request) -> Response:
        body = upload_body(request, self.ctx.settings.read_timeout)
        content_type = request.headers.get("content-type", "")

        async def receive(open_upload: OpenUpload) -> str | None:
            receiver = MultipartReceiver(content_type, open_upload)
            await receiver.feed(body)
            return receiver.sha256

        return await self.store(request, receive, created_status=200, slack=MULTIPART_SLACK)

    async def store(
        self,
        request: Request,
        receive: Receiver,
        *,
        created_status: int,
        slack: int,
        release: str = "",
    ) -> Response:
        """Publish what ``receive`` reads into ``release`` ("" = the root release); the
        answer is the package's JSON."""
        overwrite = parse_overwrite(request.query_params.get("overwrite"))
        expected = parse_checksum(
            request.headers.get("x-checksum-sha256"), "The X-Checksum-Sha256 header"
        )
        limit = self.ctx.settings.max_upload_size
        declared = request.headers.get("content-length")
        if limit and declared and declared.isdigit() and int(declared) > limit + slack:
            raise TooLarge(limit)
        published = await self.ctx.publisher.publish(receive, overwrite, expected, release)
        links = self.ctx.links(request)
        name = published.package.name
        url = links.download(name, release)
        answer = {**package_document(published.package, url), "pruned": published.pruned}
        status = 200 if published.replaced else created_status
        headers = {"location": url} if status == 201 else None
        return json_response(answer, status, headers)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/upload", self.post, methods=["POST"]),
            Route(ASSET_PATH, self.get, methods=["GET", "HEAD"]),
            Route(ASSET_PATH, self.put, methods=["PUT"]),
            Route(ASSET_PATH, self.delete, methods=["DELETE"]),
        ]


def asset_name(request: Request, prefix: str = "/assets/", param: str = "filename") -> str:
    """The name at the end of the path, after ``prefix``, percent-decoded strictly from
    the raw path (the server's own decoding turns bytes that are not UTF-8 into U+FFFD),
    then validated."""
    raw = request.scope.get("raw_path") or b""
    start = (request.scope.get("root_path", "") + prefix).encode("latin-1")
    if not raw.startswith(start):
        return check_name(request.path_params[param])
    try:
        name = unquote_to_bytes(raw[len(start) :].split(b"?", 1)[0]).decode("utf-8")
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
    raise BadRequest("overwrite must be true or false.")
