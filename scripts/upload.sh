#!/usr/bin/env bash
# Upload one or more files to a release-server (PUT /assets/{name}, or
# PUT /{owner}/{repo}/releases/download/{tag}/{name} with --repo and --tag).
# Self-contained: copy this one file into a CI repository. Run with --help.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: $PROG [options] FILE [FILE...]

Upload files to a release-server. Each file is stored under its base name
(percent-encoded in the URL, so spaces and non-ASCII names work): in the root
release with PUT /assets/{name}, or, with --repo and --tag, in release TAG of
OWNER/REPO with PUT /{owner}/{repo}/releases/download/{tag}/{name} (the server
creates the release if need be). The file's sha256 is sent in
X-Checksum-Sha256, so the server verifies what it received and stores nothing
on a mismatch.

Options:
  -u, --url URL       server base URL (env RELEASE_SERVER_URL,
                      default http://127.0.0.1:8000)
  -t, --token TOKEN   bearer token (env RELEASE_SERVER_TOKEN). Prefer the
                      environment variable: arguments are visible to other
                      users in the process list.
  -f, --force         replace a package that already exists (?overwrite=true);
                      without it an existing name is an error
  -n, --name NAME     store the file under NAME (only with a single FILE)
      --repo OWNER/REPO
                      upload into a release of repository OWNER/REPO (env
                      RELEASE_SERVER_REPO); needs --tag
      --tag TAG       the release's tag, e.g. v1.2.0 (env RELEASE_SERVER_TAG);
                      needs --repo. Without both, files go to the root release
      --cacert FILE   verify the server's TLS certificate with the CA
                      certificate(s) in FILE (a private CA, a self-signed
                      certificate); curl also reads CURL_CA_BUNDLE
  -k, --insecure      do not verify the server's TLS certificate
  -q, --quiet         print only errors
  -h, --help          show this help

Environment:
  RELEASE_SERVER_URL          default for --url (set but empty is an error)
  RELEASE_SERVER_TOKEN        default for --token
  RELEASE_SERVER_REPO         default for --repo (empty counts as unset)
  RELEASE_SERVER_TAG          default for --tag (empty counts as unset)
  RELEASE_SERVER_RETRIES      extra attempts after a transient failure
                              (connection refused or reset, HTTP 502/503/504);
                              default 4
  RELEASE_SERVER_RETRY_DELAY  seconds before the first retry, doubled after
                              each one (at most 30); default 2. A Retry-After
                              from the server is honoured instead (at most 60)
  CURL_CA_BUNDLE              CA certificates curl trusts when --cacert is not
                              given

All files are checked before anything is sent; uploads then run in order and
stop at the first failure.

Exit status:
  0  every file was uploaded
  1  an upload failed: the server refused it (name exists, bad token, checksum
     mismatch, too large, disk full...), TLS or network failure, retries used
     up, curl missing
  2  usage error: unknown option, missing value, no FILE, a FILE that is not a
     readable file, no URL or token, bad --cacert or RELEASE_SERVER_RETRIES*,
     only one of --repo and --tag, --repo not OWNER/REPO, a '/' in --tag

Examples:
  export RELEASE_SERVER_URL=https://releases.example.com
  export RELEASE_SERVER_TOKEN=...
  $PROG dist/app-1.2.3.tar.gz dist/app-1.2.3.zip
  $PROG -f -n app-latest.tar.gz dist/app-1.2.3.tar.gz
  $PROG --repo acme/tool --tag v1.2.3 dist/tool-1.2.3-linux.tar.gz
USAGE
}

# === client helpers: the same text in upload.sh and delete.sh ================
# Each script is self-contained (CI copies one file), so this block is copied,
# not sourced; tests/test_scripts.py checks the two copies are identical.
# Needs bash, curl and POSIX tools (awk, sed, grep, tr, ...); not python or jq.

# The script's name, at the start of every message.
PROG="$(basename -- "$0")"

