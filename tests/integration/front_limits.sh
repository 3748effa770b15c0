#!/bin/sh
# tests/integration/front_limits.sh — runs front_limits.py (per-address limits with the defaults
# and with small ones, trusted networks, the registration throttle, the security log lines and the
# fail2ban filter over them).
# Usage: front_limits.sh BUILD_DIR
exec /usr/bin/python3 "$(dirname "$0")/front_limits.py" "$1"
