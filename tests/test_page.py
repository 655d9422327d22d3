"""Unit tests of the HTML page: what it shows, what it escapes, and that its CSP lets it run."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from html.parser import HTMLParser

import pytest

from release_server.package import Package
from release_server.page import CSS, PAGE_HEADERS, SCRIPT, human_size, render_page

BASE = "http://127.0.0.1:8000"
EVIL = "<img src=x onerror=alert(1)>.zip"
SHA = "ab" * 32


def package(name: str = "app.zip", **fields: int | str) -> Package:
    values = {"size": 1536, "mtime_ns": 1_706_702_400_000_000_000, "sha256": SHA, "downloads": 3}
    values.update(fields)
    return Package(name=name, **values)  # type: ignore[arg-type]


class Document(HTMLParser):
    """Every start tag with its attributes, and the text of inline <style> and <script>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: dict[str, list[str]] = {"style": [], "script": []}
        self.text: list[str] = []
        self._inside: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.inline:
            self._inside = tag
            self.inline[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.inline[self._inside][-1] += data
        else:
            self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def csp() -> dict[str, list[str]]:
    policy = PAGE_HEADERS["Content-Security-Policy"]
    return {
        directive.split()[0]: directive.split()[1:]
        for directive in (part.strip() for part in policy.split(";"))
        if directive
    }


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (10 * 1024**2, "10.0 MiB"),
        (734_003_200, "700 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (3 * 1024**5, "3.0 PiB"),
        (2048 * 1024**5, "2048 PiB"),
    ],
)
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_rows_show_every_field_in_the_given_order() -> None:
    packages = [
        package("new.zip", size=5 * 1024**3, downloads=1234),
        package("mid.tar.gz", mtime_ns=1_706_702_400_000_000_000 - 86_400 * 10**9),
        package("old.pyz", size=12, sha256="0" * 64, downloads=0),
    ]
    html = render_page(packages, base_url=BASE)
    assert [m.group(1) for m in re.finditer(r"download>([^<]+)</a>", html)] == [
        "new.zip",
        "mid.tar.gz",
        "old.pyz",
    ]
    first = html.split("<tbody>")[1].split("</tr>")[0]
    assert f'href="{BASE}/assets/new.zip"' in first
    assert "<td>5.0 GiB</td>" in first
    assert '<time datetime="2024-01-31T12:00:00Z">2024-01-31 12:00</time>' in first
    assert "<td>1,234</td>" in first
    assert f"<code>{SHA}</code>" in first
    assert '<time datetime="2024-01-30T12:00:00Z">' in html
    assert "<td>12 B</td>" in html and f"<code>{'0' * 64}</code>" in html
    assert f"<code>curl -fsSL {BASE}/latest</code>" in html
    assert ">3 packages</p>" in html


def test_a_hostile_name_is_text_and_its_link_is_percent_encoded() -> None:
    html = render_page([package(EVIL), package("q\"uote's & amp.zip")], base_url=BASE)
    document = Document(html)
    assert not document.all("img")
    assert EVIL in "".join(document.text)
    hrefs = [attrs["href"] for attrs in document.all("a")]
    assert f"{BASE}/assets/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.zip" in hrefs
    assert f"{BASE}/assets/q%22uote%27s%20%26%20amp.zip" in hrefs
    labels = [attrs["aria-label"] for attrs in document.all("button")]
    assert f"Copy SHA-256 of {EVIL}" in labels
    assert "Copy SHA-256 of q\"uote's & amp.zip" in labels


def test_base_url_with_a_prefix_and_markup_is_escaped() -> None:
    base = 'https://host/re"lease<s>'
    document = Document(render_page([package()], base_url=base))
    assert not document.all("s")
    hrefs = {attrs["href"] for attrs in document.all("a")}
    assert f"{base}/assets/app.zip" in hrefs
    assert f"{base}/packages?format=json" in hrefs
    assert f"curl -fsSL {base}/latest" in document.text


def test_empty_state_explains_how_to_upload() -> None:
    html = render_page([], base_url=BASE)
    document = Document(html)
    assert "No packages yet" in document.text
    assert f"{BASE}/upload" in "".join(document.text)
    assert not document.all("table") and not document.all("input")


def test_csp_is_strict_and_its_hashes_match_the_inline_blocks() -> None:
    policy = csp()
    assert policy["default-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["img-src"] == ["data:"]
    for packages in ([], [package(EVIL)]):
        document = Document(render_page(packages, base_url=BASE))
        assert document.inline == {"style": [CSS], "script": [SCRIPT]}
        assert policy["style-src"] == [sha256_source(CSS)]
        assert policy["script-src"] == [sha256_source(SCRIPT)]
        for _, attrs in document.tags:
            assert "style" not in attrs
            assert not [name for name in attrs if name.startswith("on")]


def test_other_security_headers() -> None:
    assert PAGE_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert PAGE_HEADERS["Referrer-Policy"] == "no-referrer"
    assert PAGE_HEADERS["X-Frame-Options"] == "DENY"


def test_the_page_references_nothing_outside_the_server() -> None:
    document = Document(render_page([package(), package(EVIL)], base_url=BASE))
    for tag, attrs in document.tags:
        assert "src" not in attrs, tag
        href = attrs.get("href")
        assert href is None or href.startswith((BASE + "/", "data:image/svg+xml,")), href


def test_controls_are_labelled_and_the_table_is_semantic() -> None:
    document = Document(render_page([package(), package("b.zip")], base_url=BASE))
    (label,) = document.all("label")
    (field,) = document.all("input")
    assert label["for"] == field["id"] == "filter"
    buttons = document.all("button")
    assert len(buttons) == 3
    assert all(attrs["type"] == "button" and attrs["aria-label"] for attrs in buttons)
    assert len(document.all("caption")) == 1
    assert [attrs.get("scope") for attrs in document.all("th")] == ["col"] * 5
    assert document.all("html")[0]["lang"] == "en"


def test_a_thousand_packages_render_fast_and_small() -> None:
    packages = [
        package(f"spec-kit-template-claude-sh-v0.0.{i}.zip", size=i * 4096, downloads=i)
        for i in range(1000)
    ]
    started = time.perf_counter()
    html = render_page(packages, base_url=BASE)
    elapsed = time.perf_counter() - started
    assert html.count("<tr>") == 1001
    assert elapsed < 0.5
    assert len(html.encode()) < 500_000