err() { printf '%s: error: %s\n' "$PROG" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
hint() { printf '%s: hint: %s\n' "$PROG" "$*" >&2; }
say() { [[ -n "$QUIET" ]] || printf '%s: %s\n' "$PROG" "$*"; }

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

# The settings before any option: URL, TOKEN, REPO and TAG from the
# environment (an unset RELEASE_SERVER_URL means the local default; an empty
# one is an error; an empty RELEASE_SERVER_REPO or _TAG counts as unset), the
# flags FORCE, INSECURE and QUIET off, no CA file.
client_defaults() {
    URL="${RELEASE_SERVER_URL-http://127.0.0.1:8000}"
    TOKEN="${RELEASE_SERVER_TOKEN:-}"
    REPO="${RELEASE_SERVER_REPO:-}"
    TAG="${RELEASE_SERVER_TAG:-}"
    FORCE=""
    INSECURE=""
    QUIET=""
    CACERT=""
}

# Take $1 if it is an option every client has: -h, -u, -t, -f, -k, -q,
# --cacert, --repo, --tag (long forms too). Call with "$@". Sets SHIFT_BY to
# the number of arguments used; returns 1, using none, for any other argument.
client_option() {
    SHIFT_BY=1
    case "$1" in
    -h | --help)
        usage
        exit 0
        ;;
    -u | --url | -t | --token | --cacert | --repo | --tag)
        need_arg "$@"
        SHIFT_BY=2
        case "$1" in
        -u | --url) URL="$2" ;;
        -t | --token) TOKEN="$2" ;;
        --repo | --tag) set_release_option "$1" "$2" ;;
        *) CACERT="$2" ;;
        esac
        ;;
    --url=*) URL="${1#*=}" ;;
    --token=*) TOKEN="${1#*=}" ;;
    --cacert=*) CACERT="${1#*=}" ;;
    --repo=* | --tag=*) set_release_option "${1%%=*}" "${1#*=}" ;;
    -f | --force) FORCE=1 ;;
    -k | --insecure) INSECURE=1 ;;
    -q | --quiet) QUIET=1 ;;
    *) return 1 ;;
    esac
}

# set_release_option OPTION VALUE: REPO or TAG from --repo or --tag; an empty
# value is a usage error (an unset variable in CI must not send files to the
# root release).
set_release_option() {
    [[ -n "$2" ]] || die_usage "option $1 needs a value, got an empty one"
    case "$1" in
    --repo) REPO="$2" ;;
    *) TAG="$2" ;;
    esac
}

