#!/bin/sh
# tools/run.sh — "make run": the whole system on its embedded default. Prepares a run directory
# (build/run, or $JABSHARD_RUN_DIR) holding sm.xml and jadc2s.xml derived from etc/ at every start,
# the SQLite database, and, made once and then kept so clients can pin them across restarts, a
# self-signed certificate for localhost (server.pem), the SM link's shared secret and the HTTP File
# Upload signing key (upload-secret). Starts
# jabshard-sm, then jabshard-c2s once the SM listens, prints how to connect, and on SIGINT or
# SIGTERM (Ctrl-C) stops the front, then the SM, by PID and exits 0 (1 if either did not exit
# with status 0). If either program exits on its own, the other is stopped and the status is 1.
# Federation is off unless JABSHARD_FEDERATION=1 (make run FEDERATION=1): then s2s.xml is derived
# from etc/s2s.xml too (its SM link secret, s2s-secret, and the dialback secret, dialback-secret,
# made once and kept; the same server.pem), sm.xml's <service id='s2s'> is turned on, and
# jabshard-s2s starts after the SM and stops with the others, under the same rules.
# Beside server.pem (certificate and key, 0600, for the front) it keeps cert.pem, the certificate
# alone, for clients to trust; it prints its path and fingerprints.
#
# Usage: tools/run.sh BUILD_DIR
# Environment (defaults in brackets):
#   JABSHARD_RUN_DIR [build/run]  JABSHARD_IP [127.0.0.1]  JABSHARD_PORT [5222, STARTTLS]
#   JABSHARD_TLS_PORT [5223, direct TLS]  JABSHARD_SM_PORT [5111]  JABSHARD_LOG_LEVEL [info]
#   JABSHARD_HTTP_PORT [5280, WebSocket, uploads]  JABSHARD_HTTPS_PORT [5281, the same on TLS]
#   JABSHARD_LIMITS   name=value pairs for jadc2s.xml's <limits>, e.g. "max_bps=0 stanza_size=524288"
#                     (the defaults serve a test suite from this machine: loopback is trusted)
#   JABSHARD_FEDERATION=1  also run jabshard-s2s, the federation front, on JABSHARD_S2S_PORT
#                     [5269, STARTTLS] and JABSHARD_S2S_TLS_PORT [5270, direct TLS], linked to the
#                     SM on JABSHARD_SM_S2S_PORT [5113]
#   JABSHARD_PREPARE_ONLY=1  prepare the run directory (configuration, certificate, secret) and
#                     exit without starting anything (the fault tests start the programs themselves)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: tools/run.sh BUILD_DIR}" && pwd)
sm_bin="$build/bin/jabshard-sm"
c2s_bin="$build/bin/jabshard-c2s"
ctl_bin="$build/bin/jabshardctl"
s2s_bin="$build/bin/jabshard-s2s"
federation=${JABSHARD_FEDERATION:-0}
case "$federation" in
    0|1) ;;
    *) echo "jabshard: JABSHARD_FEDERATION is 0 or 1, not '$federation'" >&2; exit 1 ;;
esac
s2s_needed=""
if [ "$federation" = 1 ]; then s2s_needed=$s2s_bin; fi
for b in "$sm_bin" "$c2s_bin" "$ctl_bin" $s2s_needed; do
    if [ ! -x "$b" ]; then
        echo "jabshard: $b is not built (run 'make')" >&2
        exit 1
    fi
done

run=${JABSHARD_RUN_DIR:-$root/build/run}
ip=${JABSHARD_IP:-127.0.0.1}
port=${JABSHARD_PORT:-5222}
tls_port=${JABSHARD_TLS_PORT:-5223}
sm_port=${JABSHARD_SM_PORT:-5111}
http_port=${JABSHARD_HTTP_PORT:-5280}
https_port=${JABSHARD_HTTPS_PORT:-5281}
level=${JABSHARD_LOG_LEVEL:-info}
limits=${JABSHARD_LIMITS:-}
s2s_port=${JABSHARD_S2S_PORT:-5269}
s2s_tls_port=${JABSHARD_S2S_TLS_PORT:-5270}
sm_s2s_port=${JABSHARD_SM_S2S_PORT:-5113}

