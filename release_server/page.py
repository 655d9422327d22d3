"""The browser page for ``GET /packages``: packages in, one self-contained HTML document out.

The page loads nothing from anywhere (air-gapped installs), so its CSS and script are inline.
They are constants (in ``page_assets``), never built from data, so their sha256 hashes are
computed once here and the Content-Security-Policy can forbid every other script and style.

Packages are shown by family (SPEC §8.2): one row per family with its newest file, the older
versions one click away under it, and for a versioned family the stable link
``{base}/latest/download/{name without the version}`` that always serves the newest file.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from release_server.package import Package
from release_server.page_assets import CSS, ICON, SCRIPT
from release_server.versions import split_version, stable_name

__all__ = [
    "CSS",
    "PAGE_HEADERS",
    "SCRIPT",
    "Family",
    "command",
    "document",
    "files_table",
    "group_families",
    "human_size",
    "render_page",
]

#: A file's download URL from its name.
Download = Callable[[str], str]


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src {_hash(CSS)}; script-src {_hash(SCRIPT)}; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: int) -> str:
    """Bytes as people read them: ``512 B``, ``1.5 KiB``, ``120 MiB`` (binary units)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


@dataclass(frozen=True, slots=True)
class Family:
    """The files of one family, newest first, with what the page shows of them."""

    files: tuple[Package, ...]
    versions: tuple[str | None, ...]  # the version of each file, None for an unversioned name
    stable: str | None  # the name without its version (the stable link's last part), or None


def group_families(packages: Sequence[Package]) -> list[Family]:
    """Group ``packages`` (newest first) by family, keeping that order for the families and
    within each. The key is ``(family, has no version)``, so an unversioned file named like a
    family pattern (``tool-*.zip``) never joins the versioned ``tool-1.2.zip``.

    A family gets a stable link only if that link leads to its newest file. The server
    answers ``/latest/download/{stable}`` with the file of exactly that name if there is one,
    else with the newest file whose name without its version is ``stable``: the newest file
    of the first family (in this order) with that stable name. So ``tool.zip`` next to
    ``tool-1.2.zip``, or a second family with the same stable name (``tool_1.0.zip``), gets none.
    """
    groups: dict[tuple[str, bool], list[tuple[Package, str | None]]] = {}
    for package in packages:
        split = split_version(package.name)
        groups.setdefault((split.family, split.version is None), []).append(
            (package, split.version)
        )
    names = {package.name for package in packages}
    claimed: set[str] = set()
    families = []
    for members in groups.values():
        newest, version = members[0]
        stable = None if version is None else stable_name(newest.name)
        if stable is not None and (stable in names or stable in claimed):
            stable = None
        elif stable is not None:
            claimed.add(stable)
        families.append(
            Family(
                files=tuple(package for package, _ in members),
                versions=tuple(version for _, version in members),
                stable=stable,
            )
        )
    return families


def _cells(package: Package, version: str | None, href: str, extra: str = "") -> str:
    name = escape(package.name)
    created = package.created_at
    shown = escape(version) if version else "\u2014"  # an em dash: no version
    # The hash shows its first 12 digits and opens to all 64. Its Copy button, like the link
    # buttons, is added by the script (which alone can copy): ~100 bytes saved per row.
    return (
        f'<td><a href="{escape(href)}" download>{name}</a>{extra}</td>'
        f"<td>{shown}</td>"
        f"<td>{human_size(package.size)}</td>"
        f'<td><time datetime="{created}">{created[:10]} {created[11:19]} UTC</time></td>'
        f"<td>{package.downloads:,}</td>"
        f"<td><details><summary><code>{escape(package.sha256[:12])}</code></summary>"
        f"<code>{escape(package.sha256)}</code></details></td></tr>\n"
    )


