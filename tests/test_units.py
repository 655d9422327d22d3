"""Unit tests for the pure rooms: names, retention, ranges, negotiation, settings."""

from __future__ import annotations

import pytest

from release_server.config import ConfigError, load_settings, parse_size, settings_to_env
from release_server.download import content_disposition, parse_range
from release_server.github import Links, asset_id, release_document
from release_server.http import prefers_html
from release_server.names import InvalidName, check_name, name_problem
from release_server.package import Package
from release_server.retention import choose_pruned


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
    with pytest.raises(InvalidName, match="Invalid file name"):
        check_name(name)


def pkg(name: str, mtime: int) -> Package:
    return Package(name, 1, mtime, "0" * 64)


def test_retention_keeps_newest() -> None:
    packages = [pkg(f"p{i}", i) for i in range(5)]
    assert choose_pruned(packages, 3, keep="p4") == ["p1", "p0"]
    assert choose_pruned(packages, 0, keep="p4") == []
    assert choose_pruned(packages, 5, keep="p4") == []


def test_retention_never_prunes_the_upload() -> None:
    packages = [pkg("old-upload", 1), pkg("future-a", 10), pkg("future-b", 11)]
    assert choose_pruned(packages, 1, keep="old-upload") == ["future-b", "future-a"]
    assert choose_pruned(packages, 2, keep="old-upload") == ["future-a"]


def test_retention_ties_break_by_name() -> None:
    packages = [pkg("b", 5), pkg("a", 5), pkg("c", 5)]
    assert choose_pruned(packages, 2, keep="c") == ["b"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=100-", False),
        ("bytes=-0", False),
        ("bytes=9-1", None),
        ("bytes=1-2,4-5", None),
        ("bytes=-", None),
        ("chars=1-2", None),
    ],
)
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected


def test_content_disposition() -> None:
    assert content_disposition("a.zip") == 'attachment; filename="a.zip"'
    header = content_disposition("é.zip")
    assert header == "attachment; filename=\"_.zip\"; filename*=UTF-8''%C3%A9.zip"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("text/*", True),
        ("text/html;q=0.5, application/json", False),
        ("text/html;q=0", False),
        ("text/html;q=abc, */*", False),
    ],
)
def test_prefers_html(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("1024", 1024), ("1K", 1024), ("512M", 512 << 20), ("2G", 2 << 30),
     ("2gb", 2 << 30), ("1GiB", 1 << 30), (" 3 m ", 3 << 20)],
)  # fmt: skip
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_settings_precedence(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("max_packages = 3\nport = 9000\nlog_level = 'debug'\n")
    env = {"CONFIG_PATH": str(config), "PORT": "9100"}
    settings = load_settings({"port": "9200", "host": None}, env)
    assert (settings.max_packages, settings.port, settings.log_level) == (3, 9200, "debug")
    assert load_settings({}, env).port == 9100
    assert load_settings({}, {}).max_packages == 10


def test_settings_round_trip_through_env() -> None:
    settings = load_settings({"max_upload_size": "1G", "storage_path": "/srv"}, {"AUTH_TOKEN": "t"})
    assert load_settings({}, settings_to_env(settings)) == settings


def test_toml_errors_name_the_setting(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("max_packages = 'many'\n")
    with pytest.raises(ConfigError, match="max_packages"):
        load_settings({}, {"CONFIG_PATH": str(config)})
    config.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings({}, {"CONFIG_PATH": str(config)})


def test_release_document_shape() -> None:
    links = Links("http://h", "http://h/api/v3", "o/r")
    document = release_document([pkg("new", 2), pkg("old", 1)], links, 0)
    assert [a["name"] for a in document["assets"]] == ["new", "old"]
    assert document["assets"][0]["id"] == asset_id("new") != asset_id("old")
    assert document["url"] == "http://h/api/v3/repos/o/r/releases/1"
    assert document["assets"][0]["browser_download_url"] == "http://h/assets/new"
    assert release_document([], links, 0)["published_at"] == "1970-01-01T00:00:00Z"
