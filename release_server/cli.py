"""The command line: flags -> settings -> an engine (Hypercorn or Granian); and
``healthcheck`` for the image."""

from __future__ import annotations

import argparse
import concurrent.futures
import errno
import logging
import multiprocessing
import os
import shutil
import socket
import ssl
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

from . import __version__, engine, engine_granian
from .access import TokensFile, TokensFileError
from .config import (
    ENVIRONMENT_ONLY,
    TABLE,
    ConfigError,
    Settings,
    load_settings,
    settings_to_env,
)
from .logs import configure_logging, log_event
from .metrics import SHARE_ENV
from .storage import open_storage
from .storage.s3_client import MissingBoto3

DESCRIPTION = """\
Serve release packages: upload with a bearer token, find the newest through a
GitHub-Releases-compatible /latest, download, and browse /packages.

Every setting is a flag, an environment variable (in brackets) or a key of the TOML file
named by --config/CONFIG_PATH (the lower-case name). Precedence: flag > environment >
file > default."""


logger = logging.getLogger("release_server")


def build_parser() -> argparse.ArgumentParser:
    """Generated from config.TABLE, so every setting is here and none can drift."""
    parser = argparse.ArgumentParser(
        prog="release-server",
        description=DESCRIPTION,
        epilog="environment only:\n"
        + "\n".join(f"  {name:<22}{meaning}" for name, meaning in environment_only().items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"release-server {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML file of settings [CONFIG_PATH]")
    defaults = Settings()
    for key, setting in TABLE.items():
        if setting.flag is None:
            continue
        default = getattr(defaults, key)
        shown = ",".join(default) if isinstance(default, tuple) else default
        shown = int(shown) if isinstance(shown, bool) else shown
        suffix = f" (default {shown})" if shown not in ("", (), None) else ""
        parser.add_argument(
            setting.flag, dest=key, metavar=key.split("_")[-1].upper(),
            help=f"{setting.help} [{key.upper()}]{suffix}",
        )  # fmt: skip
    commands = parser.add_subparsers(dest="command", metavar="{healthcheck}")
    check = commands.add_parser(
        "healthcheck", help="exit 0 if the server answers /healthz, else 1 (for containers)"
    )
    check.add_argument("--url", help="URL to check (default http://127.0.0.1:$PORT/healthz)")
    return parser


def environment_only() -> dict[str, str]:
    """Settings no flag carries (a token on a command line would show in ``ps``)."""
    token = {k.upper(): s.help for k, s in TABLE.items() if s.flag is None}
    return {**token, **ENVIRONMENT_ONLY}


def healthcheck(url: str | None, settings: Settings) -> int:
    """GET the health URL; 0 when it answers 200. Needs no curl (distroless image)."""
    import urllib.error  # here, not at start-up: serving never needs it (cold start)
    import urllib.request

    scheme = "https" if settings.certfile else "http"
    url = url or f"{scheme}://127.0.0.1:{settings.port}/healthz"
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            healthy = response.status == 200
    except (urllib.error.URLError, OSError, ValueError) as problem:
        print(f"release-server healthcheck: {url}: {problem}", file=sys.stderr)
        return 1
    print(f"release-server healthcheck: {url}: {'OK' if healthy else 'unhealthy'}")
    return 0 if healthy else 1


def serve(settings: Settings) -> int:
    """Run the chosen engine, its worker processes sharing metrics through a directory."""
    os.environ.update(settings_to_env(settings))
    run = engine_granian.serve if settings.engine == "granian" else engine.serve
    if settings.workers == 1:
        return run(settings)
    share = metrics_directory(settings)
    os.environ[SHARE_ENV] = str(share)
    try:
        return run(settings)
    finally:
        shutil.rmtree(share, ignore_errors=True)


def choose_engine(settings: Settings) -> Settings | str:
    """``settings`` with ENGINE resolved (auto: Granian when installed), or why the engine
    asked for cannot serve, as one line. Every setting works on both engines."""
    name = settings.engine
    if name == "auto":
        name = "granian" if engine_granian.available() else "hypercorn"
    if name == "granian" and not engine_granian.available():
        return (
            "--engine granian: Granian is not installed here (the pyz and the plain package "
            "carry Hypercorn only): pip install 'release-server[fast]' (the pyz: PYZ_SITE names "
            "a directory holding it, as in the image), or use --engine hypercorn"
        )
    return replace(settings, engine=name)


def metrics_directory(settings: Settings) -> Path:
    """A directory of this server's own, where its workers add up their metrics: in the
    temp dir, or (read-only root filesystem, no temp dir) under storage's hidden names,
    named after this host and process so replicas sharing storage never mix."""
    import tempfile  # only with several workers: not on the cold start path

    try:
        return Path(tempfile.mkdtemp(prefix="release-server-metrics-"))
    except OSError:
        share = settings.storage / ".meta" / f"metrics-{socket.gethostname()}-{os.getpid()}"
        share.mkdir(parents=True, exist_ok=True)
        return share


def preflight(settings: Settings) -> str | None:
    """What stops this configuration from serving, as one line naming the setting."""
    for setting, path in (("--certfile", settings.certfile), ("--keyfile", settings.keyfile)):
        if path and not os.path.isfile(path):
            return f"{setting}: no such file {path!r}"
    if settings.certfile:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                settings.certfile, settings.keyfile
            )
        except (ssl.SSLError, OSError) as problem:
            return (
                f"--certfile/--keyfile: cannot use {settings.certfile!r} with "
                f"{settings.keyfile!r} ({getattr(problem, 'reason', None) or problem}): give "
                "a PEM certificate and the PEM private key that belongs to it, in that order"
            )
    try:
        socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as problem:
        reason = getattr(problem, "strerror", None) or problem
        return f"--host: cannot listen on {settings.host!r}: {reason}"
    if settings.private and not (settings.auth_token or settings.tokens_file):
        return "PRIVATE: nobody could read: set AUTH_TOKEN or TOKENS_FILE with read tokens"
    if settings.tokens_file:
        try:
            TokensFile(settings.tokens_file)
        except TokensFileError as problem:
            return "\n".join(
                f"TOKENS_FILE {settings.tokens_file}: {line}" for line in str(problem).splitlines()
            )
    if not settings.storage_url:
        return storage_problem(settings)
    # A bucket is checked in a child process: boto3 and its models (some 15 MiB) would
    # otherwise stay in this one, and every worker forked from it would carry them too.
    fork = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=fork) as child:
        return child.submit(storage_problem, settings).result()


