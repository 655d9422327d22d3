"""The S3 side of the S3 backend: where (``s3://bucket/prefix``), the boto3 client, and
its errors as OSError, so a failing bucket answers 503 like a failing disk does.

boto3 is an optional extra (``release-server[s3]``): it is imported only here, and only
when ``STORAGE_URL`` names a bucket. Endpoint, region and credentials come from the
standard AWS variables and files (``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``), as every AWS tool
reads them.
"""

from __future__ import annotations

import contextlib
import errno
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Parallel requests one process makes (downloads in flight, upload parts, listings).
MAX_CONNECTIONS = 64


class S3Error(OSError):
    """A request to the bucket failed; ``strerror`` says why, in one line."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


class MissingBoto3(RuntimeError):
    """STORAGE_URL names a bucket but boto3 is not installed."""


@dataclass(frozen=True, slots=True)
class Location:
    """A bucket and a key prefix ("" or ending in ``/``)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Location:
        """``s3://bucket`` or ``s3://bucket/some/prefix``; ValueError saying what to write."""
        if not url.startswith("s3://"):
            raise ValueError(
                f"{url!r} is not an s3:// URL; write s3://BUCKET or s3://BUCKET/PREFIX"
            )
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        segments = [s for s in prefix.split("/") if s]
        if not bucket or any(s in (".", "..") for s in segments):
            raise ValueError(f"{url!r}: write s3://BUCKET or s3://BUCKET/PREFIX (no . or ..)")
        return cls(bucket, "".join(f"{s}/" for s in segments))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def make_client() -> Any:
    """A thread-safe boto3 S3 client configured from the standard AWS environment."""
    try:
        import boto3
        import botocore
        from botocore.config import Config
    except ImportError:
        raise MissingBoto3(
            "a bucket needs boto3, which is not installed here: install "
            "release-server[s3] (or use release-server-s3.pyz, or the container image)"
        ) from None
    from .s3_zipapp import unpack_botocore_data

    unpack_botocore_data(botocore)
    config = Config(
        signature_version="s3v4",
        max_pool_connections=MAX_CONNECTIONS,
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
        tcp_keepalive=True,
    )
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=iso_timestamp
    )
    session = boto3.session.Session(botocore_session=core)
    client = session.client("s3", config=config)
    if client.meta.endpoint_url.startswith("http://"):
        # Over plain HTTP botocore signs the sha256 of every body, which S3 checks: the
        # CRC32 it adds by default is a second pass over each part that checks nothing more.
        once = Config(request_checksum_calculation="when_required")
        client = session.client("s3", config=config.merge(once))
    return client


def iso_timestamp(value: Any) -> datetime:
    """A timestamp of a response. botocore's own parser (dateutil) took two thirds of the
    CPU of a LIST of 11,000 objects (a repository of 1,000 releases, re-read every few
    seconds); S3's ISO 8601 times parse with the standard library, anything else (HTTP
    dates of headers, numbers) as botocore does."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)  # type: ignore[no-any-return]


def error_code(error: BaseException) -> str:
    """The S3 error code of a botocore ClientError ("" for other errors)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(code or status or "")


def is_missing(error: BaseException) -> bool:
    return error_code(error) in ("NoSuchKey", "404", "NotFound")


def is_precondition_failed(error: BaseException) -> bool:
    return error_code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def storage_error(error: BaseException, where: Location) -> S3Error:
    """One clear line for any boto3/botocore failure."""
    code = error_code(error)
    if code in ("NoSuchBucket", "404", "NotFound"):
        return S3Error(f"bucket {where.bucket!r} does not exist")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return S3Error(f"access to {where} is denied ({code}): check the AWS credentials")
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return S3Error(f"{where} is not usable: {text}")


class Missing(S3Error):
    """The key (or bucket) is not there."""


class PreconditionFailed(S3Error):
    """A conditional request lost: ``If-None-Match: *`` found the key taken."""


class Bucket:
    """The client bound to one bucket and prefix; every call blocks (run it in a thread)
    and raises S3Error (Missing, PreconditionFailed) instead of botocore's errors."""

    def __init__(self, where: Location, client: Any = None) -> None:
        self.where = where
        self.client = client if client is not None else make_client()
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)

    def key(self, name: str) -> str:
        return self.where.prefix + name

    def call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.where.bucket, **kwargs)
        except self._errors as error:
            if is_precondition_failed(error):
                raise PreconditionFailed(f"{operation}: precondition failed") from None
            if is_missing(error) and operation != "head_bucket":
                raise Missing(f"{operation}: no such key") from None
            raise storage_error(error, self.where) from None

    def get_bytes(self, name: str) -> tuple[bytes, str]:
        """The body and ETag of a small object. Raises Missing."""
        answer = self.call("get_object", Key=self.key(name))
        try:
            return answer["Body"].read(), answer.get("ETag", "")
        except self._errors as error:
            raise storage_error(error, self.where) from None
        finally:
            answer["Body"].close()

    def put_bytes(self, name: str, data: bytes, *, create_only: bool = False) -> None:
        """Store a small object; with ``create_only`` PreconditionFailed if it exists."""
        extra = {"IfNoneMatch": "*"} if create_only else {}
        self.call("put_object", Key=self.key(name), Body=data, **extra)

    def delete(self, name: str) -> None:
        self.call("delete_object", Key=self.key(name))

    def entries(self, below: str, delimiter: str = "") -> tuple[list[dict[str, Any]], list[str]]:
        """Every object below ``below`` (a prefix relative to ours) and, with a delimiter,
        the names of the levels one down; keys returned relative to our prefix."""
        objects: list[dict[str, Any]] = []
        levels: list[str] = []
        kwargs: dict[str, Any] = {"Prefix": self.key(below)}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        strip = len(self.where.prefix)
        while True:
            page = self.call("list_objects_v2", **kwargs)
            for item in page.get("Contents", ()):
                objects.append({**item, "Key": item["Key"][strip:]})
            for level in page.get("CommonPrefixes", ()):
                levels.append(level["Prefix"][strip:])
            if not page.get("IsTruncated"):
                return objects, levels
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
