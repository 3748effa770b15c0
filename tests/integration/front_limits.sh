#!/bin/sh
# tests/integration/front_limits.sh — runs front_limits.py (conn_rate, per-address auth delay).
# Usage: front_limits.sh BUILD_DIR
exec /usr/bin/python3 "$(dirname "$0")/front_limits.py" "$1"
