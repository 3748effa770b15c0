#!/bin/sh
# tests/integration/security.sh — the attacks of security issue 12, replayed against the real
# programs. Starts the SM serving two hosts (localhost and example.org) with in-band registration
# on both, one front for both, and a component service (conference.localhost), then runs
# security.py: the cross-host takeover, the stanzas that aborted the SM and the front, the
# component that asked for frames, the front's memory under amplifying stanzas and unique names,
# a forged offline delay, and a session that must end once. Both programs must be alive at the
# end, have logged no sanitizer report, and stop cleanly.
# Usage: security.sh BUILD_DIR. Prints ok / not ok lines and ends "security: N passed, N failed".
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
suite=security
# shellcheck source-path=SCRIPTDIR source=lib/cluster.sh
. "$here/lib/cluster.sh"
cluster_init

# shellcheck disable=SC2046
set -- $(free_ports 4)
c2s_port=$1 tls_port=$2 sm_port=$3 comp_port=$4
front_secret=$(secret) comp_secret=$(secret)
cat > "$dir/sm.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<sm>
$(service jadc2s 127.0.0.1 "$sm_port" "$front_secret" front)
$(service conference.localhost 127.0.0.1 "$comp_port" "$comp_secret" component)
  <host name='localhost'><register/></host>
  <host name='example.org'><register/></host>
  <storage><driver>sqlite</driver><path>$dir/jabshard.db</path></storage>
  <log><level>info</level></log>
</sm>
EOF
cat > "$dir/jadc2s.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<jadc2s>
  <sm><host>127.0.0.1</host><port>$sm_port</port><secret>$front_secret</secret><id>jadc2s</id></sm>
  <local>
    <id>localhost</id><id>example.org</id><ip>127.0.0.1</ip><port>$c2s_port</port>
    <ssl><port>$tls_port</port><pemfile>$dir/server.pem</pemfile></ssl>
  </local>
  <max_fds>1021</max_fds>
  <threads>2</threads>
  <!-- The memory scenarios send megabytes from one connection: no read rate limit. -->
  <limits><max_bps>0</max_bps></limits>
  <log><level>info</level></log>
</jadc2s>
EOF
start_sm "$dir/sm.xml" "$dir/sm.log"
start_front "$dir/jadc2s.xml" "$dir/front.log"

printf '%s\n' "victim@localhost victim-secret" "bob@localhost bob-secret" > "$dir/users.txt"
"$build/bin/jabshardctl" -c "$dir/sm.xml" import "$dir/users.txt" > "$dir/ctl.log" 2>&1 ||
    give_up "jabshardctl creates the accounts" "$dir/ctl.log"

export XMPP_HOST=127.0.0.1 XMPP_PORT="$c2s_port" XMPP_TLS_PORT="$tls_port"
export XMPP_CAFILE="$dir/server.pem" COMP_PORT="$comp_port" COMP_SECRET="$comp_secret"
export SM_PID="$sm_pid" FRONT_PID="$front_pid" SM_LOG="$dir/sm.log" JABSHARD_BUILD="$build"
timeout 150 "$py" "$here/security.py" > "$dir/security.out" 2>&1
collect "$dir/security.out" "security: "

if alive "$sm_pid" && alive "$front_pid"; then
    ok "the SM and the front are still running after every attack"
else
    not_ok "the SM and the front are still running after every attack" "$dir/sm.log"
    tail -n 20 "$dir/front.log" | sed 's/^/    /'
fi
if grep -q "victim@example.org" "$dir/sm.log"; then
    not_ok "no session or login of victim@example.org ever reached the SM" "$dir/sm.log"
else
    ok "no session or login of victim@example.org ever reached the SM"
fi
sanitizer_check "$dir/sm.log" "$dir/front.log"
front_status=0 sm_status=0
cluster_stop "$front_pid" || front_status=$?
cluster_stop "$sm_pid" || sm_status=$?
if [ "$front_status" -eq 0 ] && [ "$sm_status" -eq 0 ]; then
    ok "the front and the SM stop cleanly on SIGTERM (status 0)"
else
    not_ok "the front and the SM stop cleanly on SIGTERM (front $front_status, SM $sm_status)"
fi
summary
[ "$failed" -eq 0 ]