def _family(family: Family, download: Download) -> str:
    newest, *older = family.files
    stable = f' data-stable="{escape(quote(family.stable, safe=""))}"' if family.stable else ""
    more = ""
    if older:
        words = "older version" if len(older) == 1 else "older versions"
        more = f'<details class="more"><summary>{len(older):,} {words}</summary></details>'
    return (
        f"<tbody><tr{stable}>"
        + _cells(newest, family.versions[0], download(newest.name), more)
        + "".join(
            "<tr>" + _cells(package, version, download(package.name))
            for package, version in zip(older, family.versions[1:], strict=True)
        )
        + "</tbody>\n"
    )


def _count(families: int, packages: int) -> str:
    family_word = "family" if families == 1 else "families"
    package_word = "package" if packages == 1 else "packages"
    return f"{families:,} {family_word}, {packages:,} {package_word}"


def command(text: str, label: str) -> str:
    """A shell command in a box with its Copy button."""
    return (
        f'<div class="cmd"><code>{escape(text)}</code>'
        f'<button type="button" class="copy" aria-label="{label}">Copy</button></div>'
    )


def files_table(packages: Sequence[Package], download: Download, latest: str) -> str:
    """The filter and the table of ``packages`` (newest first) by family, as /packages shows
    them; ``download(name)`` is a file's URL and ``latest`` the stable links' base
    (``.../latest/download/``)."""
    families = group_families(packages)
    return (
        '<div class="tools" hidden><label for="filter">Filter</label>'
        '<input id="filter" name="q" type="search" placeholder="Part of a name" '
        'autocomplete="off" spellcheck="false" aria-describedby="count">'
        f'<p id="count" role="status">{_count(len(families), len(packages))}</p></div>\n'
        f'<table class="files" data-latest="{escape(latest)}">'
        "<caption>Packages by family, newest first; older versions under each"
        "</caption><thead><tr>"
        '<th scope="col">Name</th><th scope="col">Version</th><th scope="col">Size</th>'
        '<th scope="col">Uploaded</th><th scope="col">Downloads</th>'
        '<th scope="col">SHA-256</th></tr></thead>\n'
        + "".join(_family(family, download) for family in families)
        + '</table>\n<p id="none" class="empty" hidden>No package name matches '
        "the filter.</p>\n"
        '<p class="hint note">A stable link always downloads the newest file of its '
        f"family: <code>{escape(latest)}</code> and the name without its version.</p>\n"
    )


def document(title: str, body: str, footer: Sequence[tuple[str, str]]) -> str:
    """A whole page: ``title`` as its heading, ``body`` (markup), the ``footer`` links
    (URL, text), the inline CSS and script."""
    links = " · ".join(f'<a href="{escape(url)}">{escape(text)}</a>' for url, text in footer)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f'<link rel="icon" href="{ICON}">'
        f"<title>{escape(title)} · release-server</title><style>{CSS}</style></head>\n"
        f"<body><main><h1>{escape(title)}</h1>\n{body}</main>\n"
        f"<footer>{links}</footer>\n"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def render_page(packages: Sequence[Package], *, base_url: str) -> str:
    """The whole page; ``packages`` come sorted newest first and keep that order."""
    if packages:
        body = (
            '<p class="hint">Fetch the newest release as JSON:</p>'
            + command(f"curl -fsSL {base_url}/latest", "Copy the curl command")
            + files_table(
                packages,
                lambda name: f"{base_url}/assets/{quote(name, safe='')}",
                f"{base_url}/latest/download/",
            )
        )
    else:
        body = (
            '<section class="empty"><h2>No packages yet</h2>'
            '<p class="hint">Upload one with a token (replace <code>$TOKEN</code> and the '
            "file):</p>"
            + command(
                f'curl -fsS -H "Authorization: Bearer $TOKEN" -F file=@dist/app.zip '
                f"{base_url}/upload",
                "Copy the upload command",
            )
            + "</section>\n"
        )
    footer = [
        (f"{base_url}/packages?format=json", "JSON"),
        (f"{base_url}/latest", "Latest release"),
        (f"{base_url}/", "Repositories"),
        (f"{base_url}/openapi.yaml", "API"),
    ]
    return document("Packages", body, footer)
