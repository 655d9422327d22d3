#!/usr/bin/env bash
# Push the packaged Helm chart to an OCI registry (GHCR by default).
# Run with --help for usage.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<EOF
Usage: $PROG [options] [CHART_PACKAGE]

Push a packaged chart (made by 'helm package chart --version X -d dist', or by
scripts/release.sh) to an OCI registry:

  helm registry login HOST --username USER --password-stdin   (token on stdin)
  helm push CHART_PACKAGE oci://HOST/OWNER/charts
  helm registry logout HOST

CHART_PACKAGE defaults to dist/release-server-VERSION.tgz, where VERSION comes
from --version, else from a v* tag in GITHUB_REF_NAME (v1.2.3 -> 1.2.3).

Options:
  --version VERSION    chart version, picks dist/release-server-VERSION.tgz
  --registry URL       target, e.g. oci://ghcr.io/acme/charts (env
                       CHART_REGISTRY; default oci://ghcr.io/OWNER/charts)
  --owner OWNER        registry namespace for the default target (env
                       CHART_OWNER, else GITHUB_REPOSITORY_OWNER); lower-cased
  --username USER      registry user (env REGISTRY_USERNAME, else GITHUB_ACTOR)
  --no-login           skip 'helm registry login' (already logged in)
  -n, --dry-run        print the helm commands instead of running them
                       (env DRY_RUN=1 does the same); needs no token or helm
  -h, --help           show this help

Environment:
  REGISTRY_TOKEN       password/token for the registry, read from the
                       environment only (else GITHUB_TOKEN); for GHCR a token
                       with the packages:write permission

Exit status: 0 on success, 1 when a helm command failed, 2 on a usage error.

Examples:
  GITHUB_TOKEN=... $PROG --owner acme --username me --version 1.2.3
  DRY_RUN=1 $PROG dist/release-server-1.2.3.tgz --owner acme
EOF
}

VERSION=""
PACKAGE=""
REGISTRY="${CHART_REGISTRY:-}"
OWNER="${CHART_OWNER:-${GITHUB_REPOSITORY_OWNER:-}}"
USERNAME="${REGISTRY_USERNAME:-${GITHUB_ACTOR:-}}"
LOGIN=1
case "${DRY_RUN:-}" in
"" | 0 | false | no) DRY="" ;;
*) DRY=1 ;;
esac

while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --version)
        need_arg "$@"
        VERSION="$2"
        shift 2
        ;;
    --registry)
        need_arg "$@"
        REGISTRY="$2"
        shift 2
        ;;
    --owner)
        need_arg "$@"
        OWNER="$2"
        shift 2
        ;;
    --username)
        need_arg "$@"
        USERNAME="$2"
        shift 2
        ;;
    --no-login)
        LOGIN=""
        shift
        ;;
    -n | --dry-run)
        DRY=1
        shift
        ;;
    -?*) die_usage "unknown option: $1" ;;
    *)
        [[ -z "$PACKAGE" ]] || die_usage "only one chart package at a time (got '$PACKAGE' and '$1')"
        PACKAGE="$1"
        shift
        ;;
    esac
done

if [[ -z "$PACKAGE" ]]; then
    if [[ -z "$VERSION" && "${GITHUB_REF_NAME:-}" == v[0-9]* ]]; then
        VERSION="${GITHUB_REF_NAME#v}"
    fi
    [[ -n "$VERSION" ]] || die_usage "no chart: pass CHART_PACKAGE or --version (or run on a v* tag)"
    PACKAGE="dist/release-server-$VERSION.tgz"
fi
[[ -f "$PACKAGE" ]] || die_usage "chart package $PACKAGE not found (build it with: helm package chart --version VERSION --app-version VERSION -d dist)"
[[ "$PACKAGE" == *.tgz ]] || die_usage "$PACKAGE is not a chart package (.tgz)"

if [[ -z "$REGISTRY" ]]; then
    [[ -n "$OWNER" ]] || die_usage "no registry: pass --registry oci://HOST/PATH, or --owner (env CHART_OWNER / GITHUB_REPOSITORY_OWNER) for ghcr.io"
    REGISTRY="oci://ghcr.io/$(printf '%s' "$OWNER" | tr '[:upper:]' '[:lower:]')/charts"
fi
[[ "$REGISTRY" == oci://?* ]] || die_usage "registry must be an oci:// URL, got '$REGISTRY'"
REGISTRY="${REGISTRY%/}"
HOST="${REGISTRY#oci://}"
HOST="${HOST%%/*}"

TOKEN="${REGISTRY_TOKEN:-${GITHUB_TOKEN:-}}"
if [[ -n "$LOGIN" ]]; then
    [[ -n "$USERNAME" ]] || die_usage "no registry user: pass --username or set REGISTRY_USERNAME (or GITHUB_ACTOR)"
    [[ -n "$DRY" || -n "$TOKEN" ]] || die_usage "no registry token: set REGISTRY_TOKEN (or GITHUB_TOKEN)"
fi

# Print a command the way a shell would read it back, then run it unless dry.
show() {
    printf '%s%s\n' "${DRY:++ }" "$(shell_quote "$@")"
}

if [[ -n "$DRY" ]]; then
    echo "$PROG: dry run, these commands would run:"
    if [[ -n "$LOGIN" ]]; then
        show helm registry login "$HOST" --username "$USERNAME" --password-stdin
    fi
    show helm push "$PACKAGE" "$REGISTRY"
    if [[ -n "$LOGIN" ]]; then
        show helm registry logout "$HOST"
    fi
    exit 0
fi

command -v helm >/dev/null 2>&1 ||
    die "helm is not installed (https://helm.sh/docs/intro/install/; helm >= 3.8 speaks OCI)"

if [[ -n "$LOGIN" ]]; then
    show helm registry login "$HOST" --username "$USERNAME" --password-stdin
    printf '%s' "$TOKEN" | helm registry login "$HOST" --username "$USERNAME" --password-stdin ||
        die "login to $HOST as $USERNAME failed (for GHCR the token needs packages:write)"
    trap 'helm registry logout "$HOST" >/dev/null 2>&1 || true' EXIT
fi

show helm push "$PACKAGE" "$REGISTRY"
helm push "$PACKAGE" "$REGISTRY" || die "pushing $PACKAGE to $REGISTRY failed"
echo "$PROG: pushed $PACKAGE to $REGISTRY"