def storage_problem(settings: Settings) -> str | None:
    """Why the storage cannot be used, as one line naming the setting, or None."""
    try:
        open_storage(settings.storage_url, settings.storage).prepare()
    except MissingBoto3 as problem:
        return f"STORAGE_URL: {problem}"
    except OSError as problem:
        reason = problem.strerror or str(problem)
        if settings.storage_url:
            return f"STORAGE_URL: {settings.storage_url!r} is not usable: {reason}"
        return f"STORAGE_PATH: {str(settings.storage)!r} is not usable: {reason}"
    return None


def effective(settings: Settings) -> dict[str, object]:
    """The settings for the start-up log line, the token replaced by whether it is set."""
    values = {field.name: getattr(settings, field.name) for field in fields(settings)}
    values["auth_token"] = "set" if settings.auth_token else "not set"
    return values


def fail(message: str) -> int:
    print(f"release-server: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "url")}
    try:
        settings = load_settings(flags)
    except ConfigError as problem:
        return fail(str(problem))
    if args.command == "healthcheck":
        return healthcheck(args.url, settings)
    refusal = preflight(settings)
    if refusal:
        return fail(refusal)
    chosen = choose_engine(settings)
    if isinstance(chosen, str):
        return fail(chosen)
    settings = chosen
    configure_logging(settings.log_level, (settings.auth_token,))
    log_event(logger, "starting", version=__version__, settings=effective(settings))
    try:
        code = serve(settings)
        log_event(logger, "stopped", code=code)
        return code
    except OSError as error:
        if error.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            return fail(f"--port/--host: cannot listen on {settings.host}:{settings.port}: "
                        f"{error.strerror}")  # fmt: skip
        return fail(f"the server could not start: {error}")
