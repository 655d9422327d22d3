"""Build the container image's ``/app/site``: Granian, the fast engine, installed for one
target platform; the pyz imports it when ``PYZ_SITE`` names the directory.

Why each step is the way it is:

* Granian is a Rust extension and zipimport cannot load one, so it sits beside the pyz in
  a plain directory (release_server/pyz_site.py adds it to sys.path).
* The wheel comes from ``build/requirements-fast.txt``: one hash for each platform the
  image is built for (linux/amd64, linux/arm64), fetched with ``--only-binary=:all:
  --require-hashes --no-deps``. click, Granian's one dependency, serves only Granian's own
  command line, which the server never imports.
* The Dockerfile's builder stage runs on the build machine's platform for every target,
  so pip is given the target's tags rather than this machine's: CPython of this minor
  version (the builder's 3.11 is the final image's) and every manylinux up to the glibc
  of Debian 12, the distroless base.
* The wheel is unpacked as it is (a wheel's contents are its install tree) and compiled
  to unchecked-hash pycs in ``__pycache__``, named as the files will be in the image
  (``--installed-as``): the server cannot write to the image, so it could not cache them.
* Directories 0755, files 0644 (shared libraries 0755), whatever the builder's umask:
  PYZ_SITE refuses a directory that anyone but its owner can write to.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from pyz import ROOT, BuildError, compile_tree, download_wheels, unpack_wheel

REQUIREMENTS = ROOT / "build" / "requirements-fast.txt"
DEFAULT_OUTPUT = ROOT / "dist" / "site"
INSTALLED_AS = "/app/site"
#: Docker's names for the image's platforms (and the kernel's), to the wheels' names.
ARCHITECTURES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
#: Debian 12's glibc: the newest manylinux the distroless image runs.
GLIBC_MINOR = 36
#: The manylinux tags older wheels carry instead of (or beside) their glibc version.
LEGACY_MANYLINUX = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}


def platform_options(arch: str) -> list[str]:
    """pip's options for wheels that run on the target: this CPython, glibc up to 2.36."""
    version = f"{sys.version_info.major}{sys.version_info.minor}"
    tags = []
    for minor in range(GLIBC_MINOR, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in LEGACY_MANYLINUX:
            tags.append(f"{LEGACY_MANYLINUX[minor]}_{arch}")
    options = ["--implementation", "cp", "--python-version", version, "--abi", f"cp{version}"]
    for tag in tags:
        options += ["--platform", tag]
    return options


def normalise_modes(site: Path) -> None:
    """Writable by the owner only; readable (and the extensions loadable) by everyone."""
    site.chmod(0o755)
    for path in site.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.suffix == ".so" else 0o644)


def check_import(site: Path) -> None:
    """Load Granian's extension from ``site``, isolated as the image runs the pyz."""
    code = f"import sys; sys.path.append({str(site)!r}); import granian._granian"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise BuildError(f"Granian does not import from {site}:\n{done.stderr.strip()}")


def build(output: Path, arch: str, installed_as: str = INSTALLED_AS) -> list[str]:
    """Download, unpack, compile; the output directory appears whole. Returns the wheels."""
    partial = output.with_name(f".{output.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        wheels_dir = partial.with_name(f".{output.name}.wheels")
        shutil.rmtree(wheels_dir, ignore_errors=True)
        try:
            wheels = download_wheels(wheels_dir, REQUIREMENTS, platform_options(arch))
            for wheel in wheels:
                unpack_wheel(wheel, partial)
        finally:
            shutil.rmtree(wheels_dir, ignore_errors=True)
        compile_tree(partial, installed_as, beside=False)
        normalise_modes(partial)
        if arch == ARCHITECTURES.get(platform.machine()):
            check_import(partial)
        shutil.rmtree(output, ignore_errors=True)
        os.replace(partial, output)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [wheel.name for wheel in wheels]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--arch",
        default="",
        help="the image's architecture: amd64 or arm64 (Docker's TARGETARCH; also x86_64, "
        "aarch64); default: this machine's",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="default: dist/site"
    )
    parser.add_argument(
        "--installed-as",
        default=INSTALLED_AS,
        help=f"where the directory will be, for the pycs' file names (default {INSTALLED_AS})",
    )
    args = parser.parse_args()
    given = args.arch or platform.machine()
    arch = ARCHITECTURES.get(given)
    if arch is None:
        parser.error(
            f"--arch {given!r}: Granian is pinned for {', '.join(sorted(ARCHITECTURES))} only "
            "(build/requirements-fast.txt)"
        )
    output = args.output.resolve()
    try:
        wheels = build(output, arch, args.installed_as)
    except BuildError as problem:
        print(f"build/native_site.py: error: {problem}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    print(f"{output}: {', '.join(wheels)}: {size / 2**20:.1f} MiB for {arch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
