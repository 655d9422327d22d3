#!/usr/bin/env bash
# Stand-ins for the Dockerfile's two base images, so that tests/test_image.py can build and
# run the real image on machines with no registry access and no Docker daemon:
#   gcr.io/distroless/python3-debian12:nonroot   Debian 12's python3.11 and the libraries
#       it loads, user nonroot (65532); no shell, no coreutils, no dpkg/apt, no pip
#   docker.io/library/python:3.11-slim           Debian 12 minbase + python3.11, pip and
#       `python` (python-is-python3), enough for `python build/pyz.py`
# Both come from one `debootstrap --variant=minbase bookworm` (Debian's own packages; the
# distroless one takes only the files of python3.11's runtime packages) and are committed
# to a private buildah storage (vfs), where `buildah build --pull=never` finds them by
# name instead of pulling. They are rebuilt only when this recipe changes (its hash is
# kept in a stamp file), so a warm run takes a second.
#
#   bash .ci/image.sh            build the stand-ins if needed (root, buildah and debootstrap)
#   bash .ci/image.sh --install  first apt-get install buildah and debootstrap if missing;
#                                when that is impossible (not root, no apt-get), say why and
#                                exit 0: tests/test_image.py then skips with that reason
#
# Prints, as its last line, the storage configuration the caller's buildah must use:
#   CONTAINERS_STORAGE_CONF=<cache>/storage.conf   (vfs driver, graphroot and runroot in the cache)
# Cache dir: RELEASE_SERVER_TOOLS (default ${XDG_CACHE_HOME:-$HOME/.cache}/release-server-tools)/image.
# Mirror: DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
TOOLS="${RELEASE_SERVER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/release-server-tools}"
CACHE="$TOOLS/image"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYTHON="${PYTHON:-python3}"
DISTROLESS=gcr.io/distroless/python3-debian12:nonroot
# `FROM python:3.11-slim` is Docker Hub's library/python: the fully qualified name.
BUILDER=docker.io/library/python:3.11-slim
# The host's CA bundle goes into the builder stand-in: pip in the Dockerfile's RUN reaches
# PyPI through whatever TLS the host trusts (e.g. a re-signing egress proxy).
HOST_CA=/etc/ssl/certs/ca-certificates.crt

say() { echo "image.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
run() {
    echo "+ $*" >&2
    "$@"
}

install=""
case "${1:-}" in
"") ;;
--install) install=1 ;;
-h | --help)
    sed -n '2,24s/^# \{0,1\}//p' "$SELF"
    exit 0
    ;;
*)
    echo "image.sh: unknown argument '$1' (expected --install or nothing)" >&2
    exit 2
    ;;
esac

skip_or_die() {
    if [[ -n "$install" ]]; then
        say "skipped: $* (tests/test_image.py will skip)"
        exit 0
    fi
    die "$*"
}

[[ "$(id -u)" == 0 ]] || skip_or_die "not root: buildah (vfs, chroot isolation) and debootstrap need root here"
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ -n "$install" ]] && command -v apt-get >/dev/null 2>&1; then
        run apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive run apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >&2
    else
        skip_or_die "${missing[*]} not installed (as root on Debian: bash .ci/image.sh --install)"
    fi
fi

mkdir -p "$CACHE"
# A private storage (vfs: no overlay or fuse needed) that buildah uses through this file.
export CONTAINERS_STORAGE_CONF="$CACHE/storage.conf"
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' \
    "$CACHE/storage" "$CACHE/run" >"$CONTAINERS_STORAGE_CONF"
BUILDAH=(buildah)
# One run at a time: two would both debootstrap and fight over the names.
exec 9>"$CACHE/lock"
flock 9

recipe="$(cat "$SELF" "$HOST_CA" 2>/dev/null | sha256sum | cut -c1-16)-$(dpkg --print-architecture)"
stamp="$CACHE/bases-$recipe"

report() {
    echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
}

