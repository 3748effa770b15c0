# shellcheck shell=sh disable=SC2154  # build and suite are set by the sourcing script
# tests/integration/lib/cluster.sh — sourced by the integration scripts that assemble the system
# by hand rather than through tools/run.sh (several fronts, components): a temporary directory,
# free loopback ports, a certificate, the SM's and a front's configuration files, programs started
# and stopped by PID (every one of them stopped by the EXIT trap), and the ok / not ok counting.
#
# The sourcing script sets build (the build directory), here (its own directory) and suite (the
# name its summary line starts with), then calls cluster_init. Programs started with
# cluster_start are stopped in reverse order on exit.

py=/usr/bin/python3   # Debian's python3-slixmpp is importable from the system Python only
passed=0 failed=0 cluster_pids=""

ok() { passed=$((passed + 1)); echo "ok - $1"; }
# not_ok NAME [FILE]: a failed check, with FILE's content indented below it.
not_ok() {
    failed=$((failed + 1)); echo "not ok - $1"
    if [ $# -gt 1 ] && [ -s "$2" ]; then sed 's/^/    /' "$2"; fi
}
summary() { echo "$suite: $passed passed, $failed failed"; }
# give_up NAME [FILE]: a failed check that leaves nothing else to test.
give_up() { not_ok "$@"; summary; exit 1; }

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}
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

# cluster_start LOG PROGRAM ARGS...: starts PROGRAM in the background, output to LOG; the PID is
# in $started and is stopped by the EXIT trap if still running then.
cluster_start() {
    log=$1
    shift
    "$@" > "$log" 2>&1 &
    started=$!
    cluster_pids="$started $cluster_pids"
}
# cluster_stop PID: SIGTERM, up to 10 s to exit (then SIGKILL); returns the exit status.
cluster_stop() {
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1" 10
    status=$?
    if [ "$status" -eq 124 ]; then
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
    fi
    return "$status"
}
cluster_cleanup() {
    for pid in $cluster_pids; do
        if alive "$pid"; then cluster_stop "$pid"; fi
    done
    rm -rf "$dir"
}

# cluster_init: the run directory ($dir), the programs' presence, slixmpp, the EXIT trap, and a
# self-signed certificate for localhost ($dir/server.pem).
cluster_init() {
    dir=$(mktemp -d "/tmp/jabshard-$suite.XXXXXX")
    trap cluster_cleanup EXIT
    trap 'exit 130' INT TERM
    for need in "$build/bin/jabshard-sm" "$build/bin/jabshard-c2s" "$build/bin/jabshardctl"; do
        [ -x "$need" ] || give_up "$need is built"
    done
    "$py" -c 'import slixmpp' 2>/dev/null ||
        give_up "slixmpp is installed (python3-slixmpp: tools/deps.sh)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout "$dir/key.pem" \
        -out "$dir/cert.pem" > "$dir/openssl.log" 2>&1 ||
        give_up "openssl makes a certificate" "$dir/openssl.log"
    cat "$dir/cert.pem" "$dir/key.pem" > "$dir/server.pem"
}

# free_ports N: N TCP ports free on loopback, below the kernel's ephemeral range (faultlib.py's
# free_ports: a program a test restarts binds its port again, and the load generator's outgoing
# connections never take these).
free_ports() {
    "$py" -c 'import sys; sys.path.insert(0, sys.argv[1]); import faultlib
print(" ".join(str(p) for p in faultlib.free_ports(int(sys.argv[2]))))' "$here/lib" "$1"
}
# secret: 48 random hex digits.
secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# sm_config FILE SERVICES: the SM's configuration, host localhost, SQLite in $dir, with SERVICES
# (<service> elements) as its links.
sm_config() {
    cat > "$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<sm>
$2
  <host name='localhost'/>
  <storage><driver>sqlite</driver><path>$dir/jabshard.db</path></storage>
  <log><level>info</level></log>
</sm>
EOF
}
# service ID IP PORT SECRET ROLE: one <service> element (ROLE front or component).
service() {
    echo "  <service id='$1' role='$5'>" \
         "<accept><ip>$2</ip><port>$3</port><secret>$4</secret></accept></service>"
}
# front_config FILE ID SECRET SM_PORT IP PORT TLS_PORT: a front's configuration (jadc2s.xml),
# linking to the SM on 127.0.0.1:SM_PORT as ID, serving localhost on IP:PORT and IP:TLS_PORT.
# Every client here comes from loopback, which the default <limits><trusted> exempts from the
# per-address limits.
front_config() {
    cat > "$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<jadc2s>
  <sm><host>127.0.0.1</host><port>$4</port><secret>$3</secret><id>$2</id></sm>
  <local>
    <id>localhost</id><ip>$5</ip><port>$6</port>
    <ssl><port>$7</port><pemfile>$dir/server.pem</pemfile></ssl>
  </local>
  <max_fds>1021</max_fds>
  <threads>2</threads>
  <log><level>info</level></log>
</jadc2s>
EOF
}

# start_sm CONFIG LOG: the SM, until it says it started ($sm_pid), or give up.
start_sm() {
    cluster_start "$2" "$build/bin/jabshard-sm" -c "$1"
    sm_pid=$started
    wait_for "$2" "sm: started" "$sm_pid" 10 || give_up "the SM starts" "$2"
}
# start_front CONFIG LOG: a front, until its link to the SM is up ($front_pid), or give up.
start_front() {
    cluster_start "$2" "$build/bin/jabshard-c2s" -c "$1"
    front_pid=$started
    wait_for "$2" "SM link: up" "$front_pid" 10 || give_up "the front $1 links to the SM" "$2"
}

# collect FILE SUMMARY: prints a Python scenario's output and counts its ok / not ok lines; a
# script that did not reach its summary line is one more failure.
collect() {
    cat "$1"
    passed=$((passed + $(grep -c '^ok - ' "$1")))
    failed=$((failed + $(grep -c '^not ok - ' "$1")))
    grep -q "^$2" "$1" || not_ok "$(basename "$1") ran to its end (no \"$2\" line)"
}

# sanitizer_check LOG...: sanitizer builds (make check SAN=...) must have reported nothing.
sanitizer_check() {
    pattern='ERROR: (Address|Leak|Thread|Memory)Sanitizer|WARNING: ThreadSanitizer|runtime error:'
    if grep -hE "$pattern" "$@" > "$dir/san.log" 2>/dev/null; then
        not_ok "the programs' logs have no sanitizer reports" "$dir/san.log"
    else
        ok "the programs' logs have no sanitizer reports"
    fi
}
