"""The settings, read in one place: CLI flag > environment variable > TOML file > default."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting and what is expected."""


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def parse_size(text: str) -> int:
    """Parse ``512M``, ``2G``, ``1048576`` (binary suffixes) into bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"expected a size in bytes such as 1048576, 512M or 2G, got {text!r}")
    return int(match.group(1)) * _SIZE_FACTORS[match.group(2).lower()]


def _whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"expected a whole number {bound}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {text!r}")
    return value


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected 1/0, true/false, yes/no or on/off, got {text!r}")


def _log_level(text: str) -> str:
    if text.strip().lower() not in _LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}, got {text!r}")
    return text.strip().lower()


def _public_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if url and not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
        raise ValueError(f"expected an http(s) URL such as https://host/prefix, got {text!r}")
    return url


def _repository(text: str) -> str:
    if not _REPOSITORY.match(text.strip()):
        raise ValueError(f"expected owner/repo, got {text!r}")
    return text.strip()


def _text(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the server. Field names are the TOML keys; upper-cased, the env names."""

    host: str = "127.0.0.1"
    port: int = 8000
    storage_path: str = "./data"
    max_packages: int = 10
    max_upload_size: int = 2 * 1024**3
    workers: int = 1
    certfile: str = ""
    keyfile: str = ""
    log_level: str = "info"
    auth_token: str = ""
    public_url: str = ""
    trust_proxy: bool = False
    repository: str = "local/packages"
    keep_alive_timeout: float = 5.0
    read_timeout: float = 60.0
    graceful_timeout: float = 10.0

    @property
    def storage(self) -> Path:
        return Path(self.storage_path)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": _text,
    "port": _whole(0, 65535),
    "storage_path": _text,
    "max_packages": _whole(0),
    "max_upload_size": parse_size,
    "workers": _whole(1, 64),
    "certfile": _text,
    "keyfile": _text,
    "log_level": _log_level,
    "auth_token": _text,
    "public_url": _public_url,
    "trust_proxy": _flag,
    "repository": _repository,
    "keep_alive_timeout": _seconds,
    "read_timeout": _seconds,
    "graceful_timeout": _seconds,
}


def _parse(key: str, raw: object, source: str) -> Any:
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    try:
        return _PARSERS[key](text)
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def _read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"CONFIG_PATH: cannot read {path!r}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"CONFIG_PATH: {path!r} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(_PARSERS))
    if unknown:
        raise ConfigError(f"CONFIG_PATH: unknown setting(s) in {path!r}: {', '.join(unknown)}")
    return data


def _token_from_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"AUTH_TOKEN_FILE: cannot read {path!r}: {error.strerror}") from None


def load_settings(
    flags: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Merge defaults, the TOML file named by CONFIG_PATH, the environment and CLI flags.

    ``flags`` holds only the flags the user gave (None values are ignored). Raises
    ConfigError naming the setting when a value is bad.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_path = env.get("CONFIG_PATH", "")
    if config_path:
        for key, raw in _read_toml(config_path).items():
            values[key] = _parse(key, raw, f"{key} in {config_path}")
    for key in _PARSERS:
        name = key.upper()
        if name in env and key != "auth_token":
            values[key] = _parse(key, env[name], name)
    if env.get("AUTH_TOKEN"):
        values["auth_token"] = env["AUTH_TOKEN"].strip()
    elif env.get("AUTH_TOKEN_FILE"):
        values["auth_token"] = _token_from_file(env["AUTH_TOKEN_FILE"])
    for key, raw in (flags or {}).items():
        if raw is not None:
            values[key] = _parse(key, raw, "--" + key.replace("_", "-").removesuffix("-path"))
    if bool(values.get("certfile")) != bool(values.get("keyfile")):
        raise ConfigError("--certfile/--keyfile: TLS needs both a certificate and a key file")
    return Settings(**values)


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The environment that makes load_settings() in a worker process see ``settings``."""
    env = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        env[field.name.upper()] = str(int(value) if isinstance(value, bool) else value)
    return env
