#!/usr/bin/env bash
# Delete one or more packages from a release-server (DELETE /assets/{name}).
# Run with --help for usage.
set -euo pipefail

PROG="$(basename "$0")"

usage() {
    cat <<EOF
Usage: $PROG [options] NAME [NAME...]

Delete packages from a release-server with DELETE /assets/{name}. NAME is the
package name as the server lists it (not a local path); it is percent-encoded
in the URL, so spaces and non-ASCII names work.

Options:
  -u, --url URL       server base URL (env RELEASE_SERVER_URL,
                      default http://127.0.0.1:8000)
  -t, --token TOKEN   bearer token (env RELEASE_SERVER_TOKEN). Prefer the
                      environment variable: arguments are visible to other
                      users in the process list.
  -f, --force         a name the server does not have is not an error
                      (like rm -f); without it, a missing name fails
  -k, --insecure      do not verify the server's TLS certificate
  -q, --quiet         print only errors
  -h, --help          show this help

Environment:
  RELEASE_SERVER_URL          default for --url
  RELEASE_SERVER_TOKEN        default for --token
  RELEASE_SERVER_RETRIES      extra attempts after a transient failure
                              (connection refused or reset, HTTP 502/503/504);
                              default 4
  RELEASE_SERVER_RETRY_DELAY  seconds before the first retry, doubled after
                              each one (at most 30); default 2

Names are deleted in order; the script stops at the first failure.

Exit status: 0 when every name was deleted (or, with -f, was already absent),
1 when a deletion failed, 2 on a usage error (bad option, no token).

Examples:
  $PROG app-1.2.3.tar.gz
  RELEASE_SERVER_URL=https://releases.example.com $PROG -f old-a.zip old-b.zip
EOF
}

say() { [[ -n "$QUIET" ]] || printf '%s: %s\n' "$PROG" "$*"; }
err() { printf '%s: error: %s\n' "$PROG" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die_usage() {
    err "$*"
    printf "Try '%s --help'.\n" "$PROG" >&2
    exit 2
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
    detail="$(sed -n 's/.*"detail"[[:space:]]*:[[:space:]]*"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$1" | head -n 1)"
    if [[ -z "$detail" ]]; then
        detail="$(head -c 300 "$1" | tr -s '\r\n\t' '   ')"
    fi
    printf '%s' "$detail"
}

URL="${RELEASE_SERVER_URL:-http://127.0.0.1:8000}"
TOKEN="${RELEASE_SERVER_TOKEN:-}"
FORCE=""
INSECURE=""
QUIET=""
NAMES=()

need_arg() {
    [[ $# -ge 2 ]] || die_usage "option $1 needs a value"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    -u | --url)
        need_arg "$@"
        URL="$2"
        shift 2
        ;;
    --url=*)
        URL="${1#*=}"
        shift
        ;;
    -t | --token)
        need_arg "$@"
        TOKEN="$2"
        shift 2
        ;;
    --token=*)
        TOKEN="${1#*=}"
        shift
        ;;
    -f | --force)
        FORCE=1
        shift
        ;;
    -k | --insecure)
        INSECURE=1
        shift
        ;;
    -q | --quiet)
        QUIET=1
        shift
        ;;
    --)
        shift
        NAMES+=("$@")
        break
        ;;
    -?*) die_usage "unknown option: $1" ;;
    *)
        NAMES+=("$1")
        shift
        ;;
    esac
done

