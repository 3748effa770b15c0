#!/bin/sh
# tools/missing.sh — what this machine lacks to build or test jabshard. It installs nothing
# (tools/deps.sh does, and asks this script what to install).
#
#   sh tools/missing.sh [-q] [--cc CC] PKG...   the C compiler CC (default cc), pkg-config and each
#                                             pkg-config module PKG: exits 1 naming what is missing,
#                                             the Debian package that provides it and how to
#                                             install it; what make checks before every build
#   sh tools/missing.sh [-q] --tests PKG...     the same, and on Debian also every package below
#                                             (make check needs the servers and clients too)
#   sh tools/missing.sh --debian                prints the packages below that are not installed;
#                                             exits 1 if any, 2 when this is not Debian
#   sh tools/missing.sh --list                  prints the packages below
#   -q                                          says nothing, only exits 1
set -eu

# Everything the build and the tests need, as Debian 12 packages. Build: compiler, pkg-config,
# libraries (libsystemd for the daemons' sd_notify; http-parser, for the HTTP endpoints, has no
# pkg-config file: its header is checked), scdoc for the man pages (make man). Tests: cmocka, GNU
# SASL (an independent SASL client), clang's libFuzzer and sanitizer runtimes, the PostgreSQL and
# MariaDB servers the storage suite starts in temporary directories,
# the client libraries the integration tests log in with, biboumi, the XEP-0114 component
# tests/integration/test_components.py connects, fail2ban, whose fail2ban-regex
# tests/integration/test_front_limits.py runs etc/fail2ban's filter with, and Profanity (built
# with OMEMO) with tmux, the terminal tests/integration/test_omemo.py drives two of them in,
# debhelper, with which tests/integration/test_package.py builds the Debian package it installs,
# and Chromium with Node.js and npm: tests/integration/test_browser.py runs Converse.js (an npm
# package: tools/npm.sh) in headless Chromium. npm is asked for only when there is no npm command:
# a Node.js from outside Debian (NodeSource's nodejs) brings its own and conflicts with Debian's.
# Prosody, ejabberd and unbound: tests/integration/test_federation.py federates with the first two,
# in a network namespace (iproute2, util-linux's unshare) whose DNS unbound serves.
# python3-aiohttp: slixmpp's HTTP File Upload plugin (xep_0363) PUTs with it
# (tests/integration/test_upload.py, test_browser.py).
PACKAGES="gcc make pkg-config libck-dev libexpat1-dev libssl-dev openssl libidn-dev
libhttp-parser-dev libunbound-dev libsqlite3-dev libpq-dev libmariadb-dev libsystemd-dev scdoc libcmocka-dev
clang libclang-rt-14-dev libgsasl-dev postgresql mariadb-server python3-slixmpp python3-aiohttp libstrophe-dev
biboumi fail2ban profanity tmux debhelper chromium nodejs
prosody lua-unbound ejabberd unbound iproute2 util-linux"
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

# The Debian package that provides a pkg-config module.
debian_of() {
    case "$1" in
        expat) echo libexpat1-dev ;;
        openssl | libssl | libcrypto) echo libssl-dev ;;
        libidn) echo libidn-dev ;;
        ck) echo libck-dev ;;
        sqlite3) echo libsqlite3-dev ;;
        libpq) echo libpq-dev ;;
        libmariadb) echo libmariadb-dev ;;
        libsystemd) echo libsystemd-dev ;;
        cmocka) echo libcmocka-dev ;;
        libgsasl) echo libgsasl-dev ;;
        libstrophe) echo libstrophe-dev ;;
        *) echo "?" ;;
    esac
}

# Prints the packages of PACKAGES that dpkg does not have installed.
debian_missing() {
    for p in $PACKAGES; do
        case "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" in
            *" installed") ;;
            *) echo "$p" ;;
        esac
    done
}

is_debian() { [ -r /etc/debian_version ] && command -v dpkg-query >/dev/null 2>&1; }

quiet=false tests=false cc=cc
while [ $# -gt 0 ]; do
    case "$1" in
        --list) echo $PACKAGES; exit 0 ;;
        --debian)
            is_debian || exit 2
            missing=$(debian_missing)
            [ -z "$missing" ] || { echo $missing; exit 1; }
            exit 0 ;;
        -q) quiet=true ;;
        --tests) tests=true ;;
        --cc) cc=${2:?--cc takes a compiler}; shift ;;
        -*) echo "usage: $0 [-q] [--tests] [--cc CC] PKG... | --debian | --list" >&2; exit 2 ;;
        *) break ;;
    esac
    shift
done

# What is missing, one "what (Debian: package)" a line. CC may carry flags: its first word is
# the command.
report=""
add() { report="$report  $1 (Debian: $2)
"; }
compiler=${cc%% *}
if ! command -v "$compiler" >/dev/null 2>&1; then
    case "$compiler" in clang*) add "the C compiler $compiler" clang ;; *) add "the C compiler $compiler" gcc ;; esac
fi
if command -v pkg-config >/dev/null 2>&1; then
    for m in "$@"; do
        pkg-config --exists "$m" 2>/dev/null || add "the pkg-config package $m" "$(debian_of "$m")"
    done
else
    add "pkg-config, and with it the pkg-config packages $*" "pkg-config"
fi
# Libraries Debian ships without a pkg-config file: their header.
for h in http_parser.h:libhttp-parser-dev unbound.h:libunbound-dev; do
    [ -r "/usr/include/${h%%:*}" ] || [ -r "/usr/local/include/${h%%:*}" ] ||
        add "the header ${h%%:*}" "${h##*:}"
done
if $tests && is_debian; then
    for p in $(debian_missing); do
        case "$report" in *"(Debian: $p)"*) ;; *) add "$p, which make check uses" "$p" ;; esac
    done
fi

[ -z "$report" ] && exit 0
if ! $quiet; then
    printf 'jabshard: missing on this machine:\n%s' "$report" >&2
    if is_debian; then
        echo "Install them with: sh tools/deps.sh   (or: make deps; it uses sudo when not root)" >&2
    else
        echo "This is not Debian: install your system's equivalents of the Debian packages named." >&2
    fi
fi
exit 1
