"""download.py: byte ranges and Content-Disposition."""

from __future__ import annotations

import pytest

from release_server.download import content_disposition, parse_range
from release_server.errors import RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=9-1", None),
        ("bytes=1-2,4-5", None),
        ("bytes=-", None),
        ("chars=1-2", None),
    ],
)
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=-1", 0)]
)
def test_unsatisfiable_range_raises_416(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size)
    assert raised.value.status == 416
    assert raised.value.headers == {"content-range": f"bytes */{size}"}


def test_content_disposition() -> None:
    assert content_disposition("a.zip") == 'attachment; filename="a.zip"'
    header = content_disposition("é.zip")
    assert header == "attachment; filename=\"_.zip\"; filename*=UTF-8''%C3%A9.zip"
