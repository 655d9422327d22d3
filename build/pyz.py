"""Build ``dist/release-server.pyz``: the server and its pinned dependencies in one zipapp.

The result runs on a bare interpreter as ``python3 -I -S release-server.pyz`` (no
site-packages needed), so a VM or a distroless image needs nothing but Python 3.11+.

Why each step is the way it is:

* Dependencies come from ``build/requirements.txt`` (pip-compile, ``--generate-hashes``), are
  downloaded with ``--require-hashes`` and must all be ``none-any`` wheels: pure Python,
  so one pyz runs on every platform.
* zipimport never looks in ``__pycache__``; it loads ``module.pyc`` stored beside
  ``module.py``. So every module is compiled the ``compileall -b`` way, as an unchecked-hash
  pyc: no timestamp inside (reproducible) and no source check at import (fast start).
  Sources stay in the archive, for tracebacks and for interpreters of another minor
  version, which skip the pycs (other magic number) and compile the sources instead.
* ``zipapp.create_archive`` on a directory stores files in file-system order with their
  mtimes, so the archive is written here with ``zipfile`` (sorted names, fixed timestamps
  and modes) and ``zipapp`` adds the interpreter line and the executable bit.

Same sources, same requirements and the same Python minor version give the same bytes.

``--with s3`` builds ``dist/release-server-s3.pyz`` instead: the same, plus boto3 and its
pure-Python dependencies (``build/requirements-s3.txt``) for ``STORAGE_URL=s3://...``. It
is a second file rather than the default because boto3 is about ten times the size of
everything else, and most VMs serve a directory. botocore's service models are trimmed to
the ones the backend calls (S3, and STS/SSO for roles and profiles); botocore reads them
from the file system, so the server unpacks them to the temp dir on first use
(release_server/storage/s3_zipapp.py).

A compiled extension cannot be imported from a zip, so Granian (the fast engine) is never
inside: the container image installs it beside the pyz (build/native_site.py, /app/site)
and names that directory in ``PYZ_SITE``, which the entry point below adds to sys.path
(release_server/pyz_site.py says when it refuses to).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipapp
import zipfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "build" / "requirements.txt"
S3_REQUIREMENTS = ROOT / "build" / "requirements-s3.txt"
PACKAGE = ROOT / "release_server"
DEFAULT_OUTPUT = ROOT / "dist" / "release-server.pyz"
S3_OUTPUT = ROOT / "dist" / "release-server-s3.pyz"
#: botocore's service models kept in the S3 pyz (the others are most of its size).
BOTOCORE_SERVICES = {"s3", "sts", "sso", "sso-oidc"}
INTERPRETER = "/usr/bin/env python3"
# The name compiled into the pycs' co_filename: the temporary build directory must not leak.
ARCHIVE_NAME = "release-server.pyz"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold

# Guarded: hypercorn's worker processes are started with multiprocessing "spawn" (they
# get the parent's sys.path, PYZ_SITE's directory included).
MAIN_PY = '''\
"""Entry point of release-server.pyz: the same CLI as ``python -m release_server``, which
also imports from the directory PYZ_SITE names (release_server/pyz_site.py)."""

import sys

from release_server.pyz_site import add_site

if __name__ == "__main__":
    problem = add_site()
    if problem:
        print(f"release-server: error: {problem}", file=sys.stderr)
        sys.exit(2)
    from release_server.cli import main

    sys.exit(main())
'''


class BuildError(Exception):
    """A problem the person building must fix; printed as one line."""


def run(what: str, command: list[str]) -> None:
    """Run a build tool; it explains its own failure on stderr, this names the step."""
    returncode = subprocess.run(command).returncode
    if returncode:
        raise BuildError(f"{what} failed (exit {returncode})")


def download_wheels(
    dest: Path, requirements: Path = REQUIREMENTS, target: Sequence[str] = ()
) -> list[Path]:
    """Fetch the pinned wheels, checking their hashes; refuse anything but pure Python,
    unless ``target`` gives pip a platform's tags (build/native_site.py: binary wheels)."""
    run(
        "pip download",
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--dest",
            str(dest),
            "--requirement",
            str(requirements),
            *target,
        ],
    )
    wheels = sorted(dest.glob("*.whl"))
    if target:
        return wheels  # the target's binary wheels, chosen by pip from its tags
    for wheel in wheels:
        # name-version[-build]-python-abi-platform.whl
        abi, platform = wheel.stem.split("-")[-2:]
        if (abi, platform) != ("none", "any"):
            raise BuildError(f"{wheel.name} is not pure Python; the pyz takes none-any wheels only")
    return wheels


