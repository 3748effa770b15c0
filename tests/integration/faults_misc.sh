#!/bin/sh
# tests/integration/faults_misc.sh — runs faults_misc.py (a front with a wrong secret; malformed
# frames towards the SM and towards a front; the database stopped and started under load).
# Usage: faults_misc.sh BUILD_DIR
exec /usr/bin/python3 "$(dirname "$0")/faults_misc.py" "$1"
