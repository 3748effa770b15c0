#!/usr/bin/python3
"""tests/integration/front_limits.py — the front's per-address limits and the lines it logs for
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

Usage: front_limits.py BUILD_DIR. Prints ok/not ok lines and "front_limits: N passed, N failed".
"""
import collections
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import front_load as fl  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FILTER = os.path.join(ROOT, "etc", "fail2ban", "filter.d", "jabshard.conf")
AUTH_DELAY_MS = 1500
CONN_BURST, CONN_RATE = 500, 5          # the defaults under test
REGISTER_PER_CONN, REGISTER_BURST = 5, 10
LOG_BURST = 20                          # shard/front_log.h FRONT_LOG_BURST
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


class Stream:
    """A client stream from a chosen source address, plain or direct TLS, whose top-level
    elements are parsed as they arrive."""

    def __init__(self, src, port, tls=False, timeout=10):
        raw = socket.socket()
        raw.bind((src, 0))
        raw.settimeout(timeout)
        raw.connect(("127.0.0.1", port))
        self.s = fl.tls_context().wrap_socket(raw) if tls else raw
        self.raw = b""
        self.closed = False
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.elements = []
        try:
            self.s.sendall(fl.HEADER.encode())
        except OSError:
            pass   # refused at once: what the server said is still there to read

    def _read(self):
        try:
            chunk = self.s.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.raw += chunk
        try:
            self.parser.feed(chunk)
            for ev, el in self.parser.read_events():
                self.depth += 1 if ev == "start" else -1
                if ev == "end" and self.depth == 1:
                    self.elements.append(el)
        except ET.ParseError:
            pass
        return True

    def until(self, pred):
        """Reads until pred(stream) holds or the stream ends; returns whether it holds."""
        while not pred(self):
            if self.closed or not self._read():
                return pred(self)
        return True

    def features(self):
        """Whether the server offered its features (a refused stream ends without them)."""
        self.until(lambda st: b"</stream:features>" in st.raw or b"</stream:stream>" in st.raw)
        return b"</stream:features>" in self.raw

    def reply(self, iq_id):
        """The top-level element with this id, once it has arrived (None at end of stream)."""
        found = []

        def have(st):
            found[:] = [e for e in st.elements if e.get("id") == iq_id]
            return bool(found)
        self.until(have)
        return found[0] if found else None

    def send(self, text):
        self.s.sendall(text.encode())

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


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
    st = Stream(src, port, tls=True)
    st.features()
    results = []
    for name in names:
        st.send(f"<iq type='set' id='{name}'><query xmlns='jabber:iq:register'>"
                f"<username>{name}</username><password>pw-{name}</password></query></iq>")
        results.append(outcome(st.reply(name)))
    st.close()
    return results


def plain_auth(st, user, password):
    st.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            f"{fl.plain(user, password)}</auth>")
    t0 = time.monotonic()
    st.until(lambda s: any(e.tag.endswith("}success") or e.tag.endswith("}failure")
                           for e in s.elements))
    ms = (time.monotonic() - t0) * 1000
    done = [e for e in st.elements if e.tag.endswith("}success") or e.tag.endswith("}failure")]
    st.elements = [e for e in st.elements if e not in done]
    return (done[0].tag.split("}")[1] if done else "none"), ms


def subsystem(d, name, nusers, limits, register=False):
    """A system of its own in d/name; returns (ports, procs) or (None, procs)."""
    sub = os.path.join(d, name)
    os.mkdir(sub)
    procs = []
    return fl.start_system(sub, nusers, limits, procs, register), procs


# ---- 1. the defaults, 127.0.0.1 alone trusted ---------------------------------------------------

def storm_and_attacker(ports):
    t0 = time.monotonic()
    storm = [Stream("127.0.0.2", ports["c2s"]) for _ in range(300)]
    served = sum(st.features() for st in storm)
    elapsed = time.monotonic() - t0
    fl.check(f"a reconnect storm of 300 connections from one address is served in full "
             f"({served} served in {elapsed:.2f} s)", served == 300)
    for st in storm:
        st.close()

    t0 = time.monotonic()
    kept, refused, bad = [], 0, []
    for _ in range(1500):
        st = Stream("127.0.0.3", ports["c2s"])
        if st.features():
            kept.append(st)
            continue
        refused += 1
        if b"<policy-violation" not in st.raw:
            bad.append(st.raw[-200:])
        st.close()
    elapsed = time.monotonic() - t0
    allowed = CONN_BURST + CONN_RATE * elapsed + 2
    fl.check(f"an address far over the limit is held to conn_burst + conn_rate "
             f"({len(kept)} of 1500 served in {elapsed:.2f} s, at most {allowed:.0f} allowed)",
             CONN_BURST <= len(kept) <= allowed, f"{len(kept)} served")
    fl.check(f"...and each refused connection gets <policy-violation/> ({refused} refused)",
             refused > 0 and not bad, repr(bad[:2]))
    for st in kept:
        st.close()
    return elapsed


