# shellcheck shell=bash disable=SC2034 # PROG is read by the scripts
# Helpers shared by build.sh, release.sh and publish-chart.sh. Sourced, not
# executed (upload.sh and delete.sh are self-contained and do not use it):
#   # shellcheck source-path=SCRIPTDIR
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The sourcing script defines usage() (its --help text) and sets -euo pipefail.

# The script's name, at the start of every message.
PROG="$(basename "$0")"

# --- Messages and errors -----------------------------------------------------

err() { printf '%s: error: %s\n' "$PROG" "$*" >&2; }

# Report an error and exit 1.
die() {
    err "$*"
    exit 1
}

# Report a usage error, point at --help and exit 2.
die_usage() {
    err "$*"
    printf "Try '%s --help'.\n" "$PROG" >&2
    exit 2
}

# Fail with a usage error when option $1 has no value after it. Call with "$@".
need_arg() {
    [[ $# -ge 2 ]] || die_usage "option $1 needs a value"
}

# The arguments as a shell would read them back: quoted where needed, joined
# by spaces (for printing a command before it runs).
shell_quote() {
    local quoted
    printf -v quoted '%q ' "$@"
    printf '%s' "${quoted% }"
}
