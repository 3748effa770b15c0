#!/bin/sh
# tools/deb.sh — builds the Debian package of this tree (make deb): copies the tree, without
# build/ and .git, to OUTDIR/src/ and runs dpkg-buildpackage -us -uc -b there, so the .deb
# lands in OUTDIR and the tree itself is left as it was. The test suite is not run (debian/rules).
# Needs dpkg-dev, debhelper and the Build-Depends of debian/control (dpkg-checkbuilddeps says
# which are missing). Prints the path of the .deb last.
#
#   sh tools/deb.sh OUTDIR
set -eu
out=${1:?usage: tools/deb.sh OUTDIR}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/src" "$out"/jabshard_* "$out"/jabshard-dbgsym_*
mkdir "$out/src"
(cd "$here" && tar --exclude=./build --exclude=./.git -cf - .) | (cd "$out/src" && tar -xf -)
jobs=$(nproc 2>/dev/null || echo 1)
(cd "$out/src" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) || {
    tail -40 "$out/build.log" >&2
    echo "jabshard: the package build failed; the whole log: $out/build.log" >&2
    exit 1
}
rm -rf "$out/src"
ls "$out"/jabshard_*.deb
