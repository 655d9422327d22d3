"""config.py: sizes, precedence, and errors that name the setting."""

from __future__ import annotations

import pytest

from release_server.config import ConfigError, load_settings, parse_size, settings_to_env


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
    defaults = load_settings({}, {})
    assert (defaults.package_limit, defaults.version_limit) == (0, 3)


@pytest.mark.parametrize(
    ("env", "limits"),
    [
        ({}, (0, 3)),
        ({"MAX_PACKAGES": "10"}, (10, 0)),  # an existing deployment keeps its retention
        ({"MAX_PACKAGES": "0"}, (0, 0)),
        ({"MAX_VERSIONS": "5"}, (0, 5)),
        ({"MAX_PACKAGES": "20", "MAX_VERSIONS": "2"}, (20, 2)),
    ],
)
def test_retention_limits(env: dict[str, str], limits: tuple[int, int]) -> None:
    settings = load_settings({}, env)
    assert (settings.package_limit, settings.version_limit) == limits


def test_settings_round_trip_through_env_without_the_token() -> None:
    env = {"AUTH_TOKEN": "t" * 16, "ALLOWED_HOSTS": "a.example, b.example", "H2C": "1"}
    settings = load_settings({"max_upload_size": "1G", "storage_path": "/srv"}, env)
    worker_env = settings_to_env(settings)
    assert "AUTH_TOKEN" not in worker_env
    assert load_settings({}, {**worker_env, "AUTH_TOKEN": "t" * 16}) == settings


@pytest.mark.parametrize(
    ("text", "token"),
    [("tok-" * 4 + "\n", "tok-" * 4), ("\ufeff" + "k" * 16 + "\r\n# rotated\n", "k" * 16)],
)
def test_token_file_first_line(tmp_path, text: str, token: str) -> None:
    path = tmp_path / "token"
    path.write_text(text, encoding="utf-8")
    assert load_settings({}, {"AUTH_TOKEN_FILE": str(path)}).auth_token == token


@pytest.mark.parametrize("token", ["short", "x" * 15, "é" * 16, "has space" * 2])
def test_weak_tokens_are_refused(token: str) -> None:
    with pytest.raises(ConfigError, match="AUTH_TOKEN"):
        load_settings({}, {"AUTH_TOKEN": token})


def test_toml_errors_name_the_setting(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("max_packages = 'many'\n")
    with pytest.raises(ConfigError, match="max_packages"):
        load_settings({}, {"CONFIG_PATH": str(config)})
    config.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings({}, {"CONFIG_PATH": str(config)})
