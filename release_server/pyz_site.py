"""PYZ_SITE: the one directory of installed packages the pyz adds to its imports.

The pyz runs as ``python3 -I -S``, which ignores PYTHONPATH and site-packages, so what it
imports is what it holds. A zipapp cannot hold a compiled extension, so the container
image puts Granian (the fast engine) in ``/app/site`` and sets ``PYZ_SITE=/app/site``.
Nothing is added unless the variable names a directory, and only a directory nobody but
its owner (root, or the user running the server) can write to: the server must never
import code that another user could have put there. The directory goes last on
``sys.path``, so it adds packages and never replaces one the pyz holds.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping

SITE_ENV = "PYZ_SITE"


def add_site(environ: Mapping[str, str] = os.environ, path: list[str] = sys.path) -> str | None:
    """Append PYZ_SITE's directory to ``path``; or, when it is unsafe or no directory,
    why not as one line that says what to do. Unset or empty: nothing to do."""
    site = environ.get(SITE_ENV, "")
    if not site:
        return None
    if not os.path.isabs(site):
        return f"{SITE_ENV}: {site!r} is not an absolute path: give the directory's full path"
    try:
        info = os.stat(site)
    except OSError as problem:
        return f"{SITE_ENV}: {site!r}: {problem.strerror}: give an existing directory, or unset it"
    if not stat.S_ISDIR(info.st_mode):
        return f"{SITE_ENV}: {site!r} is not a directory"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"{SITE_ENV}: {site!r} is writable by its group or others: the server imports "
            f"code from it, so make it writable by its owner only (chmod go-w {site})"
        )
    if info.st_uid not in (0, os.geteuid()):
        return (
            f"{SITE_ENV}: {site!r} belongs to uid {info.st_uid}: the server imports code "
            "from it, so it must belong to root or to the user running the server"
        )
    if site not in path:
        path.append(site)
    return None
