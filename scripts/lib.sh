# shellcheck shell=bash disable=SC2034 # the variables set here are read by the scripts
# Helpers shared by the scripts in this directory. Sourced, not executed:
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

# --- Clients of a release-server (upload.sh, delete.sh) ----------------------

say() { [[ -n "$QUIET" ]] || printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

# The settings before any option: URL and TOKEN from the environment, the
# flags FORCE, INSECURE and QUIET off.
client_defaults() {
    URL="${RELEASE_SERVER_URL:-http://127.0.0.1:8000}"
    TOKEN="${RELEASE_SERVER_TOKEN:-}"
    FORCE=""
    INSECURE=""
    QUIET=""
}

# Take $1 if it is an option every client has: -h, -u, -t, -f, -k, -q (long
# forms too). Call with "$@". Sets SHIFT_BY to the number of arguments used;
# returns 1, using none, for any other argument.
client_option() {
    SHIFT_BY=1
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    -u | --url)
        need_arg "$@"
        URL="$2"
        SHIFT_BY=2
        ;;
    --url=*) URL="${1#*=}" ;;
    -t | --token)
        need_arg "$@"
        TOKEN="$2"
        SHIFT_BY=2
        ;;
    --token=*) TOKEN="${1#*=}" ;;
    -f | --force) FORCE=1 ;;
    -k | --insecure) INSECURE=1 ;;
    -q | --quiet) QUIET=1 ;;
    *) return 1 ;;
    esac
}

# RETRIES and RETRY_DELAY from RELEASE_SERVER_RETRIES and
# RELEASE_SERVER_RETRY_DELAY, checked.
read_retry_settings() {
    RETRIES="${RELEASE_SERVER_RETRIES:-4}"
    RETRY_DELAY="${RELEASE_SERVER_RETRY_DELAY:-2}"
    [[ "$RETRIES" =~ ^[0-9]+$ ]] || die_usage "RELEASE_SERVER_RETRIES must be a whole number, got '$RETRIES'"
    [[ "$RETRY_DELAY" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
        die_usage "RELEASE_SERVER_RETRY_DELAY must be a number of seconds, got '$RETRY_DELAY'"
}

# A usage error unless there is a server URL (http or https) and a token.
check_server_settings() {
    [[ -n "$URL" ]] || die_usage "no server URL: pass -u/--url or set RELEASE_SERVER_URL"
    [[ "$URL" =~ ^https?:// ]] || die_usage "server URL must start with http:// or https://, got '$URL'"
    [[ -n "$TOKEN" ]] || die_usage "no token: pass -t/--token or set RELEASE_SERVER_TOKEN"
}

# Get ready to send requests: WORK, a directory removed on exit, and
# CURL_OPTS, the options of every curl call.
start_requests() {
    URL="${URL%/}"
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT

    # curl reads the Authorization header from a file so the token never
    # appears in the process list.
    printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/auth"
    chmod 600 "$WORK/auth"

    CURL_OPTS=(--silent --show-error --connect-timeout 10 -H "@$WORK/auth")
    [[ -z "$INSECURE" ]] || CURL_OPTS+=(--insecure)
}

# Percent-encode one URL path segment (RFC 3986 unreserved characters kept).
urlencode() {
    local LC_ALL=C
    local s="$1" out="" c hex i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
        [a-zA-Z0-9.~_-]) out+="$c" ;;
        *)
            printf -v hex '%%%02X' "'$c"
            out+="$hex"
            ;;
        esac
    done
    printf '%s' "$out"
}

# The value of a string field in a small JSON document (no jq needed).
json_field() {
    sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$2" | head -n 1
}

# curl's own message, on one line.
curl_error() {
    local msg
    msg="$(tr -s '\r\n' '  ' <"$WORK/curl.err")"
    msg="${msg% }"
    printf '%s' "${msg:-no message from curl}"
}

# What the server said went wrong: its "detail", else the start of the body.
server_detail() {
    local detail
    detail="$(json_field detail "$1")"
    if [[ -z "$detail" ]]; then
        detail="$(head -c 300 "$1" | tr -s '\r\n\t' '   ')"
    fi
    printf '%s' "$detail"
}

# request NAME CURL_ARGS...: run curl "${CURL_OPTS[@]}" CURL_ARGS... (the URL
# last), the answer's body going to $WORK/body. A transient failure (connection
# refused or broken, HTTP 502/503/504) is retried RETRIES times, waiting
# RETRY_DELAY seconds and then twice as long each time (at most 30).
# NAME is the package the messages speak of.
# Returns 1 after reporting an error: the host does not resolve, the server
# refuses the token (HTTP 401/403), or the retries ran out. Otherwise returns 0
# with
#   CURL_CODE   curl's exit status: 0 when the server answered, else a failure
#               for the caller to report (curl's message: curl_error)
#   STATUS      the HTTP status of the answer
#   ATTEMPT     the number of the attempt that ended it (1 for the first)
#   MAYBE_DONE  1 when an earlier attempt may have reached the server: the
#               connection broke after the request went out, or HTTP 504
request() {
    local name="$1" delay="$RETRY_DELAY" message
    shift
    ATTEMPT=1
    MAYBE_DONE=""

    while :; do
        CURL_CODE=0
        STATUS="$(curl "${CURL_OPTS[@]}" -o "$WORK/body" -w '%{http_code}' "$@" 2>"$WORK/curl.err")" ||
            CURL_CODE=$?

        if [[ $CURL_CODE -ne 0 ]]; then
            case $CURL_CODE in
            7)
                message="cannot reach $URL (is the server running there? see --url / RELEASE_SERVER_URL): $(curl_error)"
                ;;
            52 | 55 | 56)
                MAYBE_DONE=1
                message="connection to $URL broke: $(curl_error)"
                ;;
            6)
                err "cannot resolve the host in $URL (check --url / RELEASE_SERVER_URL)"
                return 1
                ;;
            *) return 0 ;;
            esac
        else
            case "$STATUS" in
            502 | 503 | 504)
                [[ "$STATUS" != 504 ]] || MAYBE_DONE=1
                message="server answered HTTP $STATUS: $(server_detail "$WORK/body")"
                ;;
            401 | 403)
                err "not authorized (HTTP $STATUS): $(server_detail "$WORK/body")"
                err "check the token (-t/--token or RELEASE_SERVER_TOKEN) and that the server has AUTH_TOKEN set"
                return 1
                ;;
            *) return 0 ;;
            esac
        fi

        if [[ $ATTEMPT -gt $RETRIES ]]; then
            err "$message"
            err "giving up on $name after $ATTEMPT attempt(s)"
            return 1
        fi
        warn "$message; retrying in ${delay}s (attempt $((ATTEMPT + 1)) of $((RETRIES + 1)))"
        sleep "$delay"
        delay="$(awk -v d="$delay" 'BEGIN { d *= 2; if (d > 30) d = 30; print d }')"
        ATTEMPT=$((ATTEMPT + 1))
    done
}