# Warm: the stamp names the two image IDs this recipe made; both still carry their names.
if [[ -f "$stamp" ]]; then
    ok=1
    while read -r name id; do
        [[ "$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$name" 2>/dev/null)" == "$id" ]] || ok=""
    done <"$stamp"
    if [[ -n "$ok" ]]; then
        say "stand-ins for recipe $recipe already built ($DISTROLESS, $BUILDER)"
        report
        exit 0
    fi
fi

work="$(mktemp -d "$CACHE/work.XXXXXX")"
containers=()
# debootstrap mounts /proc and /sys in its target and unmounts them when it exits; should
# anything still be mounted below $work, unmount it (and no rm here crosses file systems).
unmount_below() {
    findmnt -rn -o TARGET | grep -F "$1/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
cleanup() {
    local c
    for c in ${containers[@]+"${containers[@]}"}; do
        "${BUILDAH[@]}" rm "$c" >/dev/null 2>&1 || true
    done
    unmount_below "$work"
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

started=$SECONDS
# --- 1. one Debian 12 tree with everything both stand-ins need -----------------------------
root="$work/debian"
run debootstrap --variant=minbase \
    --include=python3.11-minimal,libpython3.11-stdlib,python3-pip,python-is-python3,ca-certificates,tzdata,netbase \
    bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed; the end of its log:"$'\n'"$(tail -n 30 "$work/debootstrap.log")"
say "debootstrap took $((SECONDS - started)) s"
unmount_below "$root"
# No device nodes, package caches or host files (debootstrap copies resolv.conf and hostname).
rm -rf --one-file-system "${root:?}"/dev/* "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/lib/apt/lists/* "$root/etc/resolv.conf" "$root/etc/hostname"
[[ ! -s "$HOST_CA" ]] || cp "$HOST_CA" "$root$HOST_CA"

# --- 2. the distroless stand-in: only the files of python3.11's runtime packages -----------
# The closure of Depends/Pre-Depends from python3.11-minimal and libpython3.11-stdlib (plus
# what distroless ships: CA certificates, tzdata, netbase, base-files), minus the packaging
# and shell tools that only their maintainer scripts use.
slim="$work/distroless"
mkdir "$slim"
run "$PYTHON" - "$root" "$slim/files" <<'PY'
import re
import subprocess
import sys
from pathlib import Path

root, out = Path(sys.argv[1]), Path(sys.argv[2])
ROOTS = [
    "python3.11-minimal", "libpython3.11-stdlib", "ca-certificates", "tzdata", "netbase",
    "base-files",
]
DENY = {
    "awk", "bash", "coreutils", "dash", "debconf", "debconf-2.0", "dpkg", "libc-bin", "mawk",
    "openssl", "perl-base",
}
query = ["dpkg-query", f"--admindir={root}/var/lib/dpkg"]
status = subprocess.run(
    [*query, "-W", "-f=${Package}\t${Pre-Depends}, ${Depends}\n"],
    check=True, capture_output=True, text=True,
).stdout
depends: dict[str, list[list[str]]] = {}
for line in status.splitlines():
    package, relations = line.split("\t")
    depends[package] = [
        [re.split(r"[\s(:]", alt.strip())[0] for alt in group.split("|")]
        for group in relations.split(",")
        if group.strip()
    ]
packages: set[str] = set()
todo = list(ROOTS)
while todo:
    package = todo.pop()
    if package in packages:
        continue
    packages.add(package)
    for alternatives in depends[package]:
        if any(name in DENY for name in alternatives):
            continue
        installed = [name for name in alternatives if name in depends]
        if not installed:
            sys.exit(f"{package}: none of {alternatives} is installed")
        todo.append(installed[0])

def wanted(path: str) -> bool:
    """Like distroless: no manuals, no docs but the copyright files."""
    if path.startswith(("/usr/share/man/", "/usr/share/info/", "/usr/share/lintian/")):
        return False
    return not path.startswith("/usr/share/doc/") or path.endswith("/copyright")

files = {"/etc/ssl/certs/ca-certificates.crt", "/etc/ld.so.cache"}
for package in sorted(packages):
    listed = subprocess.run(
        [*query, "-L", package], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    files.update(p for p in listed if p.startswith("/") and p != "/." and wanted(p))
# The stdlib's pycs, compiled by python3.11-minimal's postinst (not in dpkg's lists).
for path in list(files):
    if path.startswith("/usr/lib/python3.11/") and path.endswith(".py"):
        cache = Path(path).parent / "__pycache__"
        for pyc in (root / cache.relative_to("/")).glob(Path(path).stem + ".cpython-311*.pyc"):
            files.update((str(cache), "/" + str(pyc.relative_to(root))))
existing = sorted("." + p for p in files if (root / p.lstrip("/")).is_symlink() or (root / p.lstrip("/")).exists())
out.write_text("\n".join(existing) + "\n")
print(f"distroless stand-in: {len(packages)} packages, {len(existing)} paths: {' '.join(sorted(packages))}")
PY
rootfs="$slim/rootfs"
mkdir "$rootfs"
# The merged-/usr links first, so that the packages' /lib/... paths land in /usr/lib/...
for link in bin sbin lib lib32 lib64 libx32; do
    if [[ -L "$root/$link" ]]; then
        cp -a "$root/$link" "$rootfs/$link"
        mkdir -p "$rootfs/usr/$link"
    fi
done
tar -C "$root" --no-recursion -cf - -T "$slim/files" | tar -C "$rootfs" --keep-directory-symlink -xf -
ln -sf python3.11 "$rootfs/usr/bin/python3"
mkdir -p "$rootfs/home/nonroot" "$rootfs/root" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
chown 65532:65532 "$rootfs/home/nonroot"
chmod 0700 "$rootfs/home/nonroot" "$rootfs/root"
chmod 1777 "$rootfs/tmp"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
for tool in sh bash dash ls cat cp rm dpkg apt apt-get pip pip3 perl; do
    [[ ! -e "$rootfs/usr/bin/$tool" && ! -e "$rootfs/usr/sbin/$tool" ]] ||
        die "the distroless stand-in would contain $tool"
done

# --- 3. commit both to buildah's storage under the base images' names ----------------------
commit() { # NAME ROOTFS [buildah config flags...]
    local name="$1" tree="$2" ctr mnt
    shift 2
    ctr="$("${BUILDAH[@]}" from --pull=never scratch)"
    containers+=("$ctr")
    mnt="$("${BUILDAH[@]}" mount "$ctr")"
    tar -C "$tree" -cf - . | tar -C "$mnt" -xf -
    "${BUILDAH[@]}" umount "$ctr" >/dev/null
    "${BUILDAH[@]}" config "$@" "$ctr"
    "${BUILDAH[@]}" rmi -f "$name" >/dev/null 2>&1 || true
    "${BUILDAH[@]}" commit --quiet --format docker --rm "$ctr" "$name" >/dev/null
    containers=()
    echo "$name $("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$name")" >>"$work/stamp"
    say "committed $name ($(du -sh "$tree" | cut -f1))"
}
commit "$DISTROLESS" "$rootfs" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --env LANG=C.UTF-8 \
    --user 65532 --workingdir /home/nonroot --entrypoint '["/usr/bin/python3.11"]'
commit "$BUILDER" "$root" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["python3"]'

# --- 4. the distroless stand-in runs what the pyz needs -------------------------------------
ctr="$("${BUILDAH[@]}" from --pull=never "$DISTROLESS")"
containers+=("$ctr")
"${BUILDAH[@]}" run --isolation chroot --user 65532:65532 "$ctr" -- python3 -I -S -c '
import asyncio, base64, binascii, concurrent.futures, contextvars, ctypes, email.parser, hashlib
import hmac, http.client, json, logging.handlers, lzma, bz2, mimetypes, multiprocessing, os
import secrets, select, signal, socket, sqlite3, ssl, tempfile, urllib.request, uuid, zipimport
import zlib, zoneinfo
ssl.create_default_context()
hashlib.sha256(b"").hexdigest()
assert os.getuid() == 65532, os.getuid()
print("image.sh: distroless stand-in: Python", ".".join(map(str, __import__("sys").version_info[:3])), "imports its stdlib")
' >&2

rm -f "$CACHE"/bases-*
# Older stand-ins (now untagged) go; nothing else lives in this storage.
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
mv "$work/stamp" "$stamp"
say "stand-ins built in $((SECONDS - started)) s (recipe $recipe)"
report
