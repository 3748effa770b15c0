#!/bin/sh
# tools/npm.sh — the npm packages the tests load into a browser (tests/integration/test_browser.py:
# Converse.js), pinned, installed with npm into DIR (default build/npm). Reused when the pinned
# version is there; tools/deps.sh runs it, and so does the suite before it starts.
#
#   sh tools/npm.sh [DIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../build/npm}
PINNED="converse.js@14.0.0"

installed() {   # NAME@VERSION is in dir/node_modules
    sed -n 's/^  "version": "\(.*\)",$/\1/p' "$dir/node_modules/${1%@*}/package.json" 2>/dev/null |
        grep -qx "${1##*@}"
}

missing=""
for p in $PINNED; do
    installed "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
    echo "jabshard: npm is missing (Debian: nodejs and npm; tools/deps.sh installs them)" >&2
    exit 1
fi
mkdir -p "$dir"
echo "jabshard: npm install$missing into $dir"
# shellcheck disable=SC2086
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error $missing
