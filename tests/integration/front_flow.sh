#!/bin/sh
# tests/integration/front_flow.sh — runs front_flow.py (pastes and large stanzas under the default
# limits; the output-queue policy: slow readers served, non-readers cut, memory bounded).
# Usage: front_flow.sh BUILD_DIR
exec /usr/bin/python3 "$(dirname "$0")/front_flow.py" "$1"