# Usage errors in the release: --repo and --tag come together (a release
# below the root) or not at all (the root release); OWNER/REPO is two
# non-empty parts around one '/'; a tag has no '/'.
check_release() {
    [[ -n "$REPO$TAG" ]] || return 0
    [[ -n "$REPO" ]] ||
        die_usage "tag '$TAG' given (--tag or RELEASE_SERVER_TAG) but no repository: pass --repo OWNER/REPO or set RELEASE_SERVER_REPO too; give neither for the root release"
    [[ -n "$TAG" ]] ||
        die_usage "repository '$REPO' given (--repo or RELEASE_SERVER_REPO) but no tag: pass --tag TAG or set RELEASE_SERVER_TAG too; give neither for the root release"
    [[ "$REPO" =~ ^[^/]+/[^/]+$ ]] ||
        die_usage "--repo must be OWNER/REPO (two non-empty names around one '/'), got '$REPO'"
    [[ "$TAG" != */* ]] || die_usage "--tag must be one name without '/', got '$TAG'"
}

# Usage errors in the settings: the retry variables, the server URL (http or
# https), the token, the --cacert file, the release. Then curl must be
# installed.
check_settings() {
    RETRIES="${RELEASE_SERVER_RETRIES:-4}"
    RETRY_DELAY="${RELEASE_SERVER_RETRY_DELAY:-2}"
    [[ "$RETRIES" =~ ^[0-9]+$ ]] || die_usage "RELEASE_SERVER_RETRIES must be a whole number, got '$RETRIES'"
    [[ "$RETRY_DELAY" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
        die_usage "RELEASE_SERVER_RETRY_DELAY must be a number of seconds, got '$RETRY_DELAY'"
    [[ -n "$URL" ]] || die_usage "no server URL: pass -u/--url or set RELEASE_SERVER_URL"
    [[ "$URL" =~ ^https?:// ]] || die_usage "server URL must start with http:// or https://, got '$URL'"
    [[ -n "$TOKEN" ]] || die_usage "no token: pass -t/--token or set RELEASE_SERVER_TOKEN"
    [[ -z "$CACERT" || (-f "$CACERT" && -r "$CACERT") ]] ||
        die_usage "--cacert $CACERT: not a readable file"
    check_release
    command -v curl >/dev/null 2>&1 || die "curl is not installed"
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
    [[ -z "$CACERT" ]] || CURL_OPTS+=(--cacert "$CACERT")
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

# asset_url NAME: the URL of package NAME, each path segment percent-encoded:
# $URL/assets/NAME in the root release, $URL/OWNER/REPO/releases/download/TAG/NAME
# with --repo and --tag.
asset_url() {
    if [[ -n "$REPO" ]]; then
        printf '%s/%s/%s/releases/download/%s/%s' "$URL" "$(urlencode "${REPO%%/*}")" \
            "$(urlencode "${REPO#*/}")" "$(urlencode "$TAG")" "$(urlencode "$1")"
    else
        printf '%s/assets/%s' "$URL" "$(urlencode "$1")"
    fi
}

# asset_label NAME: package NAME as messages name it: NAME in the root release,
# OWNER/REPO TAG NAME with --repo and --tag.
asset_label() {
    printf '%s' "${REPO:+$REPO $TAG }$1"
}

# json_field KEY FILE: the value of the top-level KEY in the JSON document in
# FILE, decoded (\" \\ \/ \n \t \uXXXX, surrogate pairs, to UTF-8). An array of
# strings prints one element a line; any other value prints nothing.
json_field() {
    head -c 65536 "$2" | LC_ALL=C awk -v want="$1" '
        function hexval(h,    i, d, n) {
            n = 0
            for (i = 1; i <= 4; i++) {
                d = index("0123456789abcdef", tolower(substr(h, i, 1)))
                if (d == 0) return -1
                n = n * 16 + d - 1
            }
            return n
        }
        function utf8(n) {
            if (n <= 0 || (n >= 55296 && n < 57344)) return "?"
            if (n < 128) return sprintf("%c", n)
            if (n < 2048) return sprintf("%c%c", 192 + int(n / 64), 128 + n % 64)
            if (n < 65536)
                return sprintf("%c%c%c", 224 + int(n / 4096), 128 + int(n / 64) % 64, 128 + n % 64)
            return sprintf("%c%c%c%c", 240 + int(n / 262144), 128 + int(n / 4096) % 64,
                128 + int(n / 64) % 64, 128 + n % 64)
        }
        function skip_space() {
            while (pos <= len && index(" \t\r\n", substr(doc, pos, 1))) pos++
        }
        # The string starting at the quote at pos, decoded into STR; pos moves
        # past its closing quote. Returns 0 for an unterminated string.
        function read_string(    c, out, n, lo) {
            out = ""
            pos++
            while (pos <= len) {
                c = substr(doc, pos, 1)
                if (c == "\"") {
                    pos++
                    STR = out
                    return 1
                }
                if (c != "\\") {
                    out = out c
                    pos++
                    continue
                }
                c = substr(doc, pos + 1, 1)
                pos += 2
                if (c == "n") out = out "\n"
                else if (c == "t") out = out "\t"
                else if (c == "r") out = out "\r"
                else if (c == "b" || c == "f") out = out " "
                else if (c == "u") {
                    n = hexval(substr(doc, pos, 4))
                    pos += 4
                    if (n >= 55296 && n < 56320 && substr(doc, pos, 2) == "\\u") {
                        lo = hexval(substr(doc, pos + 2, 4))
                        if (lo >= 56320 && lo < 57344) {
                            n = 65536 + (n - 55296) * 1024 + (lo - 56320)
                            pos += 6
                        }
                    }
                    out = out utf8(n)
                } else out = out c
            }
            return 0
        }
        { doc = doc (NR > 1 ? "\n" : "") $0 }
        END {
            len = length(doc)
            pos = 1
            depth = 0
            while (pos <= len) {
                c = substr(doc, pos, 1)
                if (c == "\"") {
                    if (!read_string()) exit
                    if (depth != 1 || STR != want) continue
                    skip_space()
                    if (substr(doc, pos, 1) != ":") continue
                    pos++
                    skip_space()
                    c = substr(doc, pos, 1)
                    if (c == "\"" && read_string()) print STR
                    if (c != "[") exit
                    pos++
                    for (;;) {
                        skip_space()
                        c = substr(doc, pos, 1)
                        if (c == ",") pos++
                        else if (c == "\"" && read_string()) print STR
                        else exit
                    }
                }
                if (c == "{" || c == "[") depth++
                else if (c == "}" || c == "]") depth--
                pos++
            }
        }'
}

# The text on one line, control characters made spaces.
one_line() {
    LC_ALL=C tr -s '\000-\037\177' ' ' | sed 's/^ //; s/ $//'
}

# curl's own message, on one line.
curl_error() {
    local msg
    msg="$(one_line <"$WORK/curl.err")"
    printf '%s' "${msg:-no message from curl}"
}

# What the server said went wrong: its "detail" (or "message"), else the start
# of the body.
server_detail() {
    local detail
    detail="$(json_field detail "$1" | one_line)"
    [[ -n "$detail" ]] || detail="$(json_field message "$1" | one_line)"
    [[ -n "$detail" ]] || detail="$(head -c 300 "$1" | one_line)"
    printf '%s' "${detail:-no details}"
}

# The seconds the server asked to wait in the Retry-After header of the answer
# (a number or an HTTP date), at most 60; nothing when it sent none.
retry_after() {
    local value when now
    value="$(LC_ALL=C awk 'tolower(substr($0, 1, 12)) == "retry-after:" {
        v = substr($0, 13); sub(/^[ \t]+/, "", v); sub(/[ \t\r]+$/, "", v) } END { print v }' \
        "$WORK/headers")"
    if [[ "$value" =~ ^[0-9]+$ ]]; then
        value="${value#"${value%%[!0]*}"}"
        [[ ${#value} -le 3 ]] || value=60
        value="${value:-0}"
    elif [[ -n "$value" ]] && when="$(date -u -d "$value" +%s 2>/dev/null)"; then
        now="$(date -u +%s)"
        value=$((when > now ? when - now : 0))
    else
        return 0
    fi
    printf '%s' $((value > 60 ? 60 : value))
}

# request NAME CURL_ARGS...: run curl "${CURL_OPTS[@]}" CURL_ARGS... (the URL
# last), the answer's body going to $WORK/body. A transient failure (connection
# refused or broken, HTTP 502/503/504) is retried RETRIES times, waiting
# RETRY_DELAY seconds and then twice as long each time (at most 30), or as long
# as the server's Retry-After asks (at most 60).
# NAME is the package the messages speak of.
# Returns 1 after reporting an error: the host does not resolve, TLS fails,
# the server refuses the token (HTTP 401/403), or the retries ran out.
# Otherwise returns 0 with
#   CURL_CODE   curl's exit status: 0 when the server answered, else a failure
#               for the caller to report (curl's message: curl_error)
#   STATUS      the HTTP status of the answer
#   ATTEMPT     the number of the attempt that ended it (1 for the first)
#   MAYBE_DONE  1 when an earlier attempt may have reached the server: the
#               connection broke after the request went out, or HTTP 504
# shellcheck disable=SC2034 # upload.sh does not read MAYBE_DONE
request() {
    local name="$1" delay="$RETRY_DELAY" wait message asked
    shift
    ATTEMPT=1
    MAYBE_DONE=""

    while :; do
        CURL_CODE=0
        : >"$WORK/headers"
        : >"$WORK/body" # curl writes no file for an empty body
        STATUS="$(curl "${CURL_OPTS[@]}" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' \
            "$@" 2>"$WORK/curl.err")" || CURL_CODE=$?
        wait="$delay"
        asked=""

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
            35 | 51 | 58 | 60 | 77 | 83)
                err "TLS failure talking to $URL: $(curl_error) (curl exit $CURL_CODE)"
                hint "for a private CA or a self-signed certificate pass --cacert FILE" \
                    "(or set CURL_CA_BUNDLE=FILE); check that the server speaks TLS on that port" \
                    "(http:// or https:// in --url / RELEASE_SERVER_URL); -k/--insecure skips" \
                    "the check (not recommended)"
                return 1
                ;;
            *) return 0 ;;
            esac
        else
            case "$STATUS" in
            502 | 503 | 504)
                [[ "$STATUS" != 504 ]] || MAYBE_DONE=1
                message="server answered HTTP $STATUS: $(server_detail "$WORK/body")"
                asked="$(retry_after)"
                wait="${asked:-$delay}"
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
        warn "$message; retrying in ${wait}s${asked:+ as the server asked (Retry-After)}" \
            "(attempt $((ATTEMPT + 1)) of $((RETRIES + 1)))"
        sleep "$wait"
        delay="$(awk -v d="$delay" 'BEGIN { d *= 2; if (d > 30) d = 30; print d }')"
        ATTEMPT=$((ATTEMPT + 1))
    done
}
# === end of client helpers ===================================================

