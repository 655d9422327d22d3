"""The settings, read in one place: CLI flag > environment variable > TOML file > default."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .parsing import (
    engine,
    flag,
    hosts,
    log_level,
    parse_size,
    private,
    public_url,
    repository,
    seconds,
    storage_url,
    token,
    verbatim,
    whole,
)


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting and what is expected."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the server. Field names are the TOML keys; upper-cased, the env names."""

    host: str = "127.0.0.1"
    port: int = 8000
    storage_path: str = "./data"
    storage_url: str = ""
    max_packages: int | None = None
    max_versions: int | None = None
    max_upload_size: int = 2 * 1024**3
    workers: int = 1
    certfile: str = ""
    keyfile: str = ""
    log_level: str = "info"
    auth_token: str = ""
    tokens_file: str = ""
    private: tuple[str, ...] = ()
    public_url: str = ""
    trust_proxy: bool = False
    repository: str = "local/packages"
    allowed_hosts: tuple[str, ...] = ()
    h2c: bool = False
    keep_alive_timeout: float = 5.0
    read_timeout: float = 60.0
    graceful_timeout: float = 10.0
    engine: str = "auto"

    @property
    def storage(self) -> Path:
        return Path(self.storage_path)

    @property
    def package_limit(self) -> int:
        """Packages kept in the root release (0: no cap, the default)."""
        return self.max_packages or 0

    @property
    def version_limit(self) -> int:
        """Versions kept per family: MAX_VERSIONS, else 3; but a deployment that sets only
        MAX_PACKAGES keeps exactly the retention it had (SPEC §8.3), so 0 then."""
        if self.max_versions is not None:
            return self.max_versions
        return 0 if self.max_packages is not None else DEFAULT_MAX_VERSIONS


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table: how to parse it, what it means, its flag (None for
    a setting that must never be on a command line, where ``ps`` would show it)."""

    parse: Callable[[str], Any]
    help: str
    flag: str | None


DEFAULT_MAX_VERSIONS = 3
#: Every setting. ``--help``, the environment names (upper-cased keys) and the TOML keys
#: are all generated from this table, so they cannot drift apart.
TABLE: dict[str, Setting] = {
    "host": Setting(verbatim, "address to listen on", "--host"),
    "port": Setting(whole(0, 65535), "port to listen on", "--port"),
    "storage_path": Setting(verbatim, "the package directory", "--storage"),
    "storage_url": Setting(
        storage_url,
        "s3://BUCKET/PREFIX: keep packages in S3-compatible object storage instead of "
        "--storage (needs release-server[s3]; AWS_* variables give endpoint and credentials)",
        "--storage-url",
    ),
    "max_packages": Setting(
        whole(0),
        "packages kept in the root release, newest first (default 0: no cap)",
        "--max-packages",
    ),
    "max_versions": Setting(
        whole(0),
        "versions kept per family of names, e.g. tool-*.zip (default 3; 0: no limit; "
        "off when only MAX_PACKAGES is set)",
        "--max-versions",
    ),
    "max_upload_size": Setting(
        parse_size, "largest upload, bytes or 512M/2G; 0 = unlimited", "--max-upload-size"
    ),
    "workers": Setting(whole(1, 64), "worker processes (they share storage safely)", "--workers"),
    "certfile": Setting(verbatim, "TLS certificate (PEM); needs --keyfile", "--certfile"),
    "keyfile": Setting(verbatim, "TLS private key (PEM); needs --certfile", "--keyfile"),
    "log_level": Setting(log_level, "debug, info, warning, error or critical", "--log-level"),
    "auth_token": Setting(
        token, "the write token, 16+ printable ASCII characters (or AUTH_TOKEN_FILE)", None
    ),
    "tokens_file": Setting(
        verbatim,
        "file of scoped tokens, '<token> read:owner/repo,write:owner/*' a line; re-read "
        "when it changes",
        "--tokens-file",
    ),
    "private": Setting(
        private,
        "1: every read needs a read token; or the private repositories: owner/repo,owner/*",
        "--private",
    ),
    "public_url": Setting(public_url, "external base URL for links", "--public-url"),
    "trust_proxy": Setting(flag, "1: believe X-Forwarded-Proto/Host/For", "--trust-proxy"),
    "repository": Setting(repository, "owner/repo of the root release", "--repository"),
    "allowed_hosts": Setting(
        hosts, "host names answered (comma-separated); others get 400", "--allowed-hosts"
    ),
    "h2c": Setting(flag, "1: allow cleartext HTTP/2 (h2c)", "--h2c"),
    "keep_alive_timeout": Setting(
        seconds, "seconds an idle keep-alive connection stays open", "--keep-alive-timeout"
    ),
    "read_timeout": Setting(seconds, "seconds an upload or a download may stall", "--read-timeout"),
    "graceful_timeout": Setting(
        seconds, "seconds in-flight requests get after SIGTERM", "--graceful-timeout"
    ),
    "engine": Setting(
        engine,
        "hypercorn (pure Python), granian (fast; release-server[fast]) or auto: granian "
        "when it is installed",
        "--engine",
    ),
}
#: Settings read from the environment only.
ENVIRONMENT_ONLY = {
    "AUTH_TOKEN_FILE": "a file whose first line is the write token",
    "CONFIG_PATH": "a TOML file with any of the settings (lower-case keys); also --config",
    "PYZ_SITE": "the pyz only: a directory it also imports from (Granian; /app/site in the image)",
}


def _parse(key: str, raw: object, source: str) -> Any:
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    try:
        return TABLE[key].parse(text)
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
    for key in data:
        if key not in TABLE:
            raise ConfigError(f"CONFIG_PATH: unknown setting {key!r} in {path!r}{_hint(key)}")
    return data


def _hint(key: str) -> str:
    """The one or two closest keys to an unknown TOML key (keys are lower-case)."""
    close = difflib.get_close_matches(key.lower(), TABLE, n=2, cutoff=0.5)
    if not close:
        return f"; known: {', '.join(TABLE)}"
    return f"; did you mean {' or '.join(repr(name) for name in close)}?"


def _token_from_file(path: str) -> str:
    """The token is the first line of the file (a UTF-8 BOM and surrounding blanks are not
    part of it), so notes may follow it on later lines."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ConfigError(f"AUTH_TOKEN_FILE: cannot read {path!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"AUTH_TOKEN_FILE: {path!r} is not UTF-8 text") from None
    lines = text.splitlines()
    token: str = _parse("auth_token", lines[0] if lines else "", f"AUTH_TOKEN_FILE ({path})")
    return token


