#!/bin/sh
# tests/storage/mariadb.sh — a throwaway MariaDB server for the storage suite.
#
#   sh tests/storage/mariadb.sh start DIR   fresh data directory in DIR, server on a free
#                                           127.0.0.1 port, database `jabshard` and a password
#                                           user for it; writes DIR/env (XDB_* lines)
#   sh tests/storage/mariadb.sh stop DIR    stops that server and removes DIR
#   sh tests/storage/mariadb.sh down DIR    stops that server, keeping DIR and its data (an
#                                           outage, for the tests of a database that is down)
#   sh tests/storage/mariadb.sh up DIR      starts it again, on the same port, with its data;
#                                           nothing if it runs
#
# The server runs with real authentication: the suite connects over TCP as an ordinary user
# with a password and rights on jabshard.* only, as a deployment would. The script itself
# administers the server over DIR's Unix socket as the system user running it (unix_socket
# authentication, so the server has no password-less account). Nothing outside DIR is touched;
# a system-wide MariaDB service, if any, is left alone.
set -eu

usage() {
    echo "usage: sh $0 start|stop|down|up DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$2

# Seconds to wait for the server to accept connections, and for it to exit when stopped.
START_WAIT=30
STOP_WAIT=60

fail() {
    echo "mariadb.sh: $*" >&2
    exit 1
}

# The server's PID, from its own pid file or, if it died before writing one, the one start
# recorded; empty when neither names a live mariadbd (a recycled PID is never signalled).
server_pid() {
    for f in "$dir/mysqld.pid" "$dir/server.pid"; do
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        case $pid in '' | *[!0-9]*) continue ;; esac
        if [ -r "/proc/$pid/comm" ] && grep -q '^mariadbd$\|^mysqld$' "/proc/$pid/comm"; then
            echo "$pid"
            return
        fi
    done
}

# Stops the server if one runs; fails if it will not exit.
stop_server() {
    pid=$(server_pid)
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((STOP_WAIT * 10)) ]; then
            echo "mariadb.sh: mariadbd $pid did not stop in ${STOP_WAIT}s; killing it" >&2
            kill -9 "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    ! kill -0 "$pid" 2>/dev/null || fail "mariadbd $pid is still running"
}

# TCP ports something listens on, in decimal, one a line.
listening_ports() {
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$f" ] && awk 'NR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' "$f"
    done | while read -r hex; do printf '%d\n' "0x$hex"; done
}

# A port in 20000-39999 that nothing listens on now, starting from a per-process offset so that
# parallel runs rarely pick the same one (a clash is caught when the server fails to bind).
free_port() {
    used=$(listening_ports)
    port=$((20000 + ($$ * 7 + $1 * 131) % 20000))
    while printf '%s\n' "$used" | grep -qx "$port"; do
        port=$((port + 1))
        [ "$port" -lt 40000 ] || port=20000
    done
    echo "$port"
}

mariadbd=$(command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd)
admin_user=$(id -un)
# mariadbd refuses to run as root: as root, it runs as mysql, which must own DIR.
if [ "$(id -u)" -eq 0 ]; then
    run_as=mysql
else
    run_as=$admin_user
fi

# launch PORT: starts mariadbd on DIR's data and waits for it; sets state to up, exited (it died,
# error.log says why) or timeout.
launch() {
    rm -f "$dir/mysqld.pid" "$dir/server.pid"
    "$mariadbd" --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" --user="$run_as" \
        --port="$1" --bind-address=127.0.0.1 --skip-name-resolve \
        --innodb-buffer-pool-size=32M --innodb-log-file-size=8M \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
        </dev/null >>"$dir/server.out" 2>&1 &
    echo $! >"$dir/server.pid"

    deadline=$(($(date +%s) + START_WAIT))
    state=starting
    while [ "$state" = starting ]; do
        if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" --user="$admin_user" \
            --connect-timeout=2 ping >/dev/null 2>&1; then
            state=up
        elif [ -z "$(server_pid)" ]; then
            state=exited
        elif [ "$(date +%s)" -ge "$deadline" ]; then
            state=timeout
        else
            sleep 0.1
        fi
    done
}

log_tail() {
    for f in "$dir/error.log" "$dir/server.out"; do
        [ -s "$f" ] || continue
        echo "--- last lines of $f ---" >&2
        tail -n 30 "$f" >&2
    done
}

start() {
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
        fail "$dir exists and is not empty (stop the server there first)"
    fi
    for tool in mariadbd mariadb-install-db mariadb mariadb-admin; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
            fail "$tool not found (install mariadb-server)"
    done

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The socket path must fit sockaddr_un.
    [ ${#dir} -le 90 ] || fail "$dir is too long a path for the server's socket"
    [ "$run_as" = "$admin_user" ] || chown "$run_as": "$dir"

    if ! mariadb-install-db --no-defaults --datadir="$dir/data" --user="$run_as" \
        --auth-root-authentication-method=socket --auth-root-socket-user="$admin_user" \
        --skip-test-db --skip-name-resolve >"$dir/install.log" 2>&1; then
        tail -n 30 "$dir/install.log" >&2
        fail "mariadb-install-db failed in $dir/data"
    fi

    # Up to 5 ports, in case another process takes the chosen one before the server binds it.
    attempt=0
    while :; do
        attempt=$((attempt + 1))
        port=$(free_port "$attempt")
        launch "$port"
        [ "$state" = up ] && break
        if [ "$state" = exited ] && [ "$attempt" -lt 5 ] &&
            grep -q 'Address already in use' "$dir/error.log" 2>/dev/null; then
            echo "mariadb.sh: port $port was taken; trying another" >&2
            continue
        fi
        stop_server || true
        log_tail
        if [ "$state" = exited ]; then
            fail "mariadbd exited during startup (data in $dir)"
        fi
        fail "mariadbd did not accept connections within ${START_WAIT}s (data in $dir)"
    done

    # The suite's account: a password, TCP from 127.0.0.1 only, rights on its database only.
    user=jabshard_test
    password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    if ! mariadb --no-defaults --socket="$dir/mysqld.sock" --user="$admin_user" \
        --batch >"$dir/setup.log" 2>&1 <<EOF; then
CREATE DATABASE jabshard CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER '$user'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON jabshard.* TO '$user'@'127.0.0.1';
EOF
        cat "$dir/setup.log" >&2
        stop_server || true
        fail "cannot create the test database and user"
    fi

    cat >"$dir/env" <<EOF
XDB_DRIVER=mariadb
XDB_HOST=127.0.0.1
XDB_PORT=$port
XDB_USER=$user
XDB_PASSWORD=$password
XDB_DATABASE=jabshard
EOF
    echo "mariadb.sh: mariadbd $(cat "$dir/server.pid") on 127.0.0.1:$port, data in $dir"
}

stop() {
    [ -d "$dir" ] || fail "$dir does not exist"
    stop_server
    rm -rf "$dir"
}

down() {
    [ -f "$dir/env" ] || fail "$dir holds no server of this script's"
    stop_server
}

up() {
    [ -f "$dir/env" ] || fail "$dir holds no server of this script's"
    [ -z "$(server_pid)" ] || return 0
    port=$(sed -n 's/^XDB_PORT=//p' "$dir/env")
    [ -n "$port" ] || fail "no port in $dir/env"
    launch "$port"
    if [ "$state" != up ]; then
        stop_server || true
        log_tail
        fail "mariadbd did not come back on 127.0.0.1:$port ($state)"
    fi
}

case $action in
start) start ;;
stop) stop ;;
down) down ;;
up) up ;;
*) usage ;;
esac
