#!/bin/sh
# tests/integration/front_load.sh — runs front_load.py (a slow reader among busy clients; 2,000
# concurrent TLS clients with no loss). Sanitizer builds run 300 clients: they are several times
# slower. Usage: front_load.sh BUILD_DIR
case "$1" in
*san-*) clients=300 ;;
*) clients=2000 ;;
esac
exec /usr/bin/python3 "$(dirname "$0")/front_load.py" "$1" "$clients" 5
