#!/usr/bin/env bash
# Build the container image from the Dockerfile, named REGISTRY/IMAGE_NAME:TAG.
# Run with --help for usage.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
    cat <<EOF
Usage: $PROG [options] [-- DOCKER_BUILD_ARGS...]

Build the release-server image (the Dockerfile: a builder stage makes the pyz
and installs Granian for the target platform, the final stage is distroless)
and tag it REGISTRY/IMAGE_NAME:TAG. Needs a running Docker daemon. Arguments
after -- go to 'docker build' as they are (e.g. -- --platform linux/arm64, or
--push with buildx).

Environment (each is also passed to the Dockerfile as a build arg):
  REGISTRY     registry host (default ghcr.io)
  IMAGE_NAME   image path, lower-cased (default: GITHUB_REPOSITORY, else
               local/release-server)
  TAG          image tag (default: the version in release_server/__init__.py)
  VERSION      org.opencontainers.image.version label (default TAG)
  REVISION     org.opencontainers.image.revision label (default: git HEAD)
  SOURCE       org.opencontainers.image.source label (default
               https://github.com/IMAGE_NAME, which links the image to its
               repository on GHCR)
  DOCKER       docker binary (default docker)

Options:
  -n, --dry-run   print the docker build command instead of running it
                  (needs no daemon)
  -h, --help      show this help

Exit status: 0 on success, 1 when the build failed or no daemon answers,
2 on a usage error.

Examples:
  $PROG
  REGISTRY=ghcr.io IMAGE_NAME=acme/release-server TAG=1.2.3 $PROG
  docker run -p 8000:8000 -e AUTH_TOKEN=secret -v release-data:/data \\
      ghcr.io/acme/release-server:1.2.3
EOF
}

DRY=""
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    -n | --dry-run)
        DRY=1
        shift
        ;;
    --)
        shift
        extra=("$@")
        break
        ;;
    *) die_usage "unknown argument: $1" ;;
    esac
done

cd "$ROOT"
code_version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' release_server/__init__.py)"
REGISTRY="${REGISTRY:-ghcr.io}"
# Docker accepts lower-case repository names only; GitHub owners often are not.
IMAGE_NAME="$(printf '%s' "${IMAGE_NAME:-${GITHUB_REPOSITORY:-local/release-server}}" | tr '[:upper:]' '[:lower:]')"
TAG="${TAG:-$code_version}"
[[ -n "$TAG" ]] || die_usage "no TAG, and no __version__ found in release_server/__init__.py"
VERSION="${VERSION:-$TAG}"
REVISION="${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
SOURCE="${SOURCE:-https://github.com/$IMAGE_NAME}"
DOCKER="${DOCKER:-docker}"
IMAGE="$REGISTRY/$IMAGE_NAME:$TAG"

command=("$DOCKER" build --tag "$IMAGE")
for arg in REGISTRY IMAGE_NAME TAG VERSION REVISION SOURCE; do
    command+=(--build-arg "$arg=${!arg}")
done
command+=(${extra[@]+"${extra[@]}"} .)

quoted="$(shell_quote "${command[@]}")"
if [[ -n "$DRY" ]]; then
    echo "$quoted"
    exit 0
fi

command -v "$DOCKER" >/dev/null 2>&1 ||
    die "docker ('$DOCKER') is not installed; building the image needs Docker (or set DOCKER=podman)"
"$DOCKER" info >/dev/null 2>&1 ||
    die "no Docker daemon answers ('$DOCKER info' failed): start Docker, or point DOCKER_HOST at one"
echo "+ $quoted"
"${command[@]}" || die "docker build failed"
echo "$PROG: built $IMAGE"
