"""tests/integration/test_front_limits.py — the front's per-address limits and the lines it logs for
operators and fail2ban, end to end with the SM, over real sockets from several loopback source
addresses (127.0.0.x). Three systems, one after the other:

1. the defaults, with <trusted> narrowed to 127.0.0.1 so that the other 127.0.0.x addresses are
   limited like any client on the Internet:
   - a reconnect storm (300 connections at once from 127.0.0.2, a NAT's users after a front died)
     is served in full;
   - an address far over the limit (1,500 connections as fast as they go, from 127.0.0.3) is
     served its conn_burst and conn_rate for the time it took, and then gets <policy-violation/>;
   - registration (XEP-0077): past register_per_conn account creations a connection gets
     <not-allowed/> (cancel), past register_burst an address gets <resource-constraint/> (wait);
     a trusted address creates more than register_burst;
   - failed logins (wrong password, unknown user, a user name forging an address) and a good one;
   - the log: one line per event with the client's address, the per-address line budget, and
     etc/fail2ban/filter.d/jabshard.conf run by fail2ban-regex over this very log: the right
     addresses, the right counts, nothing for the successful login or the storm;
2. the defaults with no <trusted> element: loopback is trusted, 1,000 connections at once pass;
3. small limits with <trusted/> empty: conn_rate per conn_interval with conn_burst, and the
   per-address auth delay (ip_auth_failures), counting wrong passwords, never connections.

Usage: test_front_limits.py BUILD_DIR. Prints ok/not ok lines and
"front_limits: N passed, N failed".
"""
import collections
import os
import re
import resource
import shutil
import subprocess
import time

from jabtest.raw import Raw
from jabtest.suite import main
from jabtest.system import ROOT, System
from jabtest.xmpp import NS_STANZAS, local

FILTER = os.path.join(ROOT, "etc", "fail2ban", "filter.d", "jabshard.conf")
AUTH_DELAY_MS = 1500
CONN_BURST, CONN_RATE = 500, 5          # the defaults under test
REGISTER_PER_CONN, REGISTER_BURST = 5, 10
LOG_BURST = 20                          # shard/front_log.h FRONT_LOG_BURST


def stream(src, port, tls=False):
    """A client stream from source address src, plain or direct TLS, its header sent."""
    return Raw.connect(port, src=src, tls=tls, wait=10, header=True)


def offered(st):
    """Whether the server offered its features (a refused stream ends without them)."""
    return st.features() is not None


def outcome(el):
    """'result', or the defined condition of a stanza error as 'type/condition'."""
    if el is None:
        return "no answer"
    if el.get("type") == "result":
        return "result"
    err = el.find("{jabber:client}error")
    if err is None:
        return el.get("type") or "?"
    conds = [c.tag.split("}")[1] for c in err if c.tag.startswith("{%s}" % NS_STANZAS)]
    return "%s/%s" % (err.get("type"), conds[0] if conds else "?")


def register_on_one_connection(src, port, names):
    st = stream(src, port, tls=True)
    offered(st)
    results = []
    for name in names:
        st.send(f"<iq type='set' id='{name}'><query xmlns='jabber:iq:register'>"
                f"<username>{name}</username><password>pw-{name}</password></query></iq>")
        results.append(outcome(st.next(lambda el: el.get("id") == name)))
    st.close()
    return results


def plain_auth(st, user, password):
    """SASL PLAIN on st: "success" or "failure" ("none" if neither came), and the milliseconds
    the answer took."""
    el, took = st.sasl_plain(user, password)
    return (local(el.tag) if el is not None else "none"), took * 1000


# ---- 1. the defaults, 127.0.0.1 alone trusted ---------------------------------------------------

def storm_and_attacker(r, system):
    t0 = time.monotonic()
    storm = [stream("127.0.0.2", system.port) for _ in range(300)]
    served = sum(offered(st) for st in storm)
    elapsed = time.monotonic() - t0
    r.check(f"a reconnect storm of 300 connections from one address is served in full "
            f"({served} served in {elapsed:.2f} s)", served == 300)
    for st in storm:
        st.close()

    t0 = time.monotonic()
    kept, refused, bad = [], 0, []
    for _ in range(1500):
        st = stream("127.0.0.3", system.port)
        if offered(st):
            kept.append(st)
            continue
        refused += 1
        if b"<policy-violation" not in st.data:
            bad.append(st.data[-200:])
        st.close()
    elapsed = time.monotonic() - t0
    allowed = CONN_BURST + CONN_RATE * elapsed + 2
    r.check(f"an address far over the limit is held to conn_burst + conn_rate "
            f"({len(kept)} of 1500 served in {elapsed:.2f} s, at most {allowed:.0f} allowed)",
            CONN_BURST <= len(kept) <= allowed, f"{len(kept)} served")
    r.check(f"...and each refused connection gets <policy-violation/> ({refused} refused)",
            refused > 0 and not bad, repr(bad[:2]))
    for st in kept:
        st.close()
    return elapsed


