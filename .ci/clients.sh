#!/usr/bin/env bash
# Install the real GitHub API clients the client tests drive, from the package registries:
#
#   @octokit/rest  (npm)  octokit, as GitHub Actions scripts and semantic-release use it;
#                         tests/clients/octokit_flow.mjs runs with it (tests/test_octokit.py)
#   electron-updater (npm) its update providers, without Electron
#                         (tests/clients/electron_updater_flow.js, tests/test_updaters.py)
#   @jdxcode/mise-linux-x64 (npm) the mise binary for linux-x64 (bin/mise; tests/test_updaters.py)
#                         (the platform package directly: `@jdxcode/mise` only picks it in an
#                         install script, and scripts stay off)
#
# They go to a cache dir (RELEASE_SERVER_TOOLS, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/release-server-tools), into node-clients/; the tests look
# there too. Quick and offline when the pinned versions are already installed.
# Prints `NODE_CLIENTS=<dir>` (the --prefix whose node_modules holds them).
set -euo pipefail

TOOLS="${RELEASE_SERVER_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/release-server-tools}"
PREFIX="$TOOLS/node-clients"
# Exact versions: name and version, installed as name@version.
NPM_PACKAGES=("@octokit/rest 22.0.1" "electron-updater 6.8.10")
if [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]]; then
    NPM_PACKAGES+=("@jdxcode/mise-linux-x64 2026.9.15")
fi

run() {
    echo "+ $*" >&2
    "$@"
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "clients.sh: node and npm are needed (Node.js 20 or newer)" >&2
    exit 1
fi

# The version of an installed package, or nothing.
installed_version() {
    local manifest="$PREFIX/node_modules/$1/package.json"
    [[ -f "$manifest" ]] || return 0
    node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' \
        "$manifest"
}

mkdir -p "$PREFIX"
wanted=()
for entry in "${NPM_PACKAGES[@]}"; do
    read -r name version <<<"$entry"
    if [[ "$(installed_version "$name")" == "$version" ]]; then
        echo "clients.sh: $name@$version already in $PREFIX" >&2
    else
        wanted+=("$name@$version")
    fi
done

if [[ ${#wanted[@]} -gt 0 ]]; then
    run npm install --silent --no-audit --no-fund --ignore-scripts --no-package-lock --save-exact \
        --prefix "$PREFIX" "${wanted[@]}"
    echo "clients.sh: installed ${wanted[*]} into $PREFIX" >&2
fi

echo "NODE_CLIENTS=$PREFIX"