umask 077
mkdir -p "$run"
run=$(cd "$run" && pwd)

# keep_secret NAME BYTES: $run/NAME holds BYTES random bytes in hex, made the first time only.
# The shared secrets and the certificate are made once: regenerating them would break the links'
# configuration for nobody and every client's pinned certificate for no reason.
keep_secret() {
    if [ ! -s "$run/$1" ]; then
        od -An -N"$2" -tx1 /dev/urandom | tr -d ' \n' > "$run/$1.new"
        mv "$run/$1.new" "$run/$1"
    fi
}
keep_secret secret 24
secret=$(cat "$run/secret")
# The key HTTP File Upload URLs are signed with (docs/upload.md), shared by the SM and the stores
# that check it: made once, read from its file by both.
keep_secret upload-secret 32
if [ ! -s "$run/server.pem" ]; then
    if command -v openssl >/dev/null 2>&1; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -subj /CN=localhost -addext subjectAltName=DNS:localhost \
            -keyout "$run/key.new" -out "$run/cert.new" 2>"$run/openssl.log" || {
            cat "$run/openssl.log" >&2
            echo "jabshard: openssl could not make a certificate" >&2
            exit 1
        }
        cat "$run/cert.new" "$run/key.new" > "$run/server.pem.new"
        mv "$run/server.pem.new" "$run/server.pem"
        rm -f "$run/cert.new" "$run/key.new" "$run/cert.pem" "$run/openssl.log"
    else
        echo "jabshard: openssl(1) is missing: the front makes a certificate in memory" \
             "at each start" >&2
    fi
fi

# The certificate alone, readable by anyone: what clients are told to trust (never the key).
if [ -s "$run/server.pem" ] && [ ! -s "$run/cert.pem" ] && command -v openssl >/dev/null 2>&1; then
    openssl x509 -in "$run/server.pem" -out "$run/cert.pem.new" && chmod 644 "$run/cert.pem.new" &&
        mv "$run/cert.pem.new" "$run/cert.pem"
fi

# derive TEMPLATE LIMITS OLD NEW [OLD NEW]...: writes $run/TEMPLATE, etc/TEMPLATE with each OLD
# (a default that must appear exactly once: a template this script does not know stops it rather
# than run on the wrong settings) replaced by NEW, and LIMITS ("name=value ...") set in <limits>.
derive() {
    template=$1 out="$run/$1" derive_limits=$2
    shift 2
    awk -v limits="$derive_limits" '
        BEGIN {
            for (i = 2; i < ARGC; i += 2) { old[i] = ARGV[i]; new[i] = ARGV[i + 1]; seen[i] = 0 }
            ARGC = 2
            n = split(limits, pairs, " ")
            for (k = 1; k <= n; k++) {
                if (pairs[k] !~ /^[a-z_]+=[^<&]*$/) {
                    print "bad JABSHARD_LIMITS entry \"" pairs[k] "\"" > "/dev/stderr"
                    bad = 1
                    exit
                }
                eq = index(pairs[k], "=")
                lname[k] = substr(pairs[k], 1, eq - 1)
                lvalue[k] = substr(pairs[k], eq + 1)
            }
        }
        {
            # Replace left to right, never rescanning replaced text (a new port may be an old one).
            rest = $0
            line = ""
            for (;;) {
                first = 0
                for (i in old) {
                    at = index(rest, old[i])
                    if (at > 0 && (!first || at < first)) { first = at; which = i }
                }
                if (!first)
                    break
                line = line substr(rest, 1, first - 1) new[which]
                rest = substr(rest, first + length(old[which]))
                seen[which]++
            }
            $0 = line rest
            for (k = 1; k <= n; k++)
                if (match($0, "<" lname[k] ">[^<]*</" lname[k] ">")) {
                    $0 = substr($0, 1, RSTART - 1) "<" lname[k] ">" lvalue[k] "</" lname[k] ">" \
                         substr($0, RSTART + RLENGTH)
                    done[k] = 1
                }
            if ($0 ~ /<\/limits>/)
                for (k = 1; k <= n; k++)
                    if (!done[k]) {
                        print "    <" lname[k] ">" lvalue[k] "</" lname[k] ">"
                        done[k] = 1
                    }
            print
        }
        END {
            if (bad)
                exit 1
            for (i in old)
                if (seen[i] != 1) {
                    print "expected \"" old[i] "\" once, found it " seen[i] " times" > "/dev/stderr"
                    bad = 1
                }
            for (k = 1; k <= n; k++)
                if (!done[k]) {
                    print "no <limits> for " lname[k] > "/dev/stderr"
                    bad = 1
                }
            exit bad
        }' "$root/etc/$template" "$@" > "$out.new" || {
        echo "jabshard: tools/run.sh cannot derive $out from etc/$template (has etc/ changed?)" >&2
        exit 1
    }
    mv "$out.new" "$out"
}