def registrations(ports):
    port = ports["ssl"]
    names = [f"r{i}" for i in range(1, 14)]
    first = register_on_one_connection("127.0.0.4", port, names[:REGISTER_PER_CONN + 1])
    fl.check("registration: a connection creates register_per_conn accounts, then gets "
             "<not-allowed/> (cancel)",
             first == ["result"] * REGISTER_PER_CONN + ["cancel/not-allowed"], repr(first))
    second = register_on_one_connection("127.0.0.4", port, names[6:12])
    fl.check("registration: a new connection from the address gets another register_per_conn",
             second == ["result"] * REGISTER_PER_CONN + ["cancel/not-allowed"], repr(second))
    third = register_on_one_connection("127.0.0.4", port, names[12:13])
    fl.check("registration: past register_burst the address gets <resource-constraint/> (wait)",
             third == ["wait/resource-constraint"], repr(third))
    trusted = []
    for k in range(3):
        batch = [f"t{k}{i}" for i in range(REGISTER_PER_CONN)]
        trusted += register_on_one_connection("127.0.0.1", port, batch)
    fl.check(f"registration: a trusted address creates more than register_burst accounts "
             f"({trusted.count('result')})", trusted == ["result"] * 3 * REGISTER_PER_CONN,
             repr(trusted))
    capped = register_on_one_connection("127.0.0.1", port, [f"c{i}" for i in range(6)])
    fl.check("registration: ...but register_per_conn applies to it",
             capped[-1] == "cancel/not-allowed", repr(capped))


FORGED = "x addr=10.9.9.9 port=1 mech=PLAIN reason=unknown-user user="


def logins(ports):
    st = Stream("127.0.0.5", ports["ssl"], tls=True)
    st.features()
    results = [plain_auth(st, "u1", "wrong")[0] for _ in range(3)]
    st.close()
    st = Stream("127.0.0.5", ports["ssl"], tls=True)
    st.features()
    results.append(plain_auth(st, FORGED, "pw")[0])
    st.close()
    fl.check("failed logins are refused", results == ["failure"] * 4, repr(results))
    st = Stream("127.0.0.6", ports["ssl"], tls=True)
    st.features()
    ok = plain_auth(st, "u0", "pw0")[0]
    st.close()
    fl.check("a good login succeeds", ok == "success", ok)


def check_log(d, attack_seconds):
    text = open(os.path.join(d, "c2s.log"), errors="replace").read()

    def count(pattern):
        return len(re.findall(pattern, text, re.M))
    conn_lines = count(r"c2s conn-refused addr=127\.0\.0\.3 port=\d+ limit=conn_rate$")
    budget = LOG_BURST + attack_seconds + 2
    fl.check(f"log: refused connections are logged with the address and the limit, within the "
             f"per-address line budget ({conn_lines} lines, at most {budget:.0f})",
             1 <= conn_lines <= budget)
    fl.check("log: each refused registration, with its limit",
             count(r"c2s register-refused addr=127\.0\.0\.4 port=\d+ limit=register_per_conn$")
             == 2 and
             count(r"c2s register-refused addr=127\.0\.0\.4 port=\d+ limit=register_burst$") == 1
             and count(r"c2s register-refused addr=127\.0\.0\.1 port=\d+ "
                       r"limit=register_per_conn$") == 1)
    fl.check("log: each failed login, with address, mechanism, reason and user name",
             count(r'c2s auth-failed addr=127\.0\.0\.5 port=\d+ mech=PLAIN '
                   r'reason=wrong-password user="u1"$') == 3 and
             count(r'c2s auth-failed addr=127\.0\.0\.5 port=\d+ mech=PLAIN reason=unknown-user '
                   r'user="' + re.escape(FORGED) + '"$') == 1)
    fl.check("log: nothing for the successful login or the storm",
             "addr=127.0.0.6 " not in text and "addr=127.0.0.2 " not in text)

    if not shutil.which("fail2ban-regex"):
        fl.check("fail2ban-regex is installed (fail2ban: tools/deps.sh)", False)
        return
    r = subprocess.run(["fail2ban-regex", "-o", "ip", os.path.join(d, "c2s.log"), FILTER],
                       capture_output=True, text=True, timeout=120)
    found = collections.Counter(line.strip() for line in r.stdout.splitlines() if line.strip())
    want = {"127.0.0.3": conn_lines, "127.0.0.4": 3, "127.0.0.5": 4, "127.0.0.1": 1}
    fl.check(f"fail2ban: the filter finds the failed logins and the limit refusals, per address "
             f"({dict(found)})", r.returncode == 0 and dict(found) == want,
             f"want {want}; {r.stderr[-300:]}")
    fl.check("fail2ban: a user name cannot make it read another address",
             "10.9.9.9" not in found)


