#!/bin/sh
# Dependency step for every make target: on Debian, installs with apt-get exactly the packages
# that are missing; anywhere else, prints what to install and stops.
set -eu

# Build: compiler, pkg-config, libraries. Tests: cmocka, GNU SASL (an independent SASL client),
# clang's libFuzzer and sanitizer runtimes, the PostgreSQL and MariaDB servers the storage suite
# starts in temporary directories, the client libraries the integration tests log in with,
# biboumi, the XEP-0114 component tests/integration/components.sh connects, and fail2ban, whose
# fail2ban-regex tests/integration/front_limits.py runs etc/fail2ban's filter with.
PACKAGES="gcc make pkg-config libck-dev libexpat1-dev libssl-dev openssl libidn-dev
libsqlite3-dev libpq-dev libmariadb-dev libcmocka-dev clang libclang-rt-14-dev
libgsasl-dev postgresql mariadb-server python3-slixmpp libstrophe-dev biboumi fail2ban"

# --list: print the package names (CI installs them all, upgrading what is already there).
if [ "${1:-}" = "--list" ]; then
    echo $PACKAGES
    exit 0
fi

if [ ! -r /etc/debian_version ] || ! command -v dpkg-query >/dev/null 2>&1; then
    echo "jabshard: this is not a Debian system; install the equivalents of:" >&2
    echo "  $PACKAGES" | tr '\n' ' ' >&2
    echo >&2
    exit 1
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "jabshard: installing missing packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "jabshard: run as root: apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -q || true
# shellcheck disable=SC2086
$as_root apt-get install -y -q --no-install-recommends $missing