# With federation on: sm.xml's <service id='s2s'> out of its "federation off" comment, on its port
# with its secret; s2s.xml beside it.
set --
if [ "$federation" = 1 ]; then
    keep_secret s2s-secret 24
    keep_secret dialback-secret 32
    s2s_secret=$(cat "$run/s2s-secret")
    set -- "<!-- federation off" "<!-- federation on -->" \
        "federation off -->" "<!-- federation on -->" \
        "<port>5113</port>" "<port>$sm_s2s_port</port>" \
        "<secret>change this s2s link secret</secret>" "<secret>$s2s_secret</secret>"
fi
derive sm.xml "" "$@" \
    "<port>5111</port>" "<port>$sm_port</port>" \
    "<secret>secret</secret>" "<secret>$secret</secret>" \
    "<secret>change-this-upload-secret</secret>" "<secret_file>$run/upload-secret</secret_file>" \
    "<url>https://localhost:5281/upload</url>" "<url>https://localhost:$https_port/upload</url>" \
    "<path>./jabshard.db</path>" "<path>$run/jabshard.db</path>" \
    "<level>info</level>" "<level>$level</level>"
derive jadc2s.xml "$limits" \
    "<port>5111</port>" "<port>$sm_port</port>" \
    "<secret>secret</secret>" "<secret>$secret</secret>" \
    "<ip>0.0.0.0</ip>" "<ip>$ip</ip>" \
    "<port>5222</port>" "<port>$port</port>" \
    "<port>5223</port>" "<port>$tls_port</port>" \
    "<pemfile>./server.pem</pemfile>" "<pemfile>$run/server.pem</pemfile>" \
    "<port>5280</port>" "<port>$http_port</port>" \
    "<tls_port>5281</tls_port>" "<tls_port>$https_port</tls_port>" \
    "<dir>./upload</dir>" "<dir>$run/upload</dir>" \
    "<secret>change-this-upload-secret</secret>" "<secret_file>$run/upload-secret</secret_file>" \
    "<level>info</level>" "<level>$level</level>"
if [ "$federation" = 1 ]; then
    derive s2s.xml "" \
        "<port>5113</port>" "<port>$sm_s2s_port</port>" \
        "<secret>change this s2s link secret</secret>" "<secret>$s2s_secret</secret>" \
        "<id>s2s</id>" "<id>s2s</id>" \
        "<id>localhost</id>" "<id>localhost</id>" \
        "<id>conference.localhost</id>" "<id>conference.localhost</id>" \
        "<id>upload.localhost</id>" "<id>upload.localhost</id>" \
        "<ip>0.0.0.0</ip>" "<ip>$ip</ip>" \
        "<port>5269</port>" "<port>$s2s_port</port>" \
        "<tls_port>5270</tls_port>" "<tls_port>$s2s_tls_port</tls_port>" \
        "<pemfile>./server.pem</pemfile>" "<pemfile>$run/server.pem</pemfile>" \
        "<dialback_secret>change this dialback secret</dialback_secret>" \
        "<dialback_secret_file>$run/dialback-secret</dialback_secret_file>" \
        "<level>info</level>" "<level>$level</level>"
