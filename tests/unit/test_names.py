"""names.py: what may be a package name."""

from __future__ import annotations

import pytest

from release_server.errors import BadRequest
from release_server.names import InvalidName, check_name, name_problem


@pytest.mark.parametrize(
    "name", ["a", "x" * 255, "é" * 127, "v1.0 (final).tar.gz", "CON", "a..b", "-rf", "ü.zip"]
)
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".env", "a/b", "a\\b", "a\x00", "a\x1fb", "a\x7f", "a\x85b", "x" * 256,
     "é" * 128, "\ud800"],
)  # fmt: skip
def test_invalid_names(name: str) -> None:
    assert name_problem(name)
    with pytest.raises(InvalidName, match="Invalid file name") as raised:
        check_name(name)
    assert isinstance(raised.value, BadRequest) and raised.value.status == 400
