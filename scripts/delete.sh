#!/usr/bin/env bash
# Delete one or more packages from a release-server (DELETE /assets/{name}).
# Run with --help for usage.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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

client_defaults
NAMES=()

while [[ $# -gt 0 ]]; do
    if client_option "$@"; then
        shift "$SHIFT_BY"
        continue
    fi
    case "$1" in
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

read_retry_settings
[[ ${#NAMES[@]} -gt 0 ]] || die_usage "no package name given"
check_server_settings
for name in "${NAMES[@]}"; do
    [[ -n "$name" ]] || die_usage "empty package name"
    [[ "$name" != */* ]] || die_usage "'$name' is not a package name: names have no '/' (pass the name, not a path)"
done
command -v curl >/dev/null 2>&1 || die "curl is not installed"

start_requests

delete_one() {
    local name="$1" url
    url="$URL/assets/$(urlencode "$name")"

    request "$name" -X DELETE "$url" || return 1
    if [[ $CURL_CODE -ne 0 ]]; then
        err "deleting $name on $URL failed: $(curl_error) (curl exit $CURL_CODE)"
        return 1
    fi

    case "$STATUS" in
    200 | 202 | 204)
        say "deleted $name"
        return 0
        ;;
    404)
        if [[ -n "$FORCE" ]]; then
            say "$name is not on the server; nothing to delete"
            return 0
        elif [[ -n "$MAYBE_DONE" ]]; then
            # An earlier attempt's connection broke, or timed out at a
            # gateway, after the request went out.
            say "$name is gone (deleted by an earlier attempt)"
            return 0
        fi
        err "$name is not on $URL (HTTP 404); pass -f/--force to ignore missing names"
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
        err "deleting $name failed with HTTP $STATUS: $(server_detail "$WORK/body")"
        return 1
        ;;
    esac
}

for name in "${NAMES[@]}"; do
    delete_one "$name" || exit 1
done