def defaults_body(d):
    ports, procs = subsystem(d, "defaults", 2, "<trusted><net>127.0.0.1/32</net></trusted>",
                             register=True)
    try:
        if not ports:
            return
        attack_seconds = storm_and_attacker(ports)
        registrations(ports)
        logins(ports)
        time.sleep(0.2)   # the last lines reach the log
        check_log(os.path.join(d, "defaults"), attack_seconds)
    finally:
        fl.stop_system(procs)


# ---- 2. the defaults, loopback trusted ----------------------------------------------------------

def loopback_body(d):
    ports, procs = subsystem(d, "loopback", 1, "")
    try:
        if not ports:
            return
        t0 = time.monotonic()
        streams = [Stream("127.0.0.1", ports["c2s"]) for _ in range(1000)]
        served = sum(st.features() for st in streams)
        elapsed = time.monotonic() - t0
        fl.check(f"loopback is trusted by default: 1,000 connections at once are served "
                 f"({served} in {elapsed:.2f} s)", served == 1000)
        for st in streams:
            st.close()
    finally:
        fl.stop_system(procs)


# ---- 3. small limits, nothing trusted -----------------------------------------------------------

def small_limits_body(d):
    limits = ("<trusted/><conn_rate>4</conn_rate><conn_interval>30</conn_interval>"
              "<conn_burst>4</conn_burst><max_bps>0</max_bps><auth_failures>10</auth_failures>"
              "<ip_auth_failures>2</ip_auth_failures><ip_auth_interval>60</ip_auth_interval>"
              f"<auth_delay>{AUTH_DELAY_MS}</auth_delay>")
    ports, procs = subsystem(d, "small", 2, limits)
    try:
        if not ports:
            return
        # 4 connections at once pass (one was start_system's port probe, from 127.0.0.1), the
        # next is refused: 4 a 30 s are regained one each 7.5 s.
        first = [Stream("127.0.0.1", ports["c2s"]) for _ in range(3)]
        fl.check("conn_burst: connections within the burst are served",
                 all(st.features() for st in first))
        extra = Stream("127.0.0.1", ports["c2s"])
        extra.until(lambda st: False)
        fl.check("conn_rate: the next one gets <policy-violation/> and is closed",
                 b"<policy-violation" in extra.raw and
                 extra.raw.rstrip().endswith(b"</stream:stream>"), repr(extra.raw[-200:]))
        first[0].send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        fl.check("conn_rate: the connections already open are untouched",
                 first[0].until(lambda st: b"<proceed" in st.raw), repr(first[0].raw[-200:]))
        for st in first + [extra]:
            st.close()

        # Connections are not failures: more logins on new connections from one address than
        # ip_auth_failures (a NAT shared by many users) are all answered at once.
        logins = []
        for _ in range(3):
            st = Stream("127.0.0.3", ports["ssl"], tls=True)
            st.features()
            logins.append(plain_auth(st, "u0", "pw0"))
            st.close()
        fl.check("ip_auth_failures: successful logins on new connections from one address are "
                 "not delayed (%s ms)" % ", ".join("%.0f" % r[1] for r in logins),
                 all(r[0] == "success" and r[1] < AUTH_DELAY_MS for r in logins), repr(logins))
        st = Stream("127.0.0.2", ports["ssl"], tls=True)
        st.features()
        results = [plain_auth(st, "u0", "wrong") for _ in range(3)]
        fl.check("ip_auth_failures: failures are answered",
                 all(r[0] == "failure" for r in results), repr(results))
        fl.check(f"ip_auth_failures: the third failure's answer waited {AUTH_DELAY_MS} ms "
                 f"({results[2][1]:.0f} ms)", results[2][1] >= AUTH_DELAY_MS)
        outcome_, ms = plain_auth(st, "u0", "pw0")
        fl.check(f"ip_auth_failures: a success from that address waits too ({ms:.0f} ms)",
                 outcome_ == "success" and ms >= AUTH_DELAY_MS)
        st.close()
    finally:
        fl.stop_system(procs)


def body(d, procs):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    defaults_body(d)
    loopback_body(d)
    small_limits_body(d)


if __name__ == "__main__":
    sys.exit(fl.run("front_limits", body))
