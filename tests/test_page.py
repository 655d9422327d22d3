"""Unit tests of the HTML page: what it shows, what it escapes, and that its CSP lets it run."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from html.parser import HTMLParser

import pytest

from release_server.package import Package
from release_server.page import (
    CSS,
    PAGE_HEADERS,
    SCRIPT,
    group_families,
    human_size,
    render_page,
)

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
    assert "<td>\u2014</td><td>5.0 GiB</td>" in first  # no version: an em dash
    assert '<time datetime="2024-01-31T12:00:00Z">2024-01-31 12:00:00 UTC</time>' in first
    assert "<td>1,234</td>" in first
    assert f"<code>{SHA}</code>" in first
    assert '<time datetime="2024-01-30T12:00:00Z">' in html
    assert "<td>12 B</td>" in html and f"<code>{'0' * 64}</code>" in html
    assert f"<code>curl -fsSL {BASE}/latest</code>" in html
    assert ">3 families, 3 packages</p>" in html


def test_upload_time_is_shown_to_the_second() -> None:
    late = 1_795_996_747_123_456_789  # 2026-11-29T23:59:07.123456789Z
    document = Document(render_page([package(mtime_ns=late)], base_url=BASE))
    (time_tag,) = document.all("time")
    assert time_tag["datetime"] == "2026-11-29T23:59:07Z"
    assert "2026-11-29 23:59:07 UTC" in document.text
    assert '<th scope="col">Uploaded</th>' in render_page([package()], base_url=BASE)


class HashCell(HTMLParser):
    """The text of each <code> in the last cell of each row, with where it sits."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.codes: list[tuple[str, str]] = []  # ("summary" | "details" | "cell", text)
        self.stack: list[str] = []
        self.feed(html.split("</thead>")[1].split("</table>")[0])
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        if tag == "code":
            where = next((t for t in reversed(self.stack) if t in ("summary", "details")), "cell")
            self.codes.append((where, ""))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "code":
            where, text = self.codes[-1]
            self.codes[-1] = (where, text + data)


def test_the_hash_is_short_and_expands_to_the_full_one() -> None:
    first, second = "0123456789abcdef" * 4, "fedcba9876543210" * 4
    html = render_page([package(sha256=first), package("b.zip", sha256=second)], base_url=BASE)
    assert HashCell(html).codes == [
        ("summary", "0123456789ab"),
        ("details", first),
        ("summary", "fedcba987654"),
        ("details", second),
    ]
    document = Document(html)
    assert len(document.all("details")) == len(document.all("summary")) == 2
    assert not [attrs for attrs in document.all("details") if "open" in attrs]


def test_a_hostile_name_is_text_and_its_link_is_percent_encoded() -> None:
    html = render_page([package(EVIL), package("q\"uote's & amp.zip")], base_url=BASE)
    document = Document(html)
    assert not document.all("img")
    assert EVIL in "".join(document.text)
    hrefs = [attrs["href"] for attrs in document.all("a")]
    assert f"{BASE}/assets/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.zip" in hrefs
    assert f"{BASE}/assets/q%22uote%27s%20%26%20amp.zip" in hrefs
    assert EVIL not in html and "q\"uote's" not in html


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
    (button,) = document.all("button")  # the curl line's; the script adds one per hash
    assert button["type"] == "button" and button["aria-label"]
    assert len(document.all("summary")) == 2
    assert len(document.all("caption")) == 1
    assert [attrs.get("scope") for attrs in document.all("th")] == ["col"] * 6
    assert document.all("html")[0]["lang"] == "en"


def test_the_filter_box_is_the_q_parameter() -> None:
    (field,) = Document(render_page([package()], base_url=BASE)).all("input")
    assert field["name"] == "q" and field["type"] == "search"
    assert "value" not in field  # the script fills it from ?q=, the server does not


