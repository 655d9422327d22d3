"""Downloads: headers, HEAD, byte ranges, conditional requests, unicode names."""

from __future__ import annotations

import hashlib
from email.utils import formatdate

import pytest
import requests
from conftest import BOTH_BACKENDS, ServerProcess

pytestmark = BOTH_BACKENDS

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def stored(server: ServerProcess) -> str:
    server.upload("data.bin", DATA)
    return f"{server.url}/assets/data.bin"


def test_download_headers(stored: str) -> None:
    response = requests.get(stored, timeout=10)
    assert response.status_code == 200
    assert response.content == DATA
    headers = response.headers
    assert headers["content-length"] == str(len(DATA))
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == 'attachment; filename="data.bin"'
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert headers["accept-ranges"] == "bytes"
    assert "GMT" in headers["last-modified"]


def test_content_type_from_name(server: ServerProcess) -> None:
    server.upload("page.html", b"<script>alert(1)</script>")
    server.upload("archive.tar.gz", b"gz")
    html = requests.get(f"{server.url}/assets/page.html", timeout=10)
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in html.headers["content-security-policy"]
    gz = requests.get(f"{server.url}/assets/archive.tar.gz", timeout=10)
    assert gz.headers["content-type"] == "application/gzip"


def test_head_has_headers_and_no_body(stored: str) -> None:
    response = requests.head(stored, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len(DATA) - 1),
        ("bytes=-10", len(DATA) - 10, len(DATA) - 1),
        ("bytes=10000-99999", 10000, len(DATA) - 1),
        ("bytes=5-5", 5, 5),
    ],
)
def test_single_range(stored: str, header: str, first: int, last: int) -> None:
    response = requests.get(stored, headers={"Range": header}, timeout=10)
    assert response.status_code == 206
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", ["bytes=20000-", "bytes=10240-10250", "bytes=-0"])
def test_unsatisfiable_range_is_416(stored: str, header: str) -> None:
    response = requests.get(stored, headers={"Range": header}, timeout=10)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=abc", "bytes=9-3"])
def test_unsupported_or_malformed_range_sends_whole_file(stored: str, header: str) -> None:
    response = requests.get(stored, headers={"Range": header}, timeout=10)
    assert response.status_code == 200
    assert response.content == DATA


def test_if_range(stored: str) -> None:
    etag = requests.head(stored, timeout=10).headers["etag"]
    matching = requests.get(stored, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert matching.status_code == 206
    stale = requests.get(stored, headers={"Range": "bytes=0-9", "If-Range": '"old"'}, timeout=10)
    assert stale.status_code == 200
    assert stale.content == DATA


def test_conditional_requests(stored: str) -> None:
    first = requests.get(stored, timeout=10)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert requests.get(stored, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    listed = requests.get(stored, headers={"If-None-Match": f'"x", {etag}'}, timeout=10)
    assert listed.status_code == 304
    assert requests.get(stored, headers={"If-None-Match": '"x"'}, timeout=10).status_code == 200
    since = requests.get(stored, headers={"If-Modified-Since": modified}, timeout=10)
    assert since.status_code == 304
    assert since.headers["etag"] == etag
    old = formatdate(0, usegmt=True)
    assert requests.get(stored, headers={"If-Modified-Since": old}, timeout=10).status_code == 200
    garbage = requests.get(stored, headers={"If-Modified-Since": "yesterday"}, timeout=10)
    assert garbage.status_code == 200


def test_unicode_name_content_disposition(server: ServerProcess) -> None:
    name = "résumé 日本.zip"
    server.upload(name, b"u")
    url = f"{server.url}/assets/{requests.utils.quote(name)}"
    response = requests.get(url, timeout=10)
    assert response.content == b"u"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.zip" in disposition


def test_quote_in_name_is_safe_in_header(server: ServerProcess) -> None:
    name = 'say "hi".txt'
    assert server.upload(name, b"q").status_code == 200
    response = requests.get(f"{server.url}/assets/{requests.utils.quote(name)}", timeout=10)
    assert response.content == b"q"
    assert response.headers["content-disposition"].count('"') == 2
