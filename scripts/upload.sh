#!/usr/bin/env bash
# Upload one or more files to a release-server (PUT /assets/{name}).
# Run with --help for usage.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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

sha256_of() {
    local sum
    if command -v sha256sum >/dev/null 2>&1; then
        sum="$(sha256sum -- "$1")"
    elif command -v shasum >/dev/null 2>&1; then
        sum="$(shasum -a 256 -- "$1")"
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

read_retry_settings
[[ ${#FILES[@]} -gt 0 ]] || die_usage "no file given"
[[ -z "$NAME" || ${#FILES[@]} -eq 1 ]] || die_usage "--name works with a single file only"
check_server_settings
command -v curl >/dev/null 2>&1 || die "curl is not installed"

for file in "${FILES[@]}"; do
    if [[ -d "$file" ]]; then
        die_usage "$file is a directory, not a file"
    elif [[ ! -e "$file" ]]; then
        die_usage "$file: no such file"
    elif [[ ! -f "$file" || ! -r "$file" ]]; then
        die_usage "$file: not a readable regular file"
    fi
done

start_requests

# Does the server already hold NAME with this sha256? (After a retried upload
# whose first attempt may have been stored before the connection dropped.)
same_content_stored() {
    local url="$1" sha="$2"
    curl "${CURL_OPTS[@]}" --head --output /dev/null -D "$WORK/head" "$url" 2>/dev/null || return 1
    grep -i '^etag:' "$WORK/head" | grep -qi -- "$sha"
}

upload_one() {
    local file="$1" name="$2" sha size url target
    sha="$(sha256_of "$file")"
    size="$(wc -c <"$file" | tr -d ' ')"
    url="$URL/assets/$(urlencode "$name")"
    target="$url"
    [[ -z "$FORCE" ]] || target="$url?overwrite=true"

    request "$name" -T "$file" -H "X-Checksum-Sha256: $sha" \
        -H "Content-Type: application/octet-stream" "$target" || return 1
    case $CURL_CODE in
    0) ;;
    26)
        err "cannot read $file"
        return 1
        ;;
    *)
        err "upload of $name to $URL failed: $(curl_error) (curl exit $CURL_CODE)"
        return 1
        ;;
    esac

    case "$STATUS" in
    200 | 201)
        local verb="uploaded" stored_url pruned
        [[ "$STATUS" != 201 ]] || verb="created"
        [[ "$STATUS" != 200 ]] || verb="replaced"
        stored_url="$(json_field url "$WORK/body")"
        say "$verb $name ($size bytes, sha256 $sha)${stored_url:+ -> $stored_url}"
        pruned="$(sed -n 's/.*"pruned"[[:space:]]*:[[:space:]]*\[\([^]]*\)\].*/\1/p' "$WORK/body" | head -n 1)"
        [[ -z "$pruned" ]] || say "retention removed: $pruned"
        return 0
        ;;
    409)
        if [[ $ATTEMPT -gt 1 ]] && same_content_stored "$url" "$sha"; then
            say "uploaded $name ($size bytes, sha256 $sha) -> $url (stored by an earlier attempt)"
            return 0
        fi
        err "$name already exists on $URL; pass -f/--force to replace it"
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
        err "HTTP $STATUS from $target: is $URL a release-server? $(server_detail "$WORK/body")"
        return 1
        ;;
    *)
        err "upload of $name failed with HTTP $STATUS: $(server_detail "$WORK/body")"
        return 1
        ;;
    esac
}

for file in "${FILES[@]}"; do
    upload_one "$file" "${NAME:-$(basename -- "$file")}" || exit 1
done