RETRIES="${RELEASE_SERVER_RETRIES:-4}"
RETRY_DELAY="${RELEASE_SERVER_RETRY_DELAY:-2}"
[[ "$RETRIES" =~ ^[0-9]+$ ]] || die_usage "RELEASE_SERVER_RETRIES must be a whole number, got '$RETRIES'"
[[ "$RETRY_DELAY" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
    die_usage "RELEASE_SERVER_RETRY_DELAY must be a number of seconds, got '$RETRY_DELAY'"

[[ ${#NAMES[@]} -gt 0 ]] || die_usage "no package name given"
[[ -n "$URL" ]] || die_usage "no server URL: pass -u/--url or set RELEASE_SERVER_URL"
[[ "$URL" =~ ^https?:// ]] || die_usage "server URL must start with http:// or https://, got '$URL'"
[[ -n "$TOKEN" ]] || die_usage "no token: pass -t/--token or set RELEASE_SERVER_TOKEN"
for name in "${NAMES[@]}"; do
    [[ -n "$name" ]] || die_usage "empty package name"
    [[ "$name" != */* ]] || die_usage "'$name' is not a package name: names have no '/' (pass the name, not a path)"
done
command -v curl >/dev/null 2>&1 || {
    err "curl is not installed"
    exit 1
}
URL="${URL%/}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# curl reads the Authorization header from a file so the token never appears
# in the process list.
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/auth"
chmod 600 "$WORK/auth"

CURL_OPTS=(--silent --show-error --connect-timeout 10 -H "@$WORK/auth")
[[ -z "$INSECURE" ]] || CURL_OPTS+=(--insecure)

delete_one() {
    local name="$1" url attempt status code delay message maybe_done=""
    url="$URL/assets/$(urlencode "$name")"
    delay="$RETRY_DELAY"
    attempt=1

    while :; do
        code=0
        status="$(curl "${CURL_OPTS[@]}" -X DELETE -o "$WORK/body" -w '%{http_code}' "$url" \
            2>"$WORK/curl.err")" || code=$?

        message=""
        if [[ $code -ne 0 ]]; then
            case $code in
            7)
                message="cannot reach $URL (is the server running there? see --url / RELEASE_SERVER_URL): $(curl_error)"
                ;;
            52 | 55 | 56)
                # The connection broke after the request went out: the server
                # may have deleted the package already.
                maybe_done=1
                message="connection to $URL broke: $(curl_error)"
                ;;
            6)
                err "cannot resolve the host in $URL (check --url / RELEASE_SERVER_URL)"
                return 1
                ;;
            *)
                err "deleting $name on $URL failed: $(curl_error) (curl exit $code)"
                return 1
                ;;
            esac
        else
            case "$status" in
            200 | 202 | 204)
                say "deleted $name"
                return 0
                ;;
            404)
                if [[ -n "$FORCE" ]]; then
                    say "$name is not on the server; nothing to delete"
                    return 0
                elif [[ -n "$maybe_done" ]]; then
                    say "$name is gone (deleted by an earlier attempt)"
                    return 0
                fi
                err "$name is not on $URL (HTTP 404); pass -f/--force to ignore missing names"
                return 1
                ;;
            502 | 503 | 504)
                [[ "$status" != 504 ]] || maybe_done=1
                message="server answered HTTP $status: $(server_detail "$WORK/body")"
                ;;
            401 | 403)
                err "not authorized (HTTP $status): $(server_detail "$WORK/body")"
                err "check the token (-t/--token or RELEASE_SERVER_TOKEN) and that the server has AUTH_TOKEN set"
                return 1
                ;;
            400)
                err "the server rejected the name $name (HTTP 400): $(server_detail "$WORK/body")"
                return 1
                ;;
            405)
                err "HTTP 405 from $url: is $URL a release-server? $(server_detail "$WORK/body")"
                return 1
                ;;
            *)
                err "deleting $name failed with HTTP $status: $(server_detail "$WORK/body")"
                return 1
                ;;
            esac
        fi

        if [[ $attempt -gt $RETRIES ]]; then
            err "$message"
            err "giving up on $name after $attempt attempt(s)"
            return 1
        fi
        warn "$message; retrying in ${delay}s (attempt $((attempt + 1)) of $((RETRIES + 1)))"
        sleep "$delay"
        delay="$(awk -v d="$delay" 'BEGIN { d *= 2; if (d > 30) d = 30; print d }')"
        attempt=$((attempt + 1))
    done
}

for name in "${NAMES[@]}"; do
    delete_one "$name" || exit 1
done
