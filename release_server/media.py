"""The media type of a package, from its name: one fixed table, the same on every machine.

Python's ``mimetypes`` reads the host's ``/etc/mime.types`` (absent in the distroless
image) and reports ``.tar.gz`` as ``application/x-tar`` with a separate encoding, which
clients read as an uncompressed tar. Release files get the types their tools expect.
"""

from __future__ import annotations

import mimetypes

_BY_SUFFIX = {
    ".tar.gz": "application/gzip",
    ".tgz": "application/gzip",
    ".gz": "application/gzip",
    ".tar.xz": "application/x-xz",
    ".txz": "application/x-xz",
    ".xz": "application/x-xz",
    ".tar.bz2": "application/x-bzip2",
    ".tbz2": "application/x-bzip2",
    ".bz2": "application/x-bzip2",
    ".tar.zst": "application/zstd",
    ".zst": "application/zstd",
    ".tar": "application/x-tar",
    ".zip": "application/zip",
    ".whl": "application/zip",
    ".jar": "application/java-archive",
    ".7z": "application/x-7z-compressed",
    ".deb": "application/vnd.debian.binary-package",
    ".rpm": "application/x-rpm",
    ".apk": "application/vnd.android.package-archive",
    ".appimage": "application/vnd.appimage",
    ".dmg": "application/x-apple-diskimage",
    ".pkg": "application/octet-stream",
    ".msi": "application/x-msi",
    ".exe": "application/vnd.microsoft.portable-executable",
    ".json": "application/json",
    ".yml": "application/yaml",
    ".yaml": "application/yaml",
    ".txt": "text/plain",
    ".sha256": "text/plain",
    ".sha512": "text/plain",
    ".md": "text/markdown",
    ".sig": "application/pgp-signature",
    ".asc": "application/pgp-signature",
    ".sh": "application/x-sh",
}
_LONGEST = max(suffix.count(".") for suffix in _BY_SUFFIX)
#: The standard library's built-in table only (no /etc/mime.types), for everything else.
_BUILT_IN = mimetypes.MimeTypes(filenames=())


def content_type(name: str) -> str:
    lowered = name.lower()
    parts = lowered.split(".")
    for count in range(min(_LONGEST, len(parts) - 1), 0, -1):
        known = _BY_SUFFIX.get("." + ".".join(parts[-count:]))
        if known:
            return known
    guessed, encoding = _BUILT_IN.guess_type(lowered, strict=False)
    return guessed if guessed and not encoding else "application/octet-stream"
