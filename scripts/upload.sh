#!/usr/bin/env bash
# Upload one or more files to a release-server (PUT /assets/{name}).
# Run with --help for usage.
set -euo pipefail

PROG="$(basename "$0")"

usage() {
    cat <<EOF
Usage: $PROG [options] FILE [FILE...]

Upload files to a release-server. Each file is stored under its base name
(percent-encoded in the URL, so spaces and non-ASCII names work) with
PUT /assets/{name}. The file's sha256 is sent in X-Checksum-Sha256, so the
server verifies what it received and stores nothing on a mismatch.

Options:
  -u, --url URL       server base URL (env RELEASE_SERVER_URL,
                      default http://127.0.0.1:8000)
  -t, --token TOKEN   bearer token (env RELEASE_SERVER_TOKEN). Prefer the
                      environment variable: arguments are visible to other
                      users in the process list.
  -f, --force         replace a package that already exists (?overwrite=true);
                      without it an existing name is an error
  -n, --name NAME     store the file under NAME (only with a single FILE)
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

All files are checked before anything is sent; uploads then run in order and
stop at the first failure.

Exit status: 0 when every file was uploaded, 1 when an upload failed,
2 on a usage error (bad option, missing file, no token).

Examples:
  export RELEASE_SERVER_URL=https://releases.example.com
  export RELEASE_SERVER_TOKEN=...
  $PROG dist/app-1.2.3.tar.gz dist/app-1.2.3.zip
  $PROG -f -n app-latest.tar.gz dist/app-1.2.3.tar.gz
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

sha256_of() {
    local sum
    if command -v sha256sum >/dev/null 2>&1; then
        sum="$(sha256sum -- "$1")"
    elif command -v shasum >/dev/null 2>&1; then
        sum="$(shasum -a 256 -- "$1")"
    else
        err "neither sha256sum nor shasum is installed"
        exit 1
    fi
    printf '%s' "${sum%% *}"
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

URL="${RELEASE_SERVER_URL:-http://127.0.0.1:8000}"
TOKEN="${RELEASE_SERVER_TOKEN:-}"
FORCE=""
NAME=""
INSECURE=""
QUIET=""
FILES=()

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
    -n | --name)
        need_arg "$@"
        NAME="$2"
        shift 2
        ;;
    --name=*)
        NAME="${1#*=}"
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
        FILES+=("$@")
        break
        ;;
    -?*) die_usage "unknown option: $1" ;;
    *)
        FILES+=("$1")
        shift
        ;;
    esac
done

