#!/bin/sh
# tests/integration/components.sh — XEP-0114 external components on the SM. Starts the SM with
# one front and three component <service>s sharing one port (comp.localhost for slixmpp's
# ComponentXMPP, irc.localhost for biboumi, down.localhost that never connects), makes accounts,
# then runs components.py: the handshake and refused ones, stanzas both ways, disco answered by
# the component, 'from' outside its domain, subdomains, a second connection, a component that is
# down. Then Debian's biboumi (an XMPP-IRC gateway; no IRC server is needed to answer disco)
# connects as irc.localhost and a user's disco#info must reach it. Finally the SM and the front
# must still be running and stop cleanly.
# Usage: components.sh BUILD_DIR. Prints ok / not ok lines and ends
# "components: N passed, N failed".
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
suite=components
# shellcheck source-path=SCRIPTDIR source=lib/cluster.sh
. "$here/lib/cluster.sh"
cluster_init

# shellcheck disable=SC2046
set -- $(free_ports 4)
c2s_port=$1 tls_port=$2 sm_port=$3 comp_port=$4
front_secret=$(secret) comp_secret=$(secret) irc_secret=$(secret)
sm_config "$dir/sm.xml" "$(service jadc2s 127.0.0.1 "$sm_port" "$front_secret" front)
$(service comp.localhost 127.0.0.1 "$comp_port" "$comp_secret" component)
$(service irc.localhost 127.0.0.1 "$comp_port" "$irc_secret" component)
$(service down.localhost 127.0.0.1 "$comp_port" "$(secret)" component)"
front_config "$dir/jadc2s.xml" jadc2s "$front_secret" "$sm_port" 127.0.0.1 "$c2s_port" "$tls_port"
start_sm "$dir/sm.xml" "$dir/sm.log"
start_front "$dir/jadc2s.xml" "$dir/front.log"
if grep -qF "link: listening on 127.0.0.1:$comp_port" "$dir/sm.log" &&
   [ "$(grep -c "link: listening on" "$dir/sm.log")" -eq 2 ]; then
    ok "the SM listens once for the three components that share a port, once for the front"
else
    not_ok "the SM listens on the front's and the components' ports" "$dir/sm.log"
fi

printf '%s\n' "alice@localhost alice-secret" "bob@localhost bob-secret" > "$dir/users.txt"
"$build/bin/jabshardctl" -c "$dir/sm.xml" import "$dir/users.txt" > "$dir/ctl.log" 2>&1 ||
    give_up "jabshardctl creates the accounts" "$dir/ctl.log"

export XMPP_HOST=127.0.0.1 XMPP_PORT="$c2s_port" XMPP_TLS_PORT="$tls_port"
export XMPP_CAFILE="$dir/server.pem" XMPP_PASSWORDS="alice=alice-secret bob=bob-secret"
export COMP_PORT="$comp_port" COMP_DOMAIN=comp.localhost COMP_SECRET="$comp_secret"
export DOWN_DOMAIN=down.localhost BIBOUMI_DOMAIN=irc.localhost

# ---- slixmpp's ComponentXMPP ------------------------------------------------------------------
timeout 55 "$py" "$here/components.py" slixmpp > "$dir/slixmpp.out" 2>&1
collect "$dir/slixmpp.out" "components slixmpp: "
if grep -q "link comp.localhost .*handshake refused: wrong secret" "$dir/sm.log" &&
   grep -q "unknown service id 'nobody.localhost'" "$dir/sm.log" &&
   grep -q "outside the component's domain" "$dir/sm.log"; then
    ok "the SM logs the refused handshakes and the stanzas from outside the component's domain"
else
    not_ok "the SM logs the refused handshakes and the forged stanzas" "$dir/sm.log"
fi

# ---- biboumi ------------------------------------------------------------------------------------
# It needs no IRC server to connect as a component and answer disco; its identd is turned off
# (port 0) so that nothing listens on port 113, its database stays in $dir, and it logs to its
# standard output.
if ! command -v biboumi > /dev/null 2>&1; then
    not_ok "biboumi is installed (Debian package biboumi, from tools/deps.sh): without it, the" \
           "check that a real gateway works as a component here was not run"
else
    cat > "$dir/biboumi.cfg" <<EOF
hostname=irc.localhost
password=$irc_secret
xmpp_server_ip=127.0.0.1
port=$comp_port
admin=
identd_port=0
db_name=$dir/biboumi.sqlite
log_file=
log_level=1
policy_directory=$dir
realname_customization=true
realname_from_jid=false
ca_file=
outgoing_bind=
EOF
    cluster_start "$dir/biboumi.out" biboumi "$dir/biboumi.cfg"
    biboumi_pid=$started
    if wait_for "$dir/sm.log" "link irc.localhost (" "$biboumi_pid" 10 &&
       grep -q "link irc.localhost (.*): handshake accepted" "$dir/sm.log"; then
        ok "biboumi connects to the SM as component irc.localhost (handshake accepted)"
        timeout 30 "$py" "$here/components.py" biboumi > "$dir/biboumi-py.out" 2>&1
        collect "$dir/biboumi-py.out" "components biboumi: "
        cluster_stop "$biboumi_pid"
        status=$?
        if [ "$status" -eq 0 ] && wait_for "$dir/sm.log" "component 'irc.localhost' is down" \
                "$sm_pid" 5; then
            ok "biboumi stops on SIGTERM (status 0) and the SM sees the component go"
        else
            not_ok "biboumi stops on SIGTERM and the SM sees the component go (status $status)" \
                "$dir/biboumi.out"
        fi
    else
        # Say exactly why: biboumi's own words, and what the SM saw.
        not_ok "biboumi connects to the SM as component irc.localhost (it did not: its output" \
            "and the SM's lines about it below)" "$dir/biboumi.out"
        grep "irc.localhost" "$dir/sm.log" | sed 's/^/    sm: /'
    fi
fi

# ---- the SM and the front lived through all of it -----------------------------------------------
if alive "$sm_pid" && alive "$front_pid" && ! grep -q "SM link: lost" "$dir/front.log"; then
    ok "the SM and the front are still running, their link never dropped"
else
    not_ok "the SM and the front are still running, their link never dropped" "$dir/front.log"
fi
cluster_stop "$front_pid"
front_status=$?
cluster_stop "$sm_pid"
sm_status=$?
if [ "$front_status" -eq 0 ] && [ "$sm_status" -eq 0 ]; then
    ok "the front and the SM stop cleanly on SIGTERM (status 0)"
else
    not_ok "the front and the SM stop cleanly (front $front_status, SM $sm_status)" "$dir/sm.log"
fi
sanitizer_check "$dir/sm.log" "$dir/front.log"

summary
[ "$failed" -eq 0 ]
