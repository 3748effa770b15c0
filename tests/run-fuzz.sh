#!/bin/sh
# Runs each libFuzzer target for a few seconds on a scratch copy of its seed corpus
# (fuzz/corpus/<name> for build/fuzz/fuzz_<name>), so new inputs never land in the repository.
set -u
seconds=$1; shift
passed=0 failed=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for bin in "$@"; do
    name=$(basename "$bin"); name=${name#fuzz_}
    corpus="fuzz/corpus/$name"
    if [ ! -d "$corpus" ]; then
        echo "fuzz: $name has no seed corpus at $corpus"; failed=$((failed + 1)); continue
    fi
    mkdir -p "$scratch/$name"
    if "$bin" -max_total_time="$seconds" -print_final_stats=1 "$scratch/$name" "$corpus" \
        > "$scratch/$name.log" 2>&1; then
        echo "fuzz: $name ok: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$name.log" | grep -o '[0-9]*$') executions in ${seconds}s"
        passed=$((passed + 1))
    else
        tail -n 40 "$scratch/$name.log"
        echo "fuzz: $name FAILED"
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
