"""The pure parts of access.py: patterns, scopes, the tokens file, the header, decisions."""

from __future__ import annotations

import base64
import hashlib

import pytest

from release_server.access import Access, TokensFile, matches, parse_tokens, presented_token
from release_server.errors import Forbidden, Unauthorized


@pytest.mark.parametrize(
    ("pattern", "repository", "expected"),
    [
        ("*", "acme/tool", True),
        ("acme/*", "acme/tool", True),
        ("acme/*", "acmex/tool", False),
        ("acme/tool", "acme/tool", True),
        ("acme/tool", "acme/tools", False),
        ("acme/tool", "Acme/tool", False),
    ],
)
def test_matches(pattern: str, repository: str, expected: bool) -> None:
    assert matches(pattern, repository) is expected


def test_a_tokens_file_with_comments_hashes_and_every_scope_kind() -> None:
    hashed = hashlib.sha256(b"hashed-token-00001").hexdigest()
    grants, plain = parse_tokens(
        "# comment\n\n"
        "plain-token-000001 read:acme/tool,write:acme/*  # CI of acme\n"
        f"  sha256:{hashed.upper()}   read:*,metrics\n"
    )
    assert plain == ["plain-token-000001"]
    first, second = grants
    assert first.digest == hashlib.sha256(b"plain-token-000001").digest()
    assert first.may("acme/tool", write=True) and first.may("acme/other", write=True)
    assert not first.may("other/tool", write=False) and not first.metrics
    assert second.digest.hex() == hashed and second.metrics
    assert second.may("x/y", write=False) and not second.may("x/y", write=True)


def test_every_bad_line_is_reported_with_its_number() -> None:
    with pytest.raises(ValueError) as raised:
        parse_tokens(
            "good-token-0000001 read:*\nonly-a-token-00001\nx read:*\nt2-token-00000001 read:a"
        )
    assert str(raised.value).splitlines() == [
        "line 2: expected '<token> <scope>[,<scope>...]', two words (scopes separated by "
        "commas without spaces); this line has 1",
        "line 3: the token must be at least 16 characters long (e.g. openssl rand -hex 32)",
        "line 4: expected '*', 'owner/*' or 'owner/repo', got 'a'",
    ]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer abc", "abc"),
        ("token  abc ", "abc"),
        ("Basic " + base64.b64encode(b"user:abc").decode(), "abc"),
        ("Basic " + base64.b64encode(b"abc:").decode(), "abc"),
        ("Basic !!!", ""),
        ("Digest abc", ""),
        ("", ""),
    ],
)
def test_presented_token(header: str | None, token: str | None) -> None:
    assert presented_token(header) == token


def test_decisions(tmp_path) -> None:
    path = tmp_path / "tokens"
    path.write_text("reader-token-00001 read:acme/tool\n")
    access = Access("admin-token-000001", TokensFile(str(path)), ("acme/*",), "local/packages")
    access.check(None, "local/packages", write=False)  # public
    access.check("Bearer wrong-but-ignored", "local/packages", write=False)
    access.check("Bearer reader-token-00001", "acme/tool", write=False)
    access.check("Bearer admin-token-000001", "acme/tool", write=True)
    with pytest.raises(Unauthorized) as anonymous:
        access.check(None, "acme/tool", write=False)
    assert anonymous.value.headers["WWW-Authenticate"].startswith("Basic")
    with pytest.raises(Forbidden):
        access.check("Bearer reader-token-00001", "acme/tool", write=True)
    with pytest.raises(Unauthorized) as writer:
        access.check(None, "acme/tool", write=True)
    assert writer.value.headers["WWW-Authenticate"].startswith("Bearer")
    assert access.may("token reader-token-00001", "acme/tool", write=False)
    assert not access.may(None, "acme/x", write=False)
    assert access.may(None, "other/x", write=False)
    with pytest.raises(Unauthorized, match="Writes are disabled"):
        Access("", None, (), "local/packages").check("Bearer x", "a/b", write=True)
