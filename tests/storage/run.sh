#!/bin/sh
# Runs the storage suite (each binary given) on every driver: SQLite in a temporary file, then a
# real PostgreSQL and a real MariaDB, each started in a temporary directory by its own script
# (postgres.sh, mariadb.sh) and stopped afterwards. Ends with "storage: N passed, N failed".
# For the tests of a database that is down, XDB_SERVER_DOWN and XDB_SERVER_UP hold the commands
# that stop the server (keeping its data) and start it again; the SQLite run has none.
set -u
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d /tmp/jabshard-storage.XXXXXX)
chmod 755 "$scratch"
passed=0 failed=0
started=""

cleanup() {
    for db in $started; do sh "$here/$db.sh" stop "$scratch/$db" >/dev/null 2>&1 || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT INT TERM

# run_suite LABEL: runs every binary with the XDB_* variables already exported.
run_suite() {
    for bin in $BINS; do
        out=$("$bin" 2>&1); status=$?
        printf '%s\n' "$out" | sed "s/^/[$1] /"
        p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
        f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
        passed=$((passed + ${p:-0}))
        failed=$((failed + ${f:-0}))
        if [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
            echo "[$1] $bin exited with status $status"
            failed=$((failed + 1))
        fi
    done
}

BINS="$*"

XDB_DRIVER=sqlite XDB_PATH="$scratch/sqlite.db" run_suite sqlite

for db in postgres mariadb; do
    if sh "$here/$db.sh" start "$scratch/$db"; then
        started="$started $db"
        (set -a; . "$scratch/$db/env"
         XDB_SERVER_DOWN="sh $here/$db.sh down $scratch/$db"
         XDB_SERVER_UP="sh $here/$db.sh up $scratch/$db"
         set +a; run_suite "$db"; echo "$passed $failed" > "$scratch/$db.count")
        read -r passed failed < "$scratch/$db.count"
        sh "$here/$db.sh" stop "$scratch/$db" || { echo "[$db] stop failed"; failed=$((failed + 1)); }
        started=$(echo "$started" | sed "s/ $db//")
    else
        echo "[$db] could not start the server"
        failed=$((failed + 1))
    fi
done

echo "storage: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