else
    rm -f "$run/s2s.xml"
fi

if [ "${JABSHARD_PREPARE_ONLY:-}" = 1 ]; then
    echo "jabshard: prepared $run"
    exit 0
fi

# listening PORT: something listens on TCP PORT. The kernel lists listening sockets first in
# /proc/net/tcp{,6}, so the scan stops at the first other one: a busy machine has tens of
# thousands of connections there.
listening() {
    hex=$(printf '%04X' "$1")
    for table in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$table" ] || continue
        awk -v p=":$hex" 'NR == 1 { next }
                          $4 != "0A" { exit }
                          substr($2, length($2) - 4) == p { found = 1; exit }
                          END { exit !found }' "$table" && return 0
    done
    return 1
}
# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}

sm_pid="" c2s_pid="" s2s_pid="" tick_pid="" unclean=0
# stop PID...: SIGTERM to each in turn and waits for it to exit (all shut down cleanly on
# SIGTERM, with status 0); one still there after 10 s is killed. Any other end sets unclean.
stop() {
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        i=0
        while alive "$pid" && [ "$i" -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if alive "$pid"; then
            echo "jabshard: process $pid did not stop in 10 s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        status=0
        wait "$pid" 2>/dev/null || status=$?
        if [ "$status" -ne 0 ]; then
            echo "jabshard: process $pid ($(program_name "$pid")) ended with status $status" >&2
            unclean=1
        fi
    done
}
program_name() {
    if [ "$1" = "$sm_pid" ]; then echo jabshard-sm
    elif [ "$1" = "$s2s_pid" ]; then echo jabshard-s2s
    else echo jabshard-c2s; fi
}
# shellcheck disable=SC2317  # called by the trap below
on_signal() {
    trap '' INT TERM
    if [ -n "$tick_pid" ]; then kill "$tick_pid" 2>/dev/null || true; fi
    echo "jabshard: stopping"
    stop "$c2s_pid" "$s2s_pid" "$sm_pid"
    if [ "$unclean" -ne 0 ]; then
        echo "jabshard: stopped, not cleanly" >&2
        exit 1
    fi
    echo "jabshard: stopped"
    exit 0
}
trap on_signal INT TERM

s2s_ports=""
if [ "$federation" = 1 ]; then s2s_ports="$s2s_port $s2s_tls_port $sm_s2s_port"; fi
for p in "$port" "$tls_port" "$sm_port" "$http_port" "$https_port" $s2s_ports; do
    if listening "$p"; then
        echo "jabshard: port $p is already in use (another 'make run'?); set JABSHARD_PORT," \
             "JABSHARD_TLS_PORT, JABSHARD_SM_PORT, JABSHARD_HTTP_PORT or JABSHARD_HTTPS_PORT" \
             "${s2s_ports:+(federation: JABSHARD_S2S_PORT, JABSHARD_S2S_TLS_PORT, JABSHARD_SM_S2S_PORT)}" >&2
        exit 1
    fi
done

cd "$run"
"$sm_bin" -c "$run/sm.xml" &
sm_pid=$!
# wait_for PORT PID: up to 10 s for PORT to listen while PID lives.
wait_for() {
    i=0
    while ! listening "$1"; do
        if ! alive "$2" || [ "$i" -ge 100 ]; then
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
}
if ! wait_for "$sm_port" "$sm_pid"; then
    echo "jabshard: the session manager did not start" >&2
    stop "$sm_pid"
    exit 1
fi
"$c2s_bin" -c "$run/jadc2s.xml" &
c2s_pid=$!
if ! wait_for "$port" "$c2s_pid" || ! wait_for "$tls_port" "$c2s_pid"; then
    echo "jabshard: the front did not start" >&2
    stop "$c2s_pid" "$sm_pid"
    exit 1
fi
if [ "$federation" = 1 ]; then
    "$s2s_bin" -c "$run/s2s.xml" &
    s2s_pid=$!
    if ! wait_for "$s2s_port" "$s2s_pid" || ! wait_for "$s2s_tls_port" "$s2s_pid"; then
        echo "jabshard: the federation front did not start" >&2
        stop "$c2s_pid" "$s2s_pid" "$sm_pid"
        exit 1
    fi
fi

rel() { case "$1" in "$root"/*) echo "${1#"$root"/}" ;; *) echo "$1" ;; esac; }
sha256="" sha1=""
if [ -s "$run/cert.pem" ] && command -v openssl >/dev/null 2>&1; then
    sha256=$(openssl x509 -in "$run/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
    sha1=$(openssl x509 -in "$run/cert.pem" -noout -fingerprint -sha1 | sed 's/.*=//')
fi
cat <<EOF

jabshard is running: domain localhost, STARTTLS on $ip:$port, direct TLS on $ip:$tls_port,
group chat at conference.localhost, file upload at upload.localhost
  web clients:    WebSocket wss://localhost:$https_port/xmpp-websocket, BOSH
                  https://localhost:$https_port/http-bind (plain ws:// and http:// on
                  $ip:$http_port from this machine); discovery at
                  https://localhost:$https_port/.well-known/host-meta
  run directory:  $(rel "$run")  (sm.xml, jadc2s.xml${s2s_pid:+ and s2s.xml} are remade from etc/ at every start)
  certificate:    $run/cert.pem (self-signed for localhost: the file to trust)${sha256:+
                  SHA-256 $sha256
                  SHA-1   $sha1}

Create a user (or register in-band from a client: it is on for localhost):
  $(rel "$ctl_bin") -c $(rel "$run")/sm.xml adduser alice@localhost
then, from Profanity (it asks whether to trust the certificate, showing the SHA-1 fingerprint
above: answer /tls always):
  /connect alice@localhost server $ip port $port tls force
  /join lobby@conference.localhost
or from slixmpp (Debian's python3-slixmpp), a message to yourself, checking the certificate:
  /usr/bin/python3 -c "import slixmpp; c = slixmpp.ClientXMPP('alice@localhost', 'PASSWORD', sasl_mech='PLAIN'); c.ssl_context.load_verify_locations('$run/cert.pem'); c.add_event_handler('session_start', lambda _: (c.send_presence(), c.send_message(mto='alice@localhost', mbody='hello'))); c.add_event_handler('message', lambda m: (print(m['from'], m['body']), c.disconnect())); c.connect(('$ip', $port)); c.loop.run_until_complete(c.disconnected)"

EOF
if [ -n "$s2s_pid" ]; then
    cat <<EOF
Federation is on: jabshard-s2s for localhost, conference.localhost and upload.localhost, STARTTLS
on $ip:$s2s_port, direct TLS on $ip:$s2s_tls_port, linked to the SM on port $sm_s2s_port. Other
servers can reach it only under a real domain with DNS SRV records and a certificate from a
public CA (docs/deployment.md, "Federation").

Ctrl-C stops all three.
EOF
else
    cat <<EOF
Federation is off: make run FEDERATION=1 (JABSHARD_FEDERATION=1) runs jabshard-s2s as well.

Ctrl-C stops both.
EOF
fi

# Wait for a signal or for any program to end; the tick runs in the background so a signal
# interrupts 'wait' at once.
while alive "$sm_pid" && alive "$c2s_pid" && { [ -z "$s2s_pid" ] || alive "$s2s_pid"; }; do
    sleep 1 &
    tick_pid=$!
    wait "$tick_pid" || true
    tick_pid=""
done
trap '' INT TERM
who="the session manager (jabshard-sm)" others="the other"
if [ -n "$s2s_pid" ]; then others="the others"; fi
if ! alive "$c2s_pid"; then who="the front (jabshard-c2s)"
elif [ -n "$s2s_pid" ] && ! alive "$s2s_pid"; then who="the federation front (jabshard-s2s)"; fi
if ! alive "$sm_pid"; then who="the session manager (jabshard-sm)"; fi
echo "jabshard: $who exited; stopping $others" >&2
stop "$c2s_pid" "$s2s_pid" "$sm_pid"
exit 1
