#!/bin/sh
# make bench: runs every benchmark binary in BUILD/bench; the storage benchmarks (bench_xdbsql,
# bench_mam: a 1,000,000-message archive, MAM_BENCH_MESSAGES) run once per driver, against SQLite in a temporary file and real PostgreSQL and MariaDB servers started in
# temporary directories by the storage suite's scripts; the program benchmarks (bench_sm,
# bench_front) get BUILD/bin, where jabshard-sm and jabshard-c2s are.
set -eu
bench_dir=$1/bench
bin_dir=$1/bin
storage=$(dirname "$0")/../storage
scratch=$(mktemp -d /tmp/jabshard-bench.XXXXXX)
chmod 755 "$scratch"
started=""
cleanup() {
    for db in $started; do sh "$storage/$db.sh" stop "$scratch/$db" >/dev/null 2>&1 || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT INT TERM

for b in "$bench_dir"/bench_*; do
    case $(basename "$b") in
    bench_xdbsql | bench_mam) continue ;;
    bench_sm | bench_front) echo "== $(basename "$b")"; "$b" "$bin_dir" ;;
    *) echo "== $(basename "$b")"; "$b" ;;
    esac
done

echo "== bench_xdbsql, bench_mam"
XDB_DRIVER=sqlite XDB_PATH="$scratch/bench.db" "$bench_dir/bench_xdbsql"
XDB_DRIVER=sqlite XDB_PATH="$scratch/mam.db" "$bench_dir/bench_mam"
for db in postgres mariadb; do
    sh "$storage/$db.sh" start "$scratch/$db"
    started="$started $db"
    (set -a; . "$scratch/$db/env"; set +a; "$bench_dir/bench_xdbsql"; "$bench_dir/bench_mam")
    sh "$storage/$db.sh" stop "$scratch/$db"
    started=$(echo "$started" | sed "s/ $db//")
done