sha256_of() {
    local sum
    # From stdin: with a file name, sha256sum marks names holding a backslash
    # or newline with a leading backslash on the line.
    if command -v sha256sum >/dev/null 2>&1; then
        sum="$(sha256sum <"$1")"
    elif command -v shasum >/dev/null 2>&1; then
        sum="$(shasum -a 256 <"$1")"
    else
        die "neither sha256sum nor shasum is installed"
    fi
    printf '%s' "${sum%% *}"
}

client_defaults
NAME=""
FILES=()

while [[ $# -gt 0 ]]; do
    if client_option "$@"; then
        shift "$SHIFT_BY"
        continue
    fi
    case "$1" in
    -n | --name)
        need_arg "$@"
        NAME="$2"
        shift 2
        ;;
    --name=*)
        NAME="${1#*=}"
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

[[ ${#FILES[@]} -gt 0 ]] || die_usage "no file given"
[[ -z "$NAME" || ${#FILES[@]} -eq 1 ]] || die_usage "--name works with a single file only"
for file in "${FILES[@]}"; do
    if [[ -d "$file" ]]; then
        die_usage "$file is a directory, not a file"
    elif [[ ! -e "$file" ]]; then
        die_usage "$file: no such file"
    elif [[ ! -f "$file" || ! -r "$file" ]]; then
        die_usage "$file: not a readable regular file"
    fi
done
check_settings

start_requests

# Does the server already hold NAME with this sha256? (After a retried upload
# whose first attempt may have been stored before the connection dropped.)
same_content_stored() {
    local url="$1" sha="$2"
    curl "${CURL_OPTS[@]}" --head --output /dev/null -D "$WORK/head" "$url" 2>/dev/null || return 1
    grep -i '^etag:' "$WORK/head" | grep -qi -- "$sha"
}

upload_one() {
    local file="$1" name="$2" label sha size url target
    label="$(asset_label "$name")"
    sha="$(sha256_of "$file")"
    size="$(wc -c <"$file" | tr -d ' ')"
    url="$(asset_url "$name")"
    target="$url"
    [[ -z "$FORCE" ]] || target="$url?overwrite=true"

    request "$label" -T "$file" -H "X-Checksum-Sha256: $sha" \
        -H "Content-Type: application/octet-stream" "$target" || return 1
    case $CURL_CODE in
    0) ;;
    26)
        err "cannot read $file"
        return 1
        ;;
    *)
        err "upload of $label to $URL failed: $(curl_error) (curl exit $CURL_CODE)"
        return 1
        ;;
    esac

    case "$STATUS" in
    200 | 201)
        local verb="uploaded" stored_url pruned="" old
        [[ "$STATUS" != 201 ]] || verb="created"
        [[ "$STATUS" != 200 ]] || verb="replaced"
        stored_url="$(json_field url "$WORK/body" | one_line)"
        say "$verb $label ($size bytes, sha256 $sha)${stored_url:+ -> $stored_url}"
        while IFS= read -r old; do
            pruned+="${pruned:+, }\"$old\""
        done < <(json_field pruned "$WORK/body")
        [[ -z "$pruned" ]] || say "retention removed: $pruned"
        return 0
        ;;
    409)
        if [[ $ATTEMPT -gt 1 ]] && same_content_stored "$url" "$sha"; then
            say "uploaded $label ($size bytes, sha256 $sha) -> $url (stored by an earlier attempt)"
            return 0
        fi
        if [[ -n "$REPO" ]]; then
            # Not only a taken name: a root package named like the owner, too.
            err "could not store $label (HTTP 409; pass -f/--force to replace an existing asset): $(server_detail "$WORK/body")"
        else
            err "$name already exists on $URL; pass -f/--force to replace it"
        fi
        return 1
        ;;
    400)
        err "the server rejected $label (HTTP 400): $(server_detail "$WORK/body")"
        return 1
        ;;
    413)
        err "$file ($size bytes) is too large for the server (HTTP 413): $(server_detail "$WORK/body")"
        return 1
        ;;
    422)
        err "checksum mismatch for $label (HTTP 422): the server received different bytes than $file (sha256 $sha); nothing was stored: $(server_detail "$WORK/body")"
        return 1
        ;;
    507)
        err "the server's disk is full (HTTP 507): $(server_detail "$WORK/body")"
        return 1
        ;;
    404 | 405)
        err "HTTP $STATUS from $target: is $URL a release-server${REPO:+ with releases below the root}? $(server_detail "$WORK/body")"
        return 1
        ;;
    *)
        err "upload of $label failed with HTTP $STATUS: $(server_detail "$WORK/body")"
        return 1
        ;;
    esac
}

for file in "${FILES[@]}"; do
    upload_one "$file" "${NAME:-$(basename -- "$file")}" || exit 1
done
