#!/bin/sh
# Runs each cmocka unit-test binary given as an argument and ends with one summary line
# ("unit: N passed, N failed") counting test cases across all binaries.
set -u
passed=0 failed=0 broken=""
for bin in "$@"; do
    out=$("$bin" 2>&1); status=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    # A crash or a failure that cmocka could not count still fails the run.
    if [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
        failed=$((failed + 1))
        broken="$broken $bin(exit $status)"
    fi
done
[ -n "$broken" ] && echo "unit: binaries that failed outside a test case:$broken"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
