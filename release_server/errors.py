"""The error tree: every refusal the server can give, each with its HTTP status.

Code below the endpoints raises these and knows nothing of HTTP answers; ``asgi.py`` turns
any of them into one JSON answer (``{"detail": ..., "message": ...}``) in one place::

    HTTPError                     any refusal; ``status`` and a message saying what to do
    ├── BadRequest                400  malformed input
    │   ├── InvalidName           400  not a valid package name (names.py)
    │   └── UploadInterrupted     400  the client went away mid-upload
    ├── Unauthorized              401  no usable token (sends WWW-Authenticate)
    ├── Forbidden                 403  a valid token without the scope needed
    ├── NotFound                  404  no such package, release or route
    ├── RequestTimeout            408  the body stopped arriving
    ├── Conflict                  409  the name is taken
    │   └── AlreadyExists         409  ... and overwrite was not asked for
    ├── TooLarge                  413  over MAX_UPLOAD_SIZE
    ├── RangeNotSatisfiable       416  a Range outside the file
    ├── Unprocessable             422  well-formed but unacceptable
    │   ├── ChecksumMismatch      422  the bytes are not what the client said
    │   └── EmptyUpload           422  a 0-byte package
    ├── StorageUnavailable        503  storage cannot be read or written right now
    └── DiskFull                  507  no space left; nothing was stored
"""

from __future__ import annotations


class HTTPError(Exception):
    """A refusal with the status to answer and a message that tells the client what to do."""

    status = 500

    def __init__(
        self,
        message: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        #: More fields of the JSON answer (GitHub's ``errors`` list, say).
        self.extra = extra or {}


class BadRequest(HTTPError):
    status = 400


class InvalidName(BadRequest):
    """A name that is not one valid path segment (see names.py)."""


class UploadInterrupted(BadRequest):
    def __init__(self) -> None:
        super().__init__("The upload was interrupted; nothing was stored.")


class Unauthorized(HTTPError):
    status = 401

    def __init__(self, message: str, scheme: str = "Bearer") -> None:
        """``scheme`` is the challenge: Basic where a browser should ask for the token."""
        super().__init__(message, {"WWW-Authenticate": f'{scheme} realm="release-server"'})


class Forbidden(HTTPError):
    status = 403


class NotFound(HTTPError):
    status = 404


class RequestTimeout(HTTPError):
    status = 408


class Conflict(HTTPError):
    status = 409


class AlreadyExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"A package named {name!r} already exists; add ?overwrite=true to replace it."
        )
        self.name = name


class TooLarge(HTTPError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The upload is larger than MAX_UPLOAD_SIZE ({limit} bytes). Nothing was stored; "
            "send a smaller file or raise the limit on the server."
        )
        self.limit = limit


class RangeNotSatisfiable(HTTPError):
    status = 416

    def __init__(self, size: int) -> None:
        super().__init__(
            "The requested range is outside the file; ask for bytes below its size "
            "(Content-Range).",
            {"content-range": f"bytes */{size}"},
        )


class Unprocessable(HTTPError):
    status = 422

    def __init__(self, message: str, extra: dict[str, object] | None = None) -> None:
        super().__init__(message, extra=extra)


class ChecksumMismatch(Unprocessable):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(
            f"sha256 mismatch: expected {expected}, received {actual}. "
            "Nothing was stored; upload the file again."
        )


class EmptyUpload(Unprocessable):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"The file {name!r} is empty (0 bytes), which is almost always a broken build. "
            "Nothing was stored; the previous version is intact."
        )


class StorageUnavailable(HTTPError):
    status = 503


class DiskFull(HTTPError):
    status = 507

    def __init__(self) -> None:
        super().__init__("The storage volume is full. Nothing was stored; free some space.")


def no_such_package(key: str) -> NotFound:
    return NotFound(f"No package named {key!r}; see /packages for what is published.")


def level_taken(key: str) -> Conflict:
    """A path level of ``key`` is a package of an upper release (a root file named like
    the owner, say), so the release cannot be made there."""
    return Conflict(
        f"Cannot store {key!r}: a level of that path is already a package (for example a "
        "file in the root release named like the owner). Use another owner, repository or tag."
    )


def already_exists(resource: str, field: str, value: str) -> Unprocessable:
    """GitHub's 422 for a taken tag or asset name (gh and octokit look for this code)."""
    return Unprocessable(
        f"Validation Failed: a {resource} with {field} {value!r} already exists.",
        {
            "message": "Validation Failed",  # GitHub's exact words; ``detail`` says more
            "errors": [{"resource": resource, "code": "already_exists", "field": field}],
        },
    )
