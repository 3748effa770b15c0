#!/bin/sh
# Runs every integration script in tests/integration/ against the programs in BUILD_DIR/bin and
# ends with one summary line ("integration: N passed, N failed"), counting each script's checks.
set -u
build=$1
passed=0 failed=0
for t in "$(dirname "$0")"/integration/*.sh; do
    out=$(sh "$t" "$build" 2>&1); status=$?
    printf '%s\n' "$out"
    summary=$(printf '%s\n' "$out" | tail -n 1)
    p=$(echo "$summary" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed/\1/p')
    f=$(echo "$summary" | sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed/\2/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
        echo "integration: $t exited with status $status"
        failed=$((failed + 1))
    fi
done
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
