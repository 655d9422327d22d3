#!/usr/bin/env bash
# Build the release files into dist/: the pyz, the packaged Helm chart, SHA256SUMS.
# Run with --help for usage.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
    cat <<EOF
Usage: $PROG [options] VERSION

Write the release files of VERSION (SemVer, e.g. 1.2.3; a leading v as in a
tag name, v1.2.3, is dropped) into dist/:

  release-server.pyz            python3 build/pyz.py
  release-server-VERSION.tgz    helm package chart --version VERSION
                                  --app-version VERSION -d dist
  SHA256SUMS                    sha256 of the two above ('sha256sum -c' format)

VERSION must be the version the pyz reports (release_server/__init__.py):
bump that first. Without chart/ the chart is skipped, and said so. With
chart/ but no helm the script fails, unless --no-chart says to skip it.

Options:
  --no-chart     do not package the chart (release the pyz alone)
  -h, --help     show this help

Environment:
  PYTHON         interpreter that builds the pyz (default python3)
  HELM           helm binary (default helm on PATH)

Exit status: 0 on success, 1 when a step failed, 2 on a usage error.

Example:
  $PROG 1.2.3 && (cd dist && sha256sum -c SHA256SUMS)
EOF
}

VERSION=""
CHART=1
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    --no-chart)
        CHART=""
        shift
        ;;
    -?*) die_usage "unknown option: $1" ;;
    *)
        [[ -z "$VERSION" ]] || die_usage "one VERSION only (got '$VERSION' and '$1')"
        VERSION="$1"
        shift
        ;;
    esac
done
[[ -n "$VERSION" ]] || die_usage "VERSION is missing"
VERSION="${VERSION#v}"
SEMVER='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'
[[ "$VERSION" =~ $SEMVER ]] || die_usage "VERSION '$VERSION' is not SemVer (MAJOR.MINOR.PATCH[-pre][+build]), as helm requires"

PYTHON="${PYTHON:-python3}"
HELM="${HELM:-helm}"
cd "$ROOT"

if [[ -n "$CHART" ]]; then
    if [[ ! -d chart ]]; then
        echo "$PROG: no chart/ directory: chart skipped"
        CHART=""
    elif ! command -v "$HELM" >/dev/null 2>&1; then
        die "chart/ exists but helm ('$HELM') is not installed: install helm or set HELM=/path/to/helm, or pass --no-chart to release without the chart"
    fi
fi

echo "+ $PYTHON build/pyz.py"
"$PYTHON" build/pyz.py || die "building the pyz failed"
PYZ_VERSION="$("$PYTHON" -I -S dist/release-server.pyz --version)" || die "dist/release-server.pyz does not run"
PYZ_VERSION="${PYZ_VERSION##* }"
[[ "$PYZ_VERSION" == "$VERSION" ]] ||
    die "VERSION $VERSION is not the version of the code ($PYZ_VERSION): set __version__ in release_server/__init__.py first"

files=(release-server.pyz)
if [[ -n "$CHART" ]]; then
    chart_name="$(sed -n 's/^name:[[:space:]]*//p' chart/Chart.yaml | tr -d "\"'[:space:]")"
    [[ -n "$chart_name" ]] || die "chart/Chart.yaml has no name"
    echo "+ $HELM package chart --version $VERSION --app-version $VERSION -d dist"
    "$HELM" package chart --version "$VERSION" --app-version "$VERSION" -d dist ||
        die "helm package failed"
    files+=("$chart_name-$VERSION.tgz")
    [[ -f "dist/${files[1]}" ]] || die "helm did not write dist/${files[1]}"
fi

if command -v sha256sum >/dev/null 2>&1; then
    sha256=(sha256sum)
else
    sha256=(shasum -a 256) # macOS
fi
(cd dist && "${sha256[@]}" "${files[@]}" >SHA256SUMS) || die "writing dist/SHA256SUMS failed"

echo "$PROG: release $VERSION in dist/:"
sed 's/^/  /' dist/SHA256SUMS