def unpack_wheel(wheel: Path, app: Path) -> None:
    """Install a pure-Python wheel by unpacking it (its contents are the purelib tree)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        # Console scripts (jmespath's jp.py) are not needed by the server: left out.
        scripts = [n for n in names if n.split("/")[0].endswith(".data") and "/scripts/" in n]
        extra = [n for n in names if n.split("/")[0].endswith(".data") and n not in scripts]
        if extra:
            raise BuildError(f"{wheel.name} installs files outside site-packages: {extra[0]}")
        archive.extractall(app, [n for n in names if n not in scripts])


def compile_tree(app: Path, name: str = ARCHIVE_NAME, beside: bool = True) -> None:
    """Write ``module.pyc`` beside every ``module.py`` as unchecked-hash pycs (or, not
    ``beside``, in ``__pycache__`` as a directory on sys.path wants them), compiled as if
    ``app`` were at ``name``.

    A fresh isolated interpreter does it, so neither the environment (PYTHONOPTIMIZE...)
    nor this process's state can change the bytes.
    """
    run(
        "compileall",
        [
            sys.executable,
            "-I",
            "-m",
            "compileall",
            "-q",
            *(["-b"] if beside else []),
            "-o",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-d",
            name,
            str(app),
        ],
    )


def archive_bytes(app: Path) -> bytes:
    """The zip of ``app``: sorted entries, fixed times and modes, the shebang first.

    The interpreter line is written before the entries so that their offsets are the
    final ones; ``zipapp`` replaces that line with the identical one.
    """
    entries = {
        p.relative_to(app).as_posix() + ("/" if p.is_dir() else ""): p for p in app.rglob("*")
    }
    buffer = io.BytesIO()
    buffer.write(f"#!{INTERPRETER}\n".encode())
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.create_system = 3  # Unix, whatever the build machine
            if name.endswith("/"):
                info.external_attr = (0o40755 << 16) | 0x10  # drwxr-xr-x + MS-DOS directory flag
                archive.writestr(info, b"")
            else:
                info.external_attr = 0o100644 << 16  # -rw-r--r--
                # Every start reads the pycs: stored, they load ~20 ms faster than deflated.
                # Sources and metadata are rarely read: deflated, they halve the size.
                if not name.endswith(".pyc"):
                    info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entries[name].read_bytes(), compresslevel=9)
    return buffer.getvalue()


def trim_botocore(app: Path) -> None:
    """Drop the service models of botocore that the S3 backend never loads."""
    data = app / "botocore" / "data"
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
            shutil.rmtree(entry)


def build(output: Path, extras: tuple[str, ...] = ()) -> Path:
    """Assemble, compile and write the pyz; the output appears atomically."""
    with tempfile.TemporaryDirectory(prefix="release-server-pyz-") as tmp:
        app = Path(tmp) / "app"
        app.mkdir()
        wheels = download_wheels(Path(tmp) / "wheels")
        if "s3" in extras:
            wheels += download_wheels(Path(tmp) / "wheels-s3", S3_REQUIREMENTS)
        for wheel in wheels:
            unpack_wheel(wheel, app)
        if "s3" in extras:
            trim_botocore(app)
        shutil.copytree(
            PACKAGE, app / "release_server", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (app / "__main__.py").write_text(MAIN_PY, encoding="utf-8")
        compile_tree(app)
        data = archive_bytes(app)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    zipapp.create_archive(io.BytesIO(data), str(partial), interpreter=INTERPRETER)
    os.replace(partial, output)
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="where to write the pyz (default: dist/release-server.pyz, or "
        "dist/release-server-s3.pyz --with s3)",
    )
    parser.add_argument(
        "--with",
        dest="extras",
        action="append",
        choices=["s3"],
        default=[],
        help="also bundle an optional backend: s3 (boto3) makes release-server-s3.pyz",
    )
    args = parser.parse_args()
    output = args.output or (S3_OUTPUT if "s3" in args.extras else DEFAULT_OUTPUT)
    try:
        output = build(output.resolve(), tuple(args.extras))
    except BuildError as problem:
        print(f"build/pyz.py: error: {problem}", file=sys.stderr)
        return 1
    data = output.read_bytes()
    print(
        f"{output}: {len(data) / 1024:.0f} KiB, sha256 {hashlib.sha256(data).hexdigest()}, "
        f"compiled for Python {sys.version_info.major}.{sys.version_info.minor}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
