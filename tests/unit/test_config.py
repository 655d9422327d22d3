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