def load_settings(
    flags: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Merge defaults, the TOML file named by CONFIG_PATH, the environment and CLI flags.

    ``flags`` holds only the flags the user gave (None values are ignored). Raises
    ConfigError naming the setting when a value is bad.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    flags = dict(flags or {})
    config_path = str(flags.pop("config", None) or env.get("CONFIG_PATH", ""))
    if config_path:
        for key, raw in _read_toml(config_path).items():
            values[key] = _parse(key, raw, f"{key} in {config_path}")
    for key in TABLE:
        name = key.upper()
        if name in env and key != "auth_token":
            values[key] = _parse(key, env[name], name)
    given, token_file = env.get("AUTH_TOKEN", "").strip(), env.get("AUTH_TOKEN_FILE", "")
    if given and token_file:
        raise ConfigError("AUTH_TOKEN/AUTH_TOKEN_FILE: both are set; set one, not both")
    if given:
        values["auth_token"] = _parse("auth_token", given, "AUTH_TOKEN")
    elif token_file:
        values["auth_token"] = _token_from_file(token_file)
    for key, raw in flags.items():
        if raw is not None:
            values[key] = _parse(key, raw, TABLE[key].flag or key)
    if bool(values.get("certfile")) != bool(values.get("keyfile")):
        raise ConfigError("--certfile/--keyfile: TLS needs both a certificate and a key file")
    return Settings(**values)


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The environment that makes load_settings() in a worker process see ``settings``.

    The token is left out: workers read it where the user put it (AUTH_TOKEN,
    AUTH_TOKEN_FILE or the TOML file), so a token from a file never enters an environment."""
    env = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        if field.name == "auth_token" or value is None:
            continue
        if isinstance(value, tuple):
            value = ",".join(value)
        env[field.name.upper()] = str(int(value) if isinstance(value, bool) else value)
    return env