def registrations(r, system):
    port = system.tls_port
    names = [f"r{i}" for i in range(1, 14)]
    first = register_on_one_connection("127.0.0.4", port, names[:REGISTER_PER_CONN + 1])
    r.check("registration: a connection creates register_per_conn accounts, then gets "
            "<not-allowed/> (cancel)",
            first == ["result"] * REGISTER_PER_CONN + ["cancel/not-allowed"], repr(first))
    second = register_on_one_connection("127.0.0.4", port, names[6:12])
    r.check("registration: a new connection from the address gets another register_per_conn",
            second == ["result"] * REGISTER_PER_CONN + ["cancel/not-allowed"], repr(second))
    third = register_on_one_connection("127.0.0.4", port, names[12:13])
    r.check("registration: past register_burst the address gets <resource-constraint/> (wait)",
            third == ["wait/resource-constraint"], repr(third))
    trusted = []
    for k in range(3):
        batch = [f"t{k}{i}" for i in range(REGISTER_PER_CONN)]
        trusted += register_on_one_connection("127.0.0.1", port, batch)
    r.check(f"registration: a trusted address creates more than register_burst accounts "
            f"({trusted.count('result')})", trusted == ["result"] * 3 * REGISTER_PER_CONN,
            repr(trusted))
    capped = register_on_one_connection("127.0.0.1", port, [f"c{i}" for i in range(6)])
    r.check("registration: ...but register_per_conn applies to it",
            capped[-1] == "cancel/not-allowed", repr(capped))


FORGED = "x addr=10.9.9.9 port=1 mech=PLAIN reason=unknown-user user="


def logins(r, system):
    st = stream("127.0.0.5", system.tls_port, tls=True)
    offered(st)
    results = [plain_auth(st, "u1", "wrong")[0] for _ in range(3)]
    st.close()
    st = stream("127.0.0.5", system.tls_port, tls=True)
    offered(st)
    results.append(plain_auth(st, FORGED, "pw")[0])
    st.close()
    r.check("failed logins are refused", results == ["failure"] * 4, repr(results))
    st = stream("127.0.0.6", system.tls_port, tls=True)
    offered(st)
    ok = plain_auth(st, "u0", "pw0")[0]
    st.close()
    r.check("a good login succeeds", ok == "success", ok)


def check_log(r, system, attack_seconds):
    log = system.front().log_path
    text = system.front().text()

    def count(pattern):
        return len(re.findall(pattern, text, re.M))
    conn_lines = count(r"c2s conn-refused addr=127\.0\.0\.3 port=\d+ limit=conn_rate$")
    budget = LOG_BURST + attack_seconds + 2
    r.check(f"log: refused connections are logged with the address and the limit, within the "
            f"per-address line budget ({conn_lines} lines, at most {budget:.0f})",
            1 <= conn_lines <= budget)
    r.check("log: each refused registration, with its limit",
            count(r"c2s register-refused addr=127\.0\.0\.4 port=\d+ limit=register_per_conn$")
            == 2 and
            count(r"c2s register-refused addr=127\.0\.0\.4 port=\d+ limit=register_burst$") == 1
            and count(r"c2s register-refused addr=127\.0\.0\.1 port=\d+ "
                      r"limit=register_per_conn$") == 1)
    r.check("log: each failed login, with address, mechanism, reason and user name",
            count(r'c2s auth-failed addr=127\.0\.0\.5 port=\d+ mech=PLAIN '
                  r'reason=wrong-password user="u1"$') == 3 and
            count(r'c2s auth-failed addr=127\.0\.0\.5 port=\d+ mech=PLAIN reason=unknown-user '
                  r'user="' + re.escape(FORGED) + '"$') == 1)
    r.check("log: nothing for the successful login or the storm",
            "addr=127.0.0.6 " not in text and "addr=127.0.0.2 " not in text)

    if not shutil.which("fail2ban-regex"):
        r.not_ok("fail2ban-regex is installed (fail2ban: tools/deps.sh)")
        return
    f2b = subprocess.run(["fail2ban-regex", "-o", "ip", log, FILTER],
                         capture_output=True, text=True, timeout=120)
    found = collections.Counter(line.strip() for line in f2b.stdout.splitlines() if line.strip())
    want = {"127.0.0.3": conn_lines, "127.0.0.4": 3, "127.0.0.5": 4, "127.0.0.1": 1}
    r.check(f"fail2ban: the filter finds the failed logins and the limit refusals, per address "
            f"({dict(found)})", f2b.returncode == 0 and dict(found) == want,
            f"want {want}; {f2b.stderr[-300:]}")
    r.check("fail2ban: a user name cannot make it read another address",
            "10.9.9.9" not in found)


