"""The pages of repositories and releases (SPEC §8.4), in the style of ``/packages``:

- ``/``: the index, the root release and every repository with its latest release;
- ``/{o}/{r}/releases``: a repository's releases, newest first;
- ``/{o}/{r}/releases/tag/{tag}``: one release (its ``html_url``): notes and the files by
  family, as /packages shows them (filter, copy buttons, stable links).

Plain data in, one self-contained document out (``page.document``: the same CSS, script and
Content-Security-Policy as /packages).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from .package import Package
from .page import Download, command, document, files_table


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """One release as the pages show it."""

    tag: str
    name: str
    url: str  # its page
    created_at: str
    prerelease: bool
    draft: bool
    latest: bool  # what /releases/latest answers
    assets: int


@dataclass(frozen=True, slots=True)
class RepositoryRow:
    """One repository on the index."""

    name: str  # owner/repo
    url: str  # its releases page
    releases: int  # published ones
    latest: ReleaseRow | None
    updated_at: str | None  # its newest release's creation time
    updated_ns: int = 0  # the same, to sort by


def render_index(
    root: RepositoryRow, repositories: Sequence[RepositoryRow], *, base_url: str
) -> str:
    """``/``: the root release (the packages) and the repositories, newest first."""
    packages = root.latest.assets if root.latest else 0
    body = (
        '<p class="hint">Fetch the newest root release as JSON:</p>'
        + command(f"curl -fsSL {base_url}/latest", "Copy the curl command")
        + "<h2>Root release</h2>\n"
        + _repository_table([root], "Packages", lambda row: f"{packages:,}")
        + "<h2>Repositories</h2>\n"
    )
    if repositories:
        body += _repository_table(repositories, "Releases", lambda row: f"{row.releases:,}")
    else:
        body += (
            '<section class="empty"><p class="hint">No repositories yet. Publish a release '
            "with a token (it is created with its first file):</p>"
            + command(
                'curl -fsS -H "Authorization: Bearer $TOKEN" -T dist/tool-1.0.0.tar.gz '
                f"{base_url}/OWNER/REPO/releases/download/v1.0.0/tool-1.0.0.tar.gz",
                "Copy the upload command",
            )
            + "</section>\n"
        )
    footer = [(f"{base_url}/?format=json", "JSON"), (f"{base_url}/packages", "Packages"),
              (f"{base_url}/openapi.yaml", "API")]  # fmt: skip
    return document("Releases", body, footer)


def _repository_table(
    rows: Sequence[RepositoryRow], counted: str, count: Callable[[RepositoryRow], str]
) -> str:
    body = "".join(
        f'<tr><td><a href="{escape(row.url)}">{escape(row.name)}</a></td>'
        f'<td data-label="Latest">{_latest_link(row.latest)}</td>'
        f'<td class="num" data-label="{counted}">{escape(count(row))}</td>'
        f'<td data-label="Updated">{_time(row.updated_at)}</td></tr>\n'
        for row in rows
    )
    return (
        f'<table class="list"><thead><tr><th scope="col">Repository</th>'
        f'<th scope="col">Latest release</th><th scope="col" class="num">{counted}</th>'
        f'<th scope="col">Updated</th></tr></thead><tbody>\n{body}</tbody></table>\n'
    )


def _latest_link(release: ReleaseRow | None) -> str:
    if release is None:
        return "\u2014"
    return f'<a href="{escape(release.url)}">{escape(release.tag)}</a>'


def render_release_list(
    repository: str, releases: Sequence[ReleaseRow], *, base_url: str, api_url: str
) -> str:
    """``/{o}/{r}/releases``: ``releases`` newest first."""
    rows = "".join(
        f'<tr><td><a href="{escape(row.url)}">{escape(row.tag)}</a>{_badges(row)}</td>'
        f'<td data-label="Name">{escape(row.name)}</td>'
        f'<td data-label="Published">{_time(row.created_at)}</td>'
        f'<td class="num" data-label="Assets">{row.assets:,}</td></tr>\n'
        for row in releases
    )
    body = (
        '<p class="hint">Fetch the latest release as JSON:</p>'
        + command(f"curl -fsSL {api_url}/releases/latest", "Copy the curl command")
        + '<table class="list"><thead><tr><th scope="col">Tag</th><th scope="col">Name</th>'
        '<th scope="col">Published</th><th scope="col" class="num">Assets</th></tr></thead>'
        f"<tbody>\n{rows}</tbody></table>\n"
    )
    page = f"{base_url}/{repository}/releases"
    footer = [(f"{api_url}/releases", "JSON"), (f"{page}.atom", "Atom feed"),
              (f"{base_url}/", "Repositories"), (f"{base_url}/openapi.yaml", "API")]  # fmt: skip
    return document(f"{repository} releases", body, footer)


def render_release(
    repository: str,
    release: ReleaseRow,
    notes: str,
    files: Sequence[Package],
    download: Download,
    *,
    base_url: str,
    api_url: str,
) -> str:
    """``/{o}/{r}/releases/tag/{tag}``: the release's notes and files."""
    page = f"{base_url}/{repository}/releases"
    body = (
        f'<p class="meta"><span><code>{escape(release.tag)}</code>{_badges(release)}</span>'
        f"<span>Published {_time(release.created_at)}</span>"
        f'<a href="{escape(page)}">All releases of {escape(repository)}</a></p>\n'
    )
    if notes:
        body += f'<div class="notes">{escape(notes)}</div>\n'
    if files:
        body += (
            '<p class="hint">Fetch this release as JSON:</p>'
            + command(f"curl -fsSL {api_url}/releases/tags/{release.tag}", "Copy the curl command")
            + files_table(files, download, f"{page}/latest/download/")
        )
    else:
        body += (
            '<section class="empty"><h2>No files yet</h2><p class="hint">Add one with a token '
            "(replace <code>$TOKEN</code> and the file):</p>"
            + command(
                f'curl -fsS -H "Authorization: Bearer $TOKEN" -T dist/app.zip '
                f"{page}/download/{release.tag}/app.zip",
                "Copy the upload command",
            )
            + "</section>\n"
        )
    footer = [(f"{api_url}/releases/tags/{release.tag}", "JSON"), (page, "Releases"),
              (f"{base_url}/", "Repositories"), (f"{base_url}/openapi.yaml", "API")]  # fmt: skip
    return document(f"{repository} {release.name}", body, footer)


def _badges(release: ReleaseRow) -> str:
    badges = [("latest", "Latest")] if release.latest else []
    badges += [("pre", "Pre-release")] if release.prerelease else []
    badges += [("draft", "Draft")] if release.draft else []
    return "".join(f' <span class="badge {kind}">{text}</span>' for kind, text in badges)


def _time(created_at: str | None) -> str:
    if not created_at:
        return "\u2014"
    return f'<time datetime="{created_at}">{created_at[:10]} {created_at[11:19]} UTC</time>'
