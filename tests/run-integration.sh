#!/bin/sh
# Runs every integration suite (tests/integration/test_*.py) against the programs in BUILD_DIR/bin
# and ends with one summary line ("integration: N passed, N failed"): see jabtest/runner.py.
exec /usr/bin/python3 "$(dirname "$0")/integration/jabtest/runner.py" "$@"
