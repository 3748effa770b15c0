#!/bin/sh
# tests/storage/postgres.sh — a throwaway PostgreSQL server for the storage suite.
#
#   sh tests/storage/postgres.sh start DIR   a fresh cluster in DIR (which must not exist or be
#                                            empty), listening only on 127.0.0.1 on a free port
#                                            and on a socket in DIR; writes DIR/env, the
#                                            XDB_* settings of its database, one per line
#   sh tests/storage/postgres.sh stop DIR    stops that server and removes DIR
#   sh tests/storage/postgres.sh down DIR    stops that server, keeping DIR and its data (an
#                                            outage, for the tests of a database that is down)
#   sh tests/storage/postgres.sh up DIR      starts it again, on the same port, with its data;
#                                            nothing if it runs
#
# The server binaries are the newest under /usr/lib/postgresql/*/bin (PG_BINDIR overrides).
# PostgreSQL refuses to run as root, so as root everything runs as the postgres user, which then
# owns DIR. The cluster is throwaway: fsync is off, and connections over the socket in DIR (mode
# 0700) are trusted; over TCP the test role logs in with a SCRAM password.
set -eu

usage() {
    echo "usage: $0 start|stop|down|up DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$2
# Marks a directory this script made, so that stop never removes anything else.
marker=.jabshard-postgres

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
fi

if [ "$(id -u)" -eq 0 ]; then
    as_owner() { runuser -u postgres -- "$@"; }
    owner=postgres
else
    as_owner() { "$@"; }
    owner=$(id -un)
fi
# The owner may not be able to enter the caller's working directory.
cd /

# True when something listens on TCP port $1 (any address, IPv4 or IPv6).
port_in_use() {
    hex=$(printf '%04X' "$1")
    awk -v hex="$hex" 'FNR > 1 && $4 == "0A" && $2 ~ (":" hex "$") { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# True while process $1 runs: a zombie (an exited server its parent has yet to reap) does not.
running() {
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $state in
    Z*) return 1 ;;
    esac
}

log_tail() {
    echo "--- last lines of $dir/server.log:" >&2
    tail -n 30 "$dir/server.log" >&2 2>/dev/null || true
}

start() {
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir exists and is not empty (stop the server there first, or pick another directory)"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    touch "$dir/$marker"
    chown "$owner" "$dir"
    chmod 0700 "$dir"
    as_owner test -w "$dir" -a -x "$dir" || die "$owner cannot write to $dir (is a parent directory closed to it?)"

    as_owner "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed in $dir/data ($0 stop $dir removes it)"; }
    as_owner sh -c 'cat >>"$1"' sh "$dir/data/postgresql.conf" <<EOF

# tests/storage/postgres.sh: a throwaway test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
unix_socket_permissions = 0700
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
EOF

    # The port is checked free first, but another process may take it before the server binds:
    # then try the next one.
    port=55432
    while :; do
        rm -f "$dir/server.log"
        while port_in_use "$port"; do
            port=$((port + 1))
            [ "$port" -lt 55632 ] || die "no free port in 55432..55631"
        done
        if as_owner "$bindir/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -o "-p $port" \
            -w -t 30 >/dev/null; then
            break
        fi
        if grep -q -e "could not bind" -e "could not create any TCP/IP sockets" "$dir/server.log" 2>/dev/null &&
            ! [ -f "$dir/data/postmaster.pid" ]; then
            port=$((port + 1))
            continue
        fi
        log_tail
        as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true
        die "the server in $dir did not come up within 30 s ($0 stop $dir removes it)"
    done

    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    if ! as_owner "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30 ||
        ! as_owner "$bindir/psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres \
            -v ON_ERROR_STOP=1 -c "CREATE ROLE jabshard LOGIN PASSWORD '$password'" \
            -c "CREATE DATABASE jabshard OWNER jabshard ENCODING 'UTF8' TEMPLATE template0"; then
        log_tail
        as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m immediate >/dev/null 2>&1 || true
        die "the server in $dir does not accept connections on 127.0.0.1:$port ($0 stop $dir removes it)"
    fi

    umask 077
    cat >"$dir/env" <<EOF
XDB_DRIVER=pgsql
XDB_HOST=127.0.0.1
XDB_PORT=$port
XDB_USER=jabshard
XDB_PASSWORD=$password
XDB_DATABASE=jabshard
EOF
    echo "PostgreSQL $("$bindir/postgres" -V | awk '{ print $3 }') on 127.0.0.1:$port, data in $dir"
}

# The server's PID, when one runs in DIR (no pid file, or a stale one: none).
server_pid() {
    pidfile=$dir/data/postmaster.pid
    [ -f "$pidfile" ] && pid=$(head -n 1 "$pidfile") && running "$pid" && echo "$pid"
}

check_dir() {
    [ -d "$dir" ] || die "$dir does not exist"
    [ -f "$dir/$marker" ] || die "$dir was not made by this script: not touching it"
}

stop_server() {
    pid=$(server_pid) || return 0
    if ! as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m fast -w -t 30 >/dev/null; then
        log_tail
        die "the server in $dir (pid $pid) did not stop; $dir is left in place"
    fi
    # pg_ctl returns once the pid file is gone, which the server removes just before it exits.
    waited=0
    while running "$pid"; do
        [ "$waited" -lt 100 ] || die "the server in $dir (pid $pid) is still running; $dir is left in place"
        sleep 0.1
        waited=$((waited + 1))
    done
}

stop() {
    check_dir
    stop_server
    rm -rf "$dir"
}

down() {
    check_dir
    stop_server
}

up() {
    check_dir
    [ -z "$(server_pid)" ] || return 0
    port=$(sed -n 's/^XDB_PORT=//p' "$dir/env")
    [ -n "$port" ] || die "no port in $dir/env"
    if ! as_owner "$bindir/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -o "-p $port" \
        -w -t 30 >/dev/null || ! as_owner "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30; then
        log_tail
        die "the server in $dir did not come back on 127.0.0.1:$port"
    fi
}

case $action in
start) start ;;
stop) stop ;;
down) down ;;
up) up ;;
*) usage ;;
esac
