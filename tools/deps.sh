#!/bin/sh
# tools/deps.sh — installs what jabshard needs to build and test (make deps; make check and make
# run call it when tools/missing.sh finds something missing). On Debian, installs with apt-get
# exactly the packages of tools/missing.sh's list that are missing (through sudo when not root),
# then the npm packages the browser test loads (tools/npm.sh: into build/npm, once); anywhere
# else, prints what to install and stops. make itself never installs anything.
#
#   sh tools/deps.sh          install what is missing
#   sh tools/deps.sh --list   print every package name (CI installs them all, upgrading what is
#                             already there)
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = "--list" ]; then
    exec sh "$here/missing.sh" --list
fi

status=0
missing=$(sh "$here/missing.sh" --debian) || status=$?
if [ "$status" -eq 2 ]; then
    echo "jabshard: this is not a Debian system; install the equivalents of:" >&2
    echo "  $(sh "$here/missing.sh" --list)" >&2
    exit 1
fi
if [ -n "$missing" ]; then
    echo "jabshard: installing missing packages: $missing"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=""
    elif command -v sudo >/dev/null 2>&1; then
        as_root="sudo"
    else
        echo "jabshard: run as root: apt-get install $missing" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get update -q || true
    # shellcheck disable=SC2086
    $as_root apt-get install -y -q --no-install-recommends $missing
fi

sh "$here/npm.sh"
