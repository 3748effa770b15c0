#!/bin/sh
# tests/integration/faults_link.sh — the front/SM link under faults (see faults_link.py).
# Usage: faults_link.sh BUILD_DIR
exec /usr/bin/python3 "$(dirname "$0")/faults_link.py" "$1"
