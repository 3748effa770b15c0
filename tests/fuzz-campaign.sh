#!/bin/sh
# tests/fuzz-campaign.sh — the long fuzzing campaign (make fuzz-long): each libFuzzer target for
# SECONDS on a scratch copy of its seed corpus, JOBS targets at a time (the machine's cores), then
# the inputs that add coverage merged into fuzz/corpus/<name> (libFuzzer -merge=1, so the corpus
# only grows by what is new). One line per target: executions, coverage (cov: edges, ft:
# features), corpus size before and after, and any crash, which is kept under build/fuzz/findings/.
# Usage: fuzz-campaign.sh SECONDS JOBS FUZZ_BIN...
set -u
seconds=$1 jobs=$2
shift 2
scratch=$(mktemp -d)
findings=build/fuzz/findings
mkdir -p "$findings"
trap 'rm -rf "$scratch"' EXIT

run_one() {
    bin=$1
    name=$(basename "$bin"); name=${name#fuzz_}
    corpus=fuzz/corpus/$name
    mkdir -p "$scratch/$name" "$findings/$name"
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$findings/$name/" \
        "$scratch/$name" "$corpus" > "$scratch/$name.log" 2>&1
    status=$?
    before=$(ls "$corpus" | wc -l)
    "$bin" -merge=1 "$corpus" "$scratch/$name" > "$scratch/$name.merge.log" 2>&1
    after=$(ls "$corpus" | wc -l)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$name.log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$scratch/$name.log" | tail -n 1)
    if [ "$status" -eq 0 ]; then
        echo "fuzz-long: $name ok: ${execs:-0} executions in ${seconds}s, $cov, corpus $before -> $after"
    else
        tail -n 40 "$scratch/$name.log"
        echo "fuzz-long: $name FAILED after ${execs:-?} executions (input in $findings/$name/)"
    fi
}

running=0
for bin in "$@"; do
    run_one "$bin" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait
