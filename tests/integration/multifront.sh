#!/bin/sh
# tests/integration/multifront.sh — several fronts on one SM, the round-robin DNS picture of
# docs/deployment.md: front A on 127.0.0.1 and front B on 127.0.0.2 (two boxes, as far as one
# machine can show it), each with its own <service> id and secret on the SM. multifront.py puts
# users on both: subscriptions, presence and messages across fronts, priority routing over a
# user's resources on both, jabshardctl sessions naming each session's front; then it stops front
# B cleanly (SIGTERM) and checks what its users' contacts see and that their messages wait for
# them. Here: front B's exit status, the SM noticing it, and a clean stop of the rest.
# Usage: multifront.sh BUILD_DIR. Prints ok / not ok lines and ends
# "multifront: N passed, N failed".
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
suite=multifront
# shellcheck source-path=SCRIPTDIR source=lib/cluster.sh
. "$here/lib/cluster.sh"
cluster_init

# shellcheck disable=SC2046
set -- $(free_ports 5)
a_port=$1 a_tls=$2 b_port=$3 b_tls=$4 sm_port=$5
a_secret=$(secret) b_secret=$(secret)
# Front B's box is 127.0.0.2: its ports were found free on 127.0.0.1, and nothing else binds
# that address here.
sm_config "$dir/sm.xml" "$(service front-a 127.0.0.1 "$sm_port" "$a_secret" front)
$(service front-b 127.0.0.1 "$sm_port" "$b_secret" front)"
front_config "$dir/front-a.xml" front-a "$a_secret" "$sm_port" 127.0.0.1 "$a_port" "$a_tls"
front_config "$dir/front-b.xml" front-b "$b_secret" "$sm_port" 127.0.0.2 "$b_port" "$b_tls"
start_sm "$dir/sm.xml" "$dir/sm.log"
start_front "$dir/front-a.xml" "$dir/front-a.log"
a_pid=$front_pid
start_front "$dir/front-b.xml" "$dir/front-b.log"
b_pid=$front_pid
if grep -q "front 'front-a' is up" "$dir/sm.log" && grep -q "front 'front-b' is up" "$dir/sm.log" &&
   grep -qF "listening on 127.0.0.2 port $b_port" "$dir/front-b.log"; then
    ok "two fronts (127.0.0.1 and 127.0.0.2) link to one SM, each with its own id and secret"
else
    not_ok "two fronts link to one SM" "$dir/sm.log"
fi

printf '%s\n' "alice@localhost alice-secret" "bob@localhost bob-secret" \
    "carol@localhost carol-secret" > "$dir/users.txt"
"$build/bin/jabshardctl" -c "$dir/sm.xml" import "$dir/users.txt" > "$dir/ctl.log" 2>&1 ||
    give_up "jabshardctl creates the accounts" "$dir/ctl.log"

export XMPP_CAFILE="$dir/server.pem"
export XMPP_PASSWORDS="alice=alice-secret bob=bob-secret carol=carol-secret"
export FRONT_A="127.0.0.1:$a_port" FRONT_B="127.0.0.2:$b_port" FRONT_B_PID="$b_pid"
export CTL="$build/bin/jabshardctl" SM_CONFIG="$dir/sm.xml"
timeout 55 "$py" "$here/multifront.py" > "$dir/multifront.out" 2>&1
collect "$dir/multifront.out" "multifront scenarios: "

if grep -q "^front B: SIGTERM sent" "$dir/multifront.out"; then
    wait_exit "$b_pid" 10
    status=$?
    if [ "$status" -eq 0 ] && wait_for "$dir/sm.log" "front 'front-b' is down" "$sm_pid" 5 &&
       ! grep -q "front 'front-a' is down" "$dir/sm.log"; then
        ok "front B exited 0 on SIGTERM; the SM saw it go and kept front A"
    else
        not_ok "front B exits 0 on SIGTERM and the SM sees it go (status $status)" \
            "$dir/front-b.log"
    fi
else
    not_ok "multifront.py got as far as stopping front B"
    cluster_stop "$b_pid"
fi
cluster_stop "$a_pid"
a_status=$?
cluster_stop "$sm_pid"
sm_status=$?
if [ "$a_status" -eq 0 ] && [ "$sm_status" -eq 0 ]; then
    ok "front A and the SM stop cleanly on SIGTERM (status 0)"
else
    not_ok "front A and the SM stop cleanly (front A $a_status, SM $sm_status)" "$dir/sm.log"
fi
sanitizer_check "$dir/sm.log" "$dir/front-a.log" "$dir/front-b.log"

summary
[ "$failed" -eq 0 ]
