#!/bin/sh
# tests/integration/xmpp.sh — the whole system end to end with real clients. Starts the SM and the
# front through tools/run.sh ("make run") on free loopback ports in a temporary run directory,
# makes accounts with jabshardctl, then runs at the same time:
#   xmpp_clients.py   slixmpp: logins, SASL PLAIN, registration, two users, offline, roster, errors
#   xmpp_raw.py       raw sockets: malformed input and its stream errors; one byte per segment
#   xmpp_modules.py   slixmpp: disco, vCard, private XML, last activity, carbons, blocking
#   strophe_client.c  libstrophe: SCRAM-SHA-1, SCRAM-SHA-256 and PLAIN, wrong passwords
#   jabshardctl       sessions and kick against the running SM (xmpp_modules.py kick-witness)
# and then checks run.sh itself: SIGTERM (clients get <system-shutdown/>), a restart that keeps
# the certificate, the secret and the accounts, Ctrl-C, and a program that dies.
# Usage: xmpp.sh BUILD_DIR. Prints ok / not ok lines and ends "xmpp: N passed, N failed".
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=/usr/bin/python3   # Debian's python3-slixmpp is importable from the system Python only
dir=$(mktemp -d /tmp/jabshard-xmpp.XXXXXX)
passed=0 failed=0
run_pid="" launcher_pid="" client_pids=""

ok() { passed=$((passed + 1)); echo "ok - $1"; }
# not_ok NAME [FILE]: a failed check, with FILE's content indented below it.
not_ok() {
    failed=$((failed + 1)); echo "not ok - $1"
    if [ $# -gt 1 ] && [ -s "$2" ]; then sed 's/^/    /' "$2"; fi
}

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}
# program_pid LOG NAME: the PID jabshard-NAME logged with in LOG.
program_pid() { sed -n "s/.* jabshard-$2\[\([0-9]*\)\].*/\1/p" "$1" | head -n 1; }
# ours PID: PID is one of the programs we started (PIDs found in logs may have been reused).
ours() {
    case "$(cat "/proc/$1/comm" 2>/dev/null)" in jabshard-sm|jabshard-c2s) return 0 ;; esac
    return 1
}