RETRIES="${RELEASE_SERVER_RETRIES:-4}"
RETRY_DELAY="${RELEASE_SERVER_RETRY_DELAY:-2}"
[[ "$RETRIES" =~ ^[0-9]+$ ]] || die_usage "RELEASE_SERVER_RETRIES must be a whole number, got '$RETRIES'"
[[ "$RETRY_DELAY" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
    die_usage "RELEASE_SERVER_RETRY_DELAY must be a number of seconds, got '$RETRY_DELAY'"

[[ ${#FILES[@]} -gt 0 ]] || die_usage "no file given"
[[ -z "$NAME" || ${#FILES[@]} -eq 1 ]] || die_usage "--name works with a single file only"
[[ -n "$URL" ]] || die_usage "no server URL: pass -u/--url or set RELEASE_SERVER_URL"
[[ "$URL" =~ ^https?:// ]] || die_usage "server URL must start with http:// or https://, got '$URL'"
[[ -n "$TOKEN" ]] || die_usage "no token: pass -t/--token or set RELEASE_SERVER_TOKEN"
command -v curl >/dev/null 2>&1 || {
    err "curl is not installed"
    exit 1
}
URL="${URL%/}"

for file in "${FILES[@]}"; do
    if [[ -d "$file" ]]; then
        die_usage "$file is a directory, not a file"
    elif [[ ! -e "$file" ]]; then
        die_usage "$file: no such file"
    elif [[ ! -f "$file" || ! -r "$file" ]]; then
        die_usage "$file: not a readable regular file"
    fi
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# curl reads the Authorization header from a file so the token never appears
# in the process list.
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$WORK/auth"
chmod 600 "$WORK/auth"

CURL_OPTS=(--silent --show-error --connect-timeout 10 -H "@$WORK/auth")
[[ -z "$INSECURE" ]] || CURL_OPTS+=(--insecure)

# Does the server already hold NAME with this sha256? (After a retried upload
# whose first attempt may have been stored before the connection dropped.)
same_content_stored() {
    local url="$1" sha="$2"
    curl "${CURL_OPTS[@]}" --head --output /dev/null -D "$WORK/head" "$url" 2>/dev/null || return 1
    grep -i '^etag:' "$WORK/head" | grep -qi -- "$sha"
}

upload_one() {
    local file="$1" name="$2" sha size url target attempt status code delay message
    sha="$(sha256_of "$file")"
    size="$(wc -c <"$file" | tr -d ' ')"
    url="$URL/assets/$(urlencode "$name")"
    target="$url"
    [[ -z "$FORCE" ]] || target="$url?overwrite=true"
    delay="$RETRY_DELAY"
    attempt=1

    while :; do
        code=0
        status="$(curl "${CURL_OPTS[@]}" -T "$file" \
            -H "X-Checksum-Sha256: $sha" -H "Content-Type: application/octet-stream" \
            -o "$WORK/body" -w '%{http_code}' "$target" 2>"$WORK/curl.err")" || code=$?

        message=""
        if [[ $code -ne 0 ]]; then
            case $code in
            7)
                message="cannot reach $URL (is the server running there? see --url / RELEASE_SERVER_URL): $(curl_error)"
                ;;
            52 | 55 | 56)
                message="connection to $URL broke: $(curl_error)"
                ;;
            6)
                err "cannot resolve the host in $URL (check --url / RELEASE_SERVER_URL)"
                return 1
                ;;
            26)
                err "cannot read $file"
                return 1
                ;;
            *)
                err "upload of $name to $URL failed: $(curl_error) (curl exit $code)"
                return 1
                ;;
            esac
        else
            case "$status" in
            200 | 201)
                local verb="uploaded" stored_url pruned
                [[ "$status" != 201 ]] || verb="created"
                [[ "$status" != 200 ]] || verb="replaced"
                stored_url="$(json_field url "$WORK/body")"
                say "$verb $name ($size bytes, sha256 $sha)${stored_url:+ -> $stored_url}"
                pruned="$(sed -n 's/.*"pruned"[[:space:]]*:[[:space:]]*\[\([^]]*\)\].*/\1/p' "$WORK/body" | head -n 1)"
                [[ -z "$pruned" ]] || say "retention removed: $pruned"
                return 0
                ;;
            502 | 503 | 504)
                message="server answered HTTP $status: $(server_detail "$WORK/body")"
                ;;
            409)
                if [[ $attempt -gt 1 ]] && same_content_stored "$url" "$sha"; then
                    say "uploaded $name ($size bytes, sha256 $sha) -> $url (stored by an earlier attempt)"
                    return 0
                fi
                err "$name already exists on $URL; pass -f/--force to replace it"
                return 1
                ;;
            401 | 403)
                err "not authorized (HTTP $status): $(server_detail "$WORK/body")"
                err "check the token (-t/--token or RELEASE_SERVER_TOKEN) and that the server has AUTH_TOKEN set"
                return 1
                ;;
            400)
                err "the server rejected $name (HTTP 400): $(server_detail "$WORK/body")"
                return 1
                ;;
            413)
                err "$file ($size bytes) is too large for the server (HTTP 413): $(server_detail "$WORK/body")"
                return 1
                ;;
            422)
                err "checksum mismatch for $name (HTTP 422): the server received different bytes than $file (sha256 $sha); nothing was stored: $(server_detail "$WORK/body")"
                return 1
                ;;
            507)
                err "the server's disk is full (HTTP 507): $(server_detail "$WORK/body")"
                return 1
                ;;
            404 | 405)
                err "HTTP $status from $target: is $URL a release-server? $(server_detail "$WORK/body")"
                return 1
                ;;
            *)
                err "upload of $name failed with HTTP $status: $(server_detail "$WORK/body")"
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

for file in "${FILES[@]}"; do
    upload_one "$file" "${NAME:-$(basename -- "$file")}" || exit 1
done