@pytest.mark.parametrize(
    ("families", "versions"),
    [(1, 1000), (100, 10), (250, 4)],
    ids=["one family of 1,000", "100 of 10", "250 of 4"],
)
def test_a_thousand_packages_render_fast_and_small(families: int, versions: int) -> None:
    packages = [
        package(
            f"spec-kit-template-agent{family:03d}-sh-v0.{version // 100}.{version % 100}.zip",
            size=version * 4096,
            downloads=version,
        )
        for version in reversed(range(versions))
        for family in range(families)
    ]
    started = time.perf_counter()
    html = render_page(packages, base_url=BASE)
    elapsed = time.perf_counter() - started
    assert html.count("<tbody>") == families
    assert html.count("<tr") == 1001
    assert elapsed < 0.5
    assert len(html.encode()) < 500_000


class Families(HTMLParser):
    """Each family (``<tbody>``) as its rows: the name link, its href, the version cell, the
    row's ``data-stable`` and the older-versions summary (for the first row)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.families: list[list[dict[str, str | None]]] = []
        self._cell = 0
        self._in: str | None = None
        self.feed(html.split("</thead>")[1])
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tbody":
            self.families.append([])
        elif tag == "tr":
            row = {"name": "", "href": None, "version": "", "stable": values.get("data-stable")}
            self.families[-1].append(row | {"more": None})
            self._cell = 0
        elif tag == "td":
            self._cell += 1
        elif tag == "a" and self._cell == 1:
            self.families[-1][-1]["href"] = values["href"]
            self._in = "name"
        elif tag == "summary" and self._cell == 1:
            self.families[-1][-1]["more"] = ""
            self._in = "more"
        if tag == "td" and self._cell == 2:
            self._in = "version"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("a", "summary", "td"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            row = self.families[-1][-1]
            row[self._in] = (row[self._in] or "") + data


def names(families: list[list[dict[str, str | None]]]) -> list[list[str | None]]:
    return [[row["name"] for row in family] for family in families]


HOUR = 3600 * 10**9
# Newest first, as the listing hands them over: three releases of a tool, two of an app
# (its archives named the GoReleaser way) and a checksum file, interleaved by upload time.
MIXED = [
    package("tool-1.2.0.zip", mtime_ns=10 * HOUR),
    package("checksums.txt", mtime_ns=9 * HOUR),
    package("app_2.0.0_linux_amd64.tar.gz", mtime_ns=8 * HOUR),
    package("tool-1.1.0.zip", mtime_ns=7 * HOUR),
    package("app_1.9.1_linux_amd64.tar.gz", mtime_ns=6 * HOUR),
    package("tool-1.0.0.zip", mtime_ns=5 * HOUR),
]


def test_one_row_per_family_its_newest_file_and_the_older_ones_under_it() -> None:
    families = Families(render_page(MIXED, base_url=BASE)).families
    assert names(families) == [
        ["tool-1.2.0.zip", "tool-1.1.0.zip", "tool-1.0.0.zip"],
        ["checksums.txt"],
        ["app_2.0.0_linux_amd64.tar.gz", "app_1.9.1_linux_amd64.tar.gz"],
    ]
    assert [[row["version"] for row in family] for family in families] == [
        ["1.2.0", "1.1.0", "1.0.0"],
        ["\u2014"],
        ["2.0.0", "1.9.1"],
    ]
    assert [family[0]["more"] for family in families] == [
        "2 older versions",
        None,
        "1 older version",
    ]
    for family in families:  # only the newest row has the toggle and the stable link
        assert all(row["more"] is None and row["stable"] is None for row in family[1:])
        for row in family:
            assert row["href"] == f"{BASE}/assets/{row['name']}"


def test_a_stable_link_only_for_versioned_families() -> None:
    families = Families(render_page(MIXED, base_url=BASE)).families
    assert [family[0]["stable"] for family in families] == [
        "tool.zip",
        None,
        "app_linux_amd64.tar.gz",
    ]
    html = render_page([package("checksums.txt"), package("install.sh")], base_url=BASE)
    assert "data-stable" not in html
    # The script makes the URL: the table's data-latest, then this name.
    assert "${table.dataset.latest}${stable}" in SCRIPT
    assert f'data-latest="{BASE}/latest/download/"' in render_page(MIXED, base_url=BASE)


def test_the_count_says_families_and_packages() -> None:
    assert ">3 families, 6 packages</p>" in render_page(MIXED, base_url=BASE)
    assert ">1 family, 1 package</p>" in render_page([package()], base_url=BASE)
    two = [package("tool-1.1.zip"), package("tool-1.0.zip")]
    assert ">1 family, 2 packages</p>" in render_page(two, base_url=BASE)


def test_the_page_explains_the_stable_link() -> None:
    document = Document(render_page(MIXED, base_url=BASE))
    text = "".join(document.text)
    assert f"{BASE}/latest/download/" in text
    assert "always downloads the newest file of its family" in text


def test_grouping_keeps_the_order_and_splits_unversioned_look_alikes() -> None:
    packages = [
        package("tool-*.zip"),  # unversioned, its name is the family pattern of the others
        package("tool-2.0.zip"),
        package("tool.zip"),
        package("tool-1.0.zip"),
        package("tool-*.zip.sig"),
    ]
    groups = group_families(packages)
    assert [[p.name for p in group.files] for group in groups] == [
        ["tool-*.zip"],
        ["tool-2.0.zip", "tool-1.0.zip"],
        ["tool.zip"],
        ["tool-*.zip.sig"],
    ]
    assert [group.versions for group in groups] == [(None,), ("2.0", "1.0"), (None,), (None,)]
    # tool.zip is a file of its own, so /latest/download/tool.zip is that file: no stable link
    assert [group.stable for group in groups] == [None, None, None, None]
    assert group_families(packages[1:2])[0].stable == "tool.zip"
    assert group_families([]) == []


def test_a_stable_link_is_offered_only_where_it_leads_to_the_familys_newest_file() -> None:
    """/latest/download/{name} serves the file of that exact name first, else the newest file
    whose name without its version is {name}, whichever family it is in."""
    groups = group_families(
        [
            package("tool_1.1.zip"),  # family tool_*.zip, stable tool.zip: the newest claims it
            package("tool-2.0.zip"),  # tool-*.zip, also tool.zip: that link serves tool_1.1.zip
            package("tool_1.0.zip"),
            package("app-2.0.tar.gz"),
            package("app.tar.gz"),  # a file of that exact name: app.tar.gz is served as is
            package("app-1.0.tar.gz"),
        ]
    )
    assert [(group.files[0].name, group.stable) for group in groups] == [
        ("tool_1.1.zip", "tool.zip"),
        ("tool-2.0.zip", None),
        ("app-2.0.tar.gz", None),
        ("app.tar.gz", None),
    ]


def test_a_name_whose_stable_part_would_be_empty_gets_no_stable_link() -> None:
    (group,) = group_families([package("v1.2.tar.gz"), package("v1.1.tar.gz")])
    assert group.versions == ("v1.2", "v1.1") and group.stable is None
    html = render_page(group.files, base_url=BASE)
    assert "data-stable" not in html and "1 older version" in html


def test_hostile_names_in_families_are_escaped_and_their_stable_part_encoded() -> None:
    packages = [
        package("<img src=x onerror=alert(1)>-2.0.zip"),
        package("<img src=x onerror=alert(1)>-1.0.zip"),
        package('a"b & c-1.0 .zip'),
        package("my app-3.1.zip"),
    ]
    html = render_page(packages, base_url=BASE)
    document = Document(html)
    assert not document.all("img")
    families = Families(html).families
    assert names(families) == [
        ["<img src=x onerror=alert(1)>-2.0.zip", "<img src=x onerror=alert(1)>-1.0.zip"],
        ['a"b & c-1.0 .zip'],
        ["my app-3.1.zip"],
    ]
    assert [family[0]["stable"] for family in families] == [
        "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.zip",
        "a%22b%20%26%20c%20.zip",
        "my%20app.zip",
    ]
    assert "<img" not in html and 'a"b' not in html