cleanup() {
    for pid in $launcher_pid $run_pid $client_pids; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $launcher_pid $run_pid; do wait_exit "$pid" 15; done
    # Programs that outlived a run.sh that could not stop them: by the PIDs they logged.
    for log in "$dir"/run*.log; do
        [ -f "$log" ] || continue
        for name in c2s sm; do
            pid=$(program_pid "$log" "$name")
            if [ -n "$pid" ] && ours "$pid"; then kill -KILL "$pid" 2>/dev/null; fi
        done
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE TEXT PID SECONDS: TEXT appears in FILE within SECONDS while PID lives.
wait_for() {
    i=0
    while ! grep -qF -- "$2" "$1" 2>/dev/null; do
        if ! alive "$3" || [ "$i" -ge $(($4 * 10)) ]; then
            grep -qF -- "$2" "$1" 2>/dev/null
            return
        fi
        sleep 0.1
        i=$((i + 1))
    done
}
# wait_exit PID SECONDS: waits for our child PID to end; its exit status, or 124 after SECONDS.
wait_exit() {
    i=0
    while alive "$1" && [ "$i" -lt $(($2 * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if alive "$1"; then return 124; fi
    wait "$1"
}

for need in "$build/bin/jabshard-sm" "$build/bin/jabshard-c2s" "$build/bin/jabshardctl"; do
    if [ ! -x "$need" ]; then
        not_ok "$need is built"
        echo "xmpp: $passed passed, $failed failed"
        exit 1
    fi
done
if ! "$py" -c 'import slixmpp' 2>/dev/null || ! pkg-config --exists libstrophe; then
    not_ok "the client libraries are installed (python3-slixmpp, libstrophe-dev: tools/deps.sh)"
    echo "xmpp: $passed passed, $failed failed"
    exit 1
fi

# The libstrophe client builds while the server starts (pkg-config's flags are words to split).
# shellcheck disable=SC2046
cc -std=gnu17 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
   -Wformat=2 -Wno-unused-parameter -Werror -O1 -g "$here/strophe_client.c" \
   $(pkg-config --cflags --libs libstrophe) -ldl -o "$dir/strophe_client" > "$dir/cc.log" 2>&1 &
cc_pid=$!
# A certificate that is not the server's, for the client-side control check.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$dir/other.key" -out "$dir/other.pem" \
    > /dev/null 2>&1 &
other_pid=$!

# Free loopback ports: the kernel picks them, we release them for the server.
# shellcheck disable=SC2046
set -- $("$py" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
run="$dir/run"
export JABSHARD_RUN_DIR="$run" JABSHARD_IP=127.0.0.1 JABSHARD_PORT="$1" JABSHARD_TLS_PORT="$2" \
       JABSHARD_SM_PORT="$3" JABSHARD_LIMITS="auth_timeout=45"
export XMPP_HOST=127.0.0.1 XMPP_PORT="$1" XMPP_TLS_PORT="$2" XMPP_CAFILE="$run/server.pem"
export XMPP_PASSWORDS="alice=alice-secret bob=bob-secret carol=pässwörd dave=dave-secret
erin=erin-secret frank=frank-secret mona=mona-secret nick=nick-secret oscar=oscar-secret"

# ---- start ----------------------------------------------------------------------------------
sh "$root/tools/run.sh" "$build" > "$dir/run1.log" 2>&1 &
run_pid=$!
if wait_for "$dir/run1.log" "Ctrl-C stops both" "$run_pid" 20 &&
   grep -qF "STARTTLS on 127.0.0.1:$JABSHARD_PORT, direct TLS on 127.0.0.1:$JABSHARD_TLS_PORT" \
       "$dir/run1.log" &&
   grep -qF "jabshardctl -c $run/sm.xml adduser alice@localhost" "$dir/run1.log"; then
    ok "tools/run.sh starts the SM and the front on the requested ports and says how to connect"
else
    not_ok "tools/run.sh starts the SM and the front and says how to connect" "$dir/run1.log"
    echo "xmpp: $passed passed, $failed failed"
    exit 1
fi
if wait_for "$dir/run1.log" "SM link: up" "$run_pid" 10; then
    ok "the front's link to the SM is up"
else
    not_ok "the front's link to the SM is up" "$dir/run1.log"
fi
secret=$(cat "$run/secret" 2>/dev/null)
if [ "${#secret}" -eq 48 ] && grep -qF "<secret>$secret</secret>" "$run/sm.xml" &&
   grep -qF "<secret>$secret</secret>" "$run/jadc2s.xml" &&
   grep -qF "<port>$JABSHARD_SM_PORT</port>" "$run/sm.xml" &&
   grep -qF "<path>$run/jabshard.db</path>" "$run/sm.xml" &&
   grep -qF "<pemfile>$run/server.pem</pemfile>" "$run/jadc2s.xml" &&
   grep -qF "<auth_timeout>45</auth_timeout>" "$run/jadc2s.xml" &&
   grep -q "BEGIN CERTIFICATE" "$run/server.pem" && grep -q "BEGIN PRIVATE KEY" "$run/server.pem" &&
   [ -z "$(find "$run" -maxdepth 1 -type f -perm /077)" ]; then
    ok "run directory: configurations from etc/ with a random secret, the ports, the database" \
       "and certificate paths, all private"
else
    not_ok "run directory: generated configurations, secret and certificate" "$run/jadc2s.xml"
fi

printf '%s\n' alice@localhost\ alice-secret bob@localhost\ bob-secret carol@localhost\ pässwörd \
    dave@localhost\ dave-secret erin@localhost\ erin-secret frank@localhost\ frank-secret \
    mona@localhost\ mona-secret nick@localhost\ nick-secret oscar@localhost\ oscar-secret \
    > "$dir/users.txt"
if "$build/bin/jabshardctl" -c "$run/sm.xml" import "$dir/users.txt" > "$dir/ctl.log" 2>&1; then
    ok "jabshardctl creates the test accounts while the SM runs"
else
    not_ok "jabshardctl creates the test accounts while the SM runs" "$dir/ctl.log"
fi

# ---- the clients, all at once -----------------------------------------------------------------
strophe_ok=0
if wait "$cc_pid"; then strophe_ok=1; else not_ok "strophe_client.c compiles" "$dir/cc.log"; fi
wait "$other_pid"

# strophe NAME STATUS "PATTERN..." ARGS...: the libstrophe client run with ARGS exits with STATUS
# and prints a line matching each (extended, whole-line) PATTERN.
strophe() {
    name=$1 want_status=$2 patterns=$3
    shift 3
    timeout 30 "$dir/strophe_client" "$@" > "$dir/strophe.run" 2>&1
    status=$?
    bad=""
    [ "$status" -eq "$want_status" ] || bad="exit status $status, expected $want_status"
    for pattern in $patterns; do
        grep -qxE -- "$pattern" "$dir/strophe.run" || bad="$bad${bad:+; }no line matching $pattern"
    done
    if [ -z "$bad" ]; then
        echo "ok - $name"
    else
        echo "not ok - $name: $bad"
        sed 's/^/    /' "$dir/strophe.run"
    fi
}
strophe_suite() {
    # Shell functions share one set of variables: these names are used nowhere else.
    ca=$run/server.pem h=127.0.0.1 port=$JABSHARD_PORT tls_port=$JABSHARD_TLS_PORT
    strophe "libstrophe over STARTTLS picks SCRAM-SHA-256 by itself, binds, is answered" 0 \
        "mechanism=SCRAM-SHA-256 bound=frank@localhost/.+ ping=ok" \
        -c "$ca" $h "$port" frank@localhost frank-secret
    strophe "libstrophe over direct TLS with SCRAM-SHA-256 and a chosen resource" 0 \
        "mechanism=SCRAM-SHA-256 bound=frank@localhost/strophe ping=ok" \
        -t -m SCRAM-SHA-256 -c "$ca" $h "$tls_port" frank@localhost/strophe frank-secret
    strophe "libstrophe with SCRAM-SHA-1" 0 "mechanism=SCRAM-SHA-1 bound=frank@localhost/.+ ping=ok" \
        -m SCRAM-SHA-1 -c "$ca" $h "$port" frank@localhost frank-secret
    strophe "libstrophe with PLAIN" 0 "mechanism=PLAIN bound=frank@localhost/.+ ping=ok" \
        -m PLAIN -c "$ca" $h "$port" frank@localhost frank-secret
    strophe "libstrophe with SCRAM-SHA-1 and a non-ASCII password (SASLprep, UTF-8)" 0 \
        "mechanism=SCRAM-SHA-1 bound=carol@localhost/.+ ping=ok" \
        -m SCRAM-SHA-1 -c "$ca" $h "$port" carol@localhost pässwörd
    strophe "SCRAM-SHA-1 with a wrong password: <not-authorized/>" 1 \
        "mechanism=SCRAM-SHA-1 sasl-failure=not-authorized" \
        -m SCRAM-SHA-1 -c "$ca" $h "$port" frank@localhost wrong
    strophe "SCRAM-SHA-256 with a wrong password: <not-authorized/>" 1 \
        "mechanism=SCRAM-SHA-256 sasl-failure=not-authorized" \
        -t -m SCRAM-SHA-256 -c "$ca" $h "$tls_port" frank@localhost wrong
    strophe "SCRAM for an account that does not exist fails the same way" 1 \
        "mechanism=SCRAM-SHA-256 sasl-failure=not-authorized" \
        -m SCRAM-SHA-256 -c "$ca" $h "$port" nosuchuser@localhost wrong
    # Control: the logins above checked the server's certificate against the run directory's.
    strophe "(control) libstrophe refuses a certificate other than the pinned one" 1 "" \
        -c "$dir/other.pem" $h "$port" frank@localhost frank-secret
    if grep -q '^mechanism=' "$dir/strophe.run"; then
        echo "not ok - (control) ...before any authentication"
    else
        echo "ok - (control) ...before any authentication"
    fi
}

# check NAME COMMAND_STATUS FILE: ok when the status is 0, else not ok with FILE.
check() {
    if [ "$2" -eq 0 ]; then
        echo "ok - $1"
    else
        echo "not ok - $1"
        sed 's/^/    /' "$3"
    fi
}
# ctl ARGS...: jabshardctl against the run directory's SM; output in ctl.run, status in ctl_status.
ctl() {
    "$build/bin/jabshardctl" -c "$run/sm.xml" "$@" > "$dir/ctl.run" 2>&1
    ctl_status=$?
}
# admin_suite: jabshardctl sessions and kick, with the kick witness's two sessions of oscar.
admin_suite() {
    if ! wait_for "$dir/kick.out" "ready " "$kick_pid" 10; then
        echo "not ok - the kick witness logs in"
        sed 's/^/    /' "$dir/kick.out"
        return
    fi
    # shellcheck disable=SC2046
    set -- $(sed -n 's/^ready //p' "$dir/kick.out")
    [ -S "$run/jabshard-sm.sock" ] && [ -z "$(find "$run/jabshard-sm.sock" -perm /077)" ]
    check "the SM's admin socket is in the run directory, private (0600)" $? /dev/null
    ctl sessions
    # Each line: full JID, link, session id (16 hex digits), since (RFC 3339), state.
    listed=0
    for jid in "$@"; do
        awk -F '\t' -v jid="$jid" '$1 == jid && NF == 5 && $2 != "" && length($3) == 16 &&
            $3 !~ /[^0-9a-f]/ && $4 ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T.*Z$/ &&
            ($5 == "bound" || $5 == "available") { found = 1 } END { exit !found }' \
            "$dir/ctl.run" && listed=$((listed + 1))
    done
    [ "$ctl_status" -eq 0 ] && [ "$#" -eq 2 ] && [ "$listed" -eq 2 ]
    check "jabshardctl sessions lists the witness's two full JIDs ($*): link, id, since, state" \
        $? "$dir/ctl.run"
    ctl kick oscar@localhost
    [ "$ctl_status" -eq 0 ] && grep -qx "kicked 2 session(s)" "$dir/ctl.run"
    check "jabshardctl kick of the bare JID ends both sessions and exits 0" $? "$dir/ctl.run"
    ctl sessions
    [ "$ctl_status" -eq 0 ] && ! grep -q "^oscar@localhost/" "$dir/ctl.run"
    check "...after which jabshardctl sessions lists neither" $? "$dir/ctl.run"
    ctl kick oscar@localhost
    [ "$ctl_status" -eq 1 ] && grep -qF "refused: oscar@localhost has no session" "$dir/ctl.run"
    check "kicking an account with no session is refused: exit 1" $? "$dir/ctl.run"
    ctl kick nobody@example.org
    [ "$ctl_status" -eq 1 ] && grep -qF "is not an account of this server" "$dir/ctl.run"
    check "kicking a JID of another server is refused: exit 1" $? "$dir/ctl.run"
}

timeout 120 "$py" "$here/xmpp_clients.py" > "$dir/clients.out" 2>&1 &
clients_pid=$!
timeout 120 "$py" "$here/xmpp_raw.py" > "$dir/raw.out" 2>&1 &
raw_pid=$!
timeout 120 "$py" "$here/xmpp_modules.py" > "$dir/modules.out" 2>&1 &
modules_pid=$!
# The witness waits for the kick: its reads are bounded by XMPP_WAIT, longer than the checks.
XMPP_WAIT=30 timeout 120 "$py" "$here/xmpp_modules.py" kick-witness > "$dir/kick.out" 2>&1 &
kick_pid=$!
client_pids="$clients_pid $raw_pid $modules_pid $kick_pid"
admin_suite > "$dir/admin.out" 2>&1
echo "xmpp admin: done" >> "$dir/admin.out"
if [ "$strophe_ok" -eq 1 ]; then
    strophe_suite > "$dir/strophe.out" 2>&1
    echo "xmpp strophe: done" >> "$dir/strophe.out"
fi
wait "$clients_pid"
wait "$raw_pid"
wait "$modules_pid"
wait "$kick_pid"
client_pids=""

# collect FILE [END]: prints FILE and counts its ok / not ok lines; with END, insists on a line
# starting with END (the program ran to its end).
collect() {
    [ -f "$1" ] || return 0
    cat "$1"
    p=$(grep -c '^ok - ' "$1")
    f=$(grep -c '^not ok - ' "$1")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ $# -gt 1 ] && ! grep -q "^$2" "$1"; then
        not_ok "$(basename "$1" .out) ran to its end (no \"$2\" line)"
    fi
}
collect "$dir/clients.out" "xmpp clients: "
collect "$dir/raw.out" "xmpp raw: "
collect "$dir/modules.out" "xmpp modules: "
collect "$dir/admin.out" "xmpp admin: done"
collect "$dir/kick.out" "xmpp kick: "
collect "$dir/strophe.out" "xmpp strophe: done"

# ---- run.sh: SIGTERM, with a client connected --------------------------------------------------
sm_pid=$(program_pid "$dir/run1.log" sm)
c2s_pid=$(program_pid "$dir/run1.log" c2s)
timeout 60 "$py" "$here/xmpp_raw.py" shutdown-witness > "$dir/shutdown.out" 2>&1 &
witness_pid=$!
if wait_for "$dir/shutdown.out" "ready" "$witness_pid" 10; then
    kill -TERM "$run_pid"
    wait_exit "$run_pid" 20
    status=$?
    run_pid=""
    if [ "$status" -eq 0 ] && ! alive "$sm_pid" && ! alive "$c2s_pid" &&
       grep -q "^jabshard: stopped" "$dir/run1.log" && grep -q "sm: stopped" "$dir/run1.log"; then
        ok "run.sh on SIGTERM stops the front and the SM and exits 0"
    else
        not_ok "run.sh on SIGTERM stops the front and the SM and exits 0 (status $status)" "$dir/run1.log"
    fi
else
    not_ok "the shutdown witness logs in" "$dir/shutdown.out"
fi
wait "$witness_pid"
collect "$dir/shutdown.out" "xmpp shutdown: "
if [ -z "$run_pid" ]; then   # stopped above
    ctl sessions
    if [ "$ctl_status" -eq 3 ] && grep -qF "cannot reach the session manager" "$dir/ctl.run" &&
       [ ! -e "$run/jabshard-sm.sock" ]; then
        ok "with the SM stopped (admin socket removed), jabshardctl sessions says so, exits 3"
    else
        not_ok "with the SM stopped, jabshardctl sessions exits 3 (status $ctl_status)" \
            "$dir/ctl.run"
    fi
fi

# ---- run.sh again: made once, accounts kept; then Ctrl-C ---------------------------------------
cp "$run/secret" "$dir/secret.before"
cp "$run/server.pem" "$dir/server.pem.before"
"$py" "$here/lib/ctrl_c.py" sh "$root/tools/run.sh" "$build" > "$dir/run2.log" 2>&1 &
launcher_pid=$!
if wait_for "$dir/run2.log" "Ctrl-C stops both" "$launcher_pid" 20 &&
   wait_for "$dir/run2.log" "SM link: up" "$launcher_pid" 10; then
    if cmp -s "$run/secret" "$dir/secret.before" &&
       cmp -s "$run/server.pem" "$dir/server.pem.before"; then
        ok "restarted: the secret and the certificate were made once and kept"
    else
        not_ok "restarted: the secret and the certificate were made once and kept"
    fi
    if [ "$strophe_ok" -eq 1 ]; then
        strophe "restarted: accounts persist (alice logs in, certificate still pinned)" 0 \
            "bound=alice@localhost/.+ ping=ok" -c "$run/server.pem" 127.0.0.1 "$JABSHARD_PORT" \
            alice@localhost alice-secret > "$dir/restart.out"
        collect "$dir/restart.out"
    fi
    sm_pid=$(program_pid "$dir/run2.log" sm)
    c2s_pid=$(program_pid "$dir/run2.log" c2s)
    kill -USR1 "$launcher_pid"
    wait_exit "$launcher_pid" 30
    status=$?
    launcher_pid=""
    if [ "$status" -eq 0 ] && ! alive "$sm_pid" && ! alive "$c2s_pid" &&
       grep -q "^jabshard: stopped" "$dir/run2.log"; then
        ok "Ctrl-C (SIGINT to the foreground process group) stops both; run.sh exits 0"
    else
        not_ok "Ctrl-C stops both and run.sh exits 0 (status $status)" "$dir/run2.log"
    fi
else
    not_ok "run.sh starts again in the same run directory" "$dir/run2.log"
fi

# ---- run.sh when a program dies ---------------------------------------------------------------
sh "$root/tools/run.sh" "$build" > "$dir/run3.log" 2>&1 &
run_pid=$!
if wait_for "$dir/run3.log" "Ctrl-C stops both" "$run_pid" 20; then
    sm_pid=$(program_pid "$dir/run3.log" sm)
    c2s_pid=$(program_pid "$dir/run3.log" c2s)
    kill -KILL "$sm_pid"
    wait_exit "$run_pid" 20
    status=$?
    run_pid=""
    if [ "$status" -eq 1 ] && ! alive "$c2s_pid" &&
       grep -q "session manager (jabshard-sm) exited" "$dir/run3.log"; then
        ok "when the SM dies, run.sh says so, stops the front and exits 1"
    else
        not_ok "when the SM dies, run.sh stops the front and exits 1 (status $status)" "$dir/run3.log"
    fi
else
    not_ok "run.sh starts a third time" "$dir/run3.log"
fi

# Sanitizer builds (make check SAN=...): the programs must not have reported anything.
if grep -hE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|WARNING: ThreadSanitizer|runtime error:' \
        "$dir"/run*.log > "$dir/san.log" 2>/dev/null; then
    not_ok "the programs' logs have no sanitizer reports" "$dir/san.log"
else
    ok "the programs' logs have no sanitizer reports"
fi

echo "xmpp: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