def defaults_body(r, system):
    if not system.start_pair(r, 2, "<trusted><net>127.0.0.1/32</net></trusted>", register=True):
        return
    attack_seconds = storm_and_attacker(r, system)
    registrations(r, system)
    logins(r, system)
    time.sleep(0.2)   # the last lines reach the log
    check_log(r, system, attack_seconds)


# ---- 2. the defaults, loopback trusted ----------------------------------------------------------

def loopback_body(r, system):
    if not system.start_pair(r, 1, ""):
        return
    t0 = time.monotonic()
    streams = [stream("127.0.0.1", system.port) for _ in range(1000)]
    served = sum(offered(st) for st in streams)
    elapsed = time.monotonic() - t0
    r.check(f"loopback is trusted by default: 1,000 connections at once are served "
            f"({served} in {elapsed:.2f} s)", served == 1000)
    for st in streams:
        st.close()


# ---- 3. small limits, nothing trusted -----------------------------------------------------------

def small_limits_body(r, system):
    limits = ("<trusted/><conn_rate>4</conn_rate><conn_interval>30</conn_interval>"
              "<conn_burst>4</conn_burst><max_bps>0</max_bps><auth_failures>10</auth_failures>"
              "<ip_auth_failures>2</ip_auth_failures><ip_auth_interval>60</ip_auth_interval>"
              f"<auth_delay>{AUTH_DELAY_MS}</auth_delay>")
    if not system.start_pair(r, 2, limits):
        return
    # 4 connections at once pass (one was start_pair's port probe, from 127.0.0.1), the next is
    # refused: 4 a 30 s are regained one each 7.5 s.
    first = [stream("127.0.0.1", system.port) for _ in range(3)]
    r.check("conn_burst: connections within the burst are served",
            all(offered(st) for st in first))
    extra = stream("127.0.0.1", system.port)
    extra.until(lambda st: False)
    r.check("conn_rate: the next one gets <policy-violation/> and is closed",
            b"<policy-violation" in extra.data and
            extra.data.rstrip().endswith(b"</stream:stream>"), repr(extra.data[-200:]))
    first[0].send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    r.check("conn_rate: the connections already open are untouched",
            first[0].until(lambda st: b"<proceed" in st.data), repr(first[0].data[-200:]))
    for st in first + [extra]:
        st.close()

    # Connections are not failures: more logins on new connections from one address than
    # ip_auth_failures (a NAT shared by many users) are all answered at once.
    logins_ = []
    for _ in range(3):
        st = stream("127.0.0.3", system.tls_port, tls=True)
        offered(st)
        logins_.append(plain_auth(st, "u0", "pw0"))
        st.close()
    r.check("ip_auth_failures: successful logins on new connections from one address are "
            "not delayed (%s ms)" % ", ".join("%.0f" % x[1] for x in logins_),
            all(x[0] == "success" and x[1] < AUTH_DELAY_MS for x in logins_), repr(logins_))
    st = stream("127.0.0.2", system.tls_port, tls=True)
    offered(st)
    results = [plain_auth(st, "u0", "wrong") for _ in range(3)]
    r.check("ip_auth_failures: failures are answered",
            all(x[0] == "failure" for x in results), repr(results))
    r.check(f"ip_auth_failures: the third failure's answer waited {AUTH_DELAY_MS} ms "
            f"({results[2][1]:.0f} ms)", results[2][1] >= AUTH_DELAY_MS)
    outcome_, ms = plain_auth(st, "u0", "pw0")
    r.check(f"ip_auth_failures: a success from that address waits too ({ms:.0f} ms)",
            outcome_ == "success" and ms >= AUTH_DELAY_MS)
    st.close()


def suite(report, build):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    for name, body in (("defaults", defaults_body), ("loopback", loopback_body),
                       ("small", small_limits_body)):
        with System(build, "front_limits-%s" % name, report) as system:
            try:
                body(report, system)
            finally:
                system.stop_pair(report)


if __name__ == "__main__":
    main("front_limits", suite)
