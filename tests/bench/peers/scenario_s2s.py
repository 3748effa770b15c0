#!/usr/bin/python3
# tests/bench/peers/scenario_s2s.py: federation in the peer benchmark. Messages between users of
# jabshard (jabshard.test: its SM, one front and jabshard-s2s on 127.0.0.2) and users of a peer
# (Prosody, prosody.test on 127.0.0.3, then ejabberd, ejabberd.test on 127.0.0.4), one peer at a
# time, over the one s2s connection pair the two servers open on loopback, at stepped rates (the
# load generator's federation mode, loadgen --peer-server/--peer-domain: its senders log into one
# server, its receivers into the other, every message crosses), both directions: out (jabshard's
# users to the peer's) and in (the peer's to jabshard's). Per round: the rate achieved, p50/p99
# latency (send time in the body to arrival at the receiving client), loss, and the CPU time
# (utime + stime, /proc/PID/stat) over the round of jabshard-s2s, the SM and the front, and of
# the peer's processes (Prosody's one Lua process; ejabberd's beam.smp and its helpers), per
# 1,000 delivered messages. The ratio reported: jabshard's three programs against the peer, for
# the same messages (each server handles one end: c2s in, s2s out; or s2s in, c2s out). First,
# as a baseline, the same traffic between jabshard's own users (direction "local": c2s to c2s, no
# s2s), so that what federation adds to jabshard's SM and front can be told apart.
#
# The world is jabtest.federation's (tests/integration/jabtest/): a network namespace of its own
# (unshare: root), a real unbound serving the SRV records, certificates from a test CA; jabshard
# is jabtest.s2s.Jabshard, as test_federation.py runs it. Benchmark settings, the same idea as
# the other scenarios' (no rate shapers anywhere): the front's per-client <max_bps> off, and
# jabshard-s2s' per-connection read limit (<max_bps>, 1 MiB/s by default, about 6,000 of these
# messages a second) raised to 1 GiB/s; Prosody as jabtest.federation configures it has no
# mod_limits (no s2s or c2s shaping), ejabberd's listeners no shaper (none by default); logs at
# info; no message archiving on any of them (jabshard's SM without mam, as the peer benchmark's
# "archiving off", the peers as jabtest.federation configures them). Accounts user1..user<2N>
# on all three, written straight into their storage; before the measured rounds of each
# direction one unmeasured round opens the s2s stream it uses. A failed rate is tried once more.
#
# Runs on its own:
#   /usr/bin/python3 tests/bench/peers/scenario_s2s.py [--build build/default] [--out DIR] ...
# writing DIR/results.json (one line per peer and direction) and DIR/results.md; or from
# bench_peers.py (make bench-peers; --s2s-only for this alone, --no-s2s to leave it out), which
# runs it as a child (it enters its own namespace) and adds its table to results.md.
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import peerlib  # noqa: E402
from loadgen_run import parse_line  # noqa: E402
from scenario_sm import fmt  # noqa: E402
from server_jabshard import modules_xml  # noqa: E402

LABEL = "s2s"
PEERS = ("prosody", "ejabberd")   # also their service users
# What bench_peers installs for it when missing: the peers, Prosody's resolver, the DNS server.
PACKAGES = ["prosody", "lua-unbound", "ejabberd", "erlang-p1-sqlite3", "unbound"]
DEFAULT_RATES = "200,500,1000,2000,4000,8000,12000,16000,24000"
P99_MS = 50.0
# Unmeasured, before each direction's rounds: opens the s2s stream (DNS, TLS, authentication).
WARMUP_RATE, WARMUP_SECONDS = 20, 2
# jabshard's programs, in the order of the tables.
PROGRAMS = ("s2s", "sm", "front")
BIG_BPS = 1 << 30


# ---- in make bench-peers ---------------------------------------------------------------------

def add_options(p, env):
    p.add_argument("--s2s-only", action="store_true",
                   help="only the federation scenario (jabshard against Prosody and ejabberd over "
                   "s2s, in a network namespace of its own)")
    p.add_argument("--no-s2s", action="store_true", help="leave the federation scenario out")
    p.add_argument("--s2s-rates", default=env("BENCH_PEERS_S2S_RATES", DEFAULT_RATES),
                   help="offered federated message rates, ascending")
    p.add_argument("--s2s-users", type=int, default=int(env("BENCH_PEERS_S2S_USERS", "50")),
                   help="senders (and as many receivers) per direction")
    p.add_argument("--s2s-peers", default=env("BENCH_PEERS_S2S_PEERS", ",".join(PEERS)))
    p.add_argument("--s2s-round-seconds", type=int,
                   default=int(env("BENCH_PEERS_S2S_ROUND_SECONDS", "5")))


def check_options(p, o):
    if o.s2s_only and o.no_s2s:
        p.error("--s2s-only with --no-s2s")
    for peer in o.s2s_peers.split(","):
        if peer and peer not in PEERS:
            p.error("unknown --s2s-peers entry %r (known: %s)" % (peer, ", ".join(PEERS)))


def selected(o):
    """In bench_peers: the other --X-only options leave it out."""
    others = o.sm_only or o.pep_only or o.mam_only or o.muc_only or o.web_only or o.hold_only
    return o.s2s_only or not (o.no_s2s or others)


def run(o, record):
    """bench_peers: this script as a child, results into OUT/s2s/, each passed to RECORD."""
    if not selected(o):
        return
    out = os.path.join(o.out, "s2s")
    argv = ["/usr/bin/python3", os.path.abspath(__file__), "--build", o.jabshard_build,
            "--loadgen", o.loadgen_bin, "--out", out, "--rates", o.s2s_rates,
            "--users", str(o.s2s_users), "--peers", o.s2s_peers,
            "--round-seconds", str(o.s2s_round_seconds), "--p99-ms", str(o.p99_ms)]
    peerlib.log("federation: " + " ".join(argv))
    status = subprocess.call(argv)
    rows = load(os.path.join(out, "results.json"))
    for r in rows:
        record(r)
    if status != 0 or not rows:
        record({"label": LABEL, "peer": "-", "direction": "-",
                "failed": "scenario_s2s.py exited with status %d (log above)" % status})


# ---- figures ---------------------------------------------------------------------------------

def per_1000(seconds, delivered):
    return seconds / delivered * 1000 if seconds is not None and delivered else None


def passed(m, p99_ms):
    """A round with p99 below the bound and nothing lost or bounced."""
    return (m.get("p99_ms", 1e9) < p99_ms and not m.get("lost") and not m.get("errored")
            and bool(m.get("delivered")))


def best(rounds, p99_ms):
    """The highest offered rate of a round that passed."""
    ok = [m["offered"] for m in rounds if passed(m, p99_ms)]
    return max(ok) if ok else None


def report_lines(results, p99_ms=P99_MS):
    rows = [r for r in results if r.get("label") == LABEL]
    if not rows:
        return []
    out = ["", "Federation (scenario_s2s.py): messages over one s2s connection pair on loopback, "
           "jabshard's users to a peer's (out) and back (in); CPU seconds per 1,000 delivered "
           "messages over each round; ratio: jabshard's three programs / the peer:", "",
           "| peer | direction | offered (msg/s) | achieved | p50 (ms) | p99 (ms) | lost "
           "| jabshard s2s | SM | front | jabshard total | peer | ratio |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("failed") and not r.get("rounds"):
            out.append("| %s | %s | failed: %s |||||||||||" % (
                r.get("peer"), r.get("direction"), r["failed"].replace("|", "/")))
            continue
        for m in r.get("rounds") or []:
            c = m.get("cpu_per_1000") or {}
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["peer"], r["direction"], fmt(m.get("offered")), fmt(m.get("rate")),
                fmt(m.get("p50_ms"), 2), fmt(m.get("p99_ms"), 1), fmt(m.get("lost")),
                fmt(c.get("s2s"), 3), fmt(c.get("sm"), 3), fmt(c.get("front"), 3),
                fmt(c.get("jabshard"), 3), fmt(c.get("peer"), 3), fmt(m.get("ratio"), 2)))
    out += ["", "Highest offered rate with p99 < %g ms and nothing lost (msg/s), and the CPU ratio "
            "there:" % p99_ms, "", "| peer | version | direction | best rate | jabshard CPU s "
            "/1000 msg | peer CPU s /1000 msg | ratio | notes |",
            "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        m = next((m for m in r.get("rounds") or [] if m["offered"] == r.get("best_rate")), {})
        c = m.get("cpu_per_1000") or {}
        notes = [r.get("failed") or r.get("stopped") or ""] + [
            "first try of %s msg/s failed (p99 %s ms), the second %s" % (
                fmt(f["offered"]), fmt(f.get("p99_ms"), 1),
                "passed" if passed(next((x for x in r["rounds"] if x["offered"] == f["offered"]),
                                        {}), p99_ms) else "too")
            for f in r.get("first_tries") or []]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r.get("peer"), r.get("version", "-"), r.get("direction"), fmt(r.get("best_rate")),
            fmt(c.get("jabshard"), 3), fmt(c.get("peer"), 3), fmt(m.get("ratio"), 2),
            "; ".join(n for n in notes if n).replace("|", "/")))
    return out


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- one direction ---------------------------------------------------------------------------

def loadgen_argv(o, sender, receiver, rates, round_s, stop):
    """sender, receiver: (address, domain). Users 1..N log into sender, N+1..2N into receiver."""
    argv = [o.loadgen, "--server", "%s:5222" % sender[0], "--domain", sender[1],
            "--peer-server", "%s:5222" % receiver[0], "--peer-domain", receiver[1],
            "--users", str(2 * o.users), "--tls", "starttls", "--mech", "SCRAM-SHA-1",
            "--rates", ",".join(str(r) for r in rates), "--round-seconds", str(round_s),
            "--drain-seconds", "3", "--keepalive", "0", "--timeout", "20"]
    return argv + (["--stop-p99-ms", str(o.p99_ms)] if stop else [])


def drive(argv, logpath, usages):
    """Runs loadgen; returns (its parsed lines, the round lines each with "cpu_s": per name in
    USAGES, the CPU seconds from the previous round line, or from the login line, to it)."""
    lines, rounds = {}, []
    with open(logpath, "a") as log:
        log.write("# " + " ".join(argv) + "\n")
        log.flush()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
        usages["loadgen"] = peerlib.Usage([p.pid])
        mark = {k: u.sample() for k, u in usages.items()}
        for line in p.stdout:
            log.write(line)
            log.flush()
            kind, f = parse_line(line)
            now = {k: u.sample() for k, u in usages.items()}
            if kind == "round":
                f["cpu_s"] = {k: now[k] - mark[k] for k in usages}
                rounds.append(f)
            if kind in ("login", "round"):
                mark = now
            if kind:
                lines[kind] = f
        status = p.wait()
    del usages["loadgen"]
    lines["status"] = status
    return lines, rounds


def direction(o, name, peer, sender, receiver, usages, logpath):
    """One direction's warm-up and measured rounds: a results row. sender, receiver: (address,
    domain); peer: the peer's name, or None for the local baseline (jabshard to itself)."""
    row = {"label": LABEL, "peer": peer or "none (local)", "direction": name,
           "version": peerlib.package_version(peer) if peer else "-", "users": o.users,
           "round_seconds": o.round_seconds}
    _, wrounds = drive(loadgen_argv(o, sender, receiver, [WARMUP_RATE], WARMUP_SECONDS, False),
                          logpath, usages)
    w = wrounds[0] if wrounds else {}
    if not w or w.get("delivered", 0) < w.get("sent", 1):
        row["failed"] = "warm-up: %s of %s delivered (%s)" % (
            w.get("delivered"), w.get("sent"), logpath)
        return row
    lines, rounds = drive(loadgen_argv(o, sender, receiver, o.rates, o.round_seconds, True),
                          logpath, usages)
    row["first_tries"] = []
    while (rounds and not lines.get("status") and not passed(rounds[-1], o.p99_ms) and
           rounds[-1]["offered"] not in [m["offered"] for m in row["first_tries"]]):
        # One slow second of a shared machine fails a round: a failed rate is tried once more
        # (and the stepping goes on from there if it passes); the first try is kept apart.
        row["first_tries"].append(rounds.pop())
        finish_round(row["first_tries"][-1])
        again = [r for r in o.rates if r >= row["first_tries"][-1]["offered"]]
        lines, retry = drive(loadgen_argv(o, sender, receiver, again, o.round_seconds, True),
                             logpath, usages)
        rounds += retry
    for m in rounds:
        finish_round(m)
    row["rounds"] = rounds
    row["best_rate"] = best(rounds, o.p99_ms)
    last = rounds[-1] if rounds else {}
    if lines.get("status"):
        row["failed"] = "loadgen exited with status %s (%s)" % (lines["status"], logpath)
    elif last and not passed(last, o.p99_ms):
        row["stopped"] = "%s msg/s failed on both tries (p99 %s ms, %s of %s delivered)" % (
            fmt(last["offered"]), fmt(last.get("p99_ms"), 1), fmt(last.get("delivered")),
            fmt(last.get("sent")))
    return row


def finish_round(m):
    """CPU seconds of jabshard's programs summed, all per 1,000 delivered messages, the ratio."""
    cpu = dict(m.pop("cpu_s"))
    cpu["jabshard"] = sum(cpu[k] for k in PROGRAMS)   # s2s idles in the local baseline
    m["cpu_s"] = cpu
    m["cpu_per_1000"] = {k: per_1000(v, m.get("delivered")) for k, v in cpu.items()}
    c = m["cpu_per_1000"]
    m["ratio"] = c["jabshard"] / c["peer"] if c.get("jabshard") and c.get("peer") else None


# ---- the world -------------------------------------------------------------------------------

def bench(o, report):
    from jabtest import federation as fed
    from jabtest.s2s import Jabshard
    from jabtest.system import System

    creds = peerlib.credentials(2 * o.users, os.path.join(o.out, "credentials.tsv"))
    rows = []
    with fed.Federation("s2sbench") as world, System(o.build, "s2sbench", report) as system:
        if not system.ready(report):
            return rows
        world.dns.start(fed.standard_records())
        js = Jabshard(system, world, level="info", front_limits="<max_bps>0</max_bps>",
                      s2s_limits="<max_bps>%d</max_bps><bps_burst>%d</bps_burst>"
                      % (BIG_BPS, BIG_BPS), sm_extra=modules_xml(archiving=False))
        if not js.start(report, [("%s@%s" % (c.user, js.DOMAIN), c.password) for c in creds]):
            return rows
        js_side = (js.IP, js.DOMAIN)
        programs = {"s2s": js.s2s.pid, "sm": system.sm.pid, "front": system.front().pid}
        if o.local:
            # The baseline: the same traffic between jabshard's own users, no s2s.
            usages = {k: peerlib.Usage([pid]) for k, pid in programs.items()}
            rows.append(direction(o, "local", None, js_side, js_side, usages,
                                  os.path.join(o.out, "loadgen-local.log")))
            save(o, rows)
        for name in o.peers:
            peer = (world.prosody if name == "prosody" else world.ejabberd)(accounts=creds)
            t0 = time.monotonic()
            peer.start()
            peerlib.log("%s started in %.1f s" % (name, time.monotonic() - t0))
            usages = {k: peerlib.Usage([pid]) for k, pid in programs.items()}
            usages["peer"] = peerlib.Usage([peer.proc.pid])
            logpath = os.path.join(o.out, "loadgen-%s.log" % name)
            try:
                peer_side = (peer.ip, peer.domain)
                for d, sender, receiver in (("out", js_side, peer_side),
                                            ("in", peer_side, js_side)):
                    row = direction(o, d, name, sender, receiver, usages, logpath)
                    peerlib.log("%s %s: best %s msg/s %s" % (name, d, fmt(row.get("best_rate")),
                                                             row.get("failed") or ""))
                    rows.append(row)
                    save(o, rows)
            finally:
                peer.stop()
        for p in (js.s2s, system.front(), system.sm):
            if not p.alive():
                report.not_ok("%s still running after the benchmark" % p.argv[0])
        if os.environ.get("KEEP"):
            peerlib.log("jabshard logs kept in %s" % system.dir)
    return rows


def save(o, rows):
    with open(os.path.join(o.out, "results.json"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(o.out, "results.md"), "w") as f:
        f.write("\n".join(report_lines(rows, o.p99_ms)[1:] + ["", "Load average at the end: %s"
                                                                % os.getloadavg().__repr__()])
                + "\n")


def options(argv):
    p = argparse.ArgumentParser(description="jabshard federating with Prosody and ejabberd at "
                                "stepped message rates (docs/performance.md, Federation).")
    p.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    p.add_argument("--loadgen", default=None, help="(default: BUILD/bench/loadgen)")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "bench-s2s"))
    p.add_argument("--rates", default=DEFAULT_RATES)
    p.add_argument("--users", type=int, default=50, help="senders (and receivers) per direction")
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--round-seconds", type=int, default=5)
    p.add_argument("--p99-ms", type=float, default=P99_MS)
    p.add_argument("--no-local", dest="local", action="store_false",
                   help="leave out the baseline: the same traffic between jabshard's own users")
    o = p.parse_args(argv)
    o.build = os.path.abspath(o.build)
    o.loadgen = os.path.abspath(o.loadgen or os.path.join(o.build, "bench", "loadgen"))
    o.out = os.path.abspath(o.out)
    o.rates = [int(x) for x in o.rates.split(",") if x]
    o.peers = [x for x in o.peers.split(",") if x]
    for x in o.peers:
        if x not in PEERS:
            p.error("unknown peer %r (known: %s)" % (x, ", ".join(PEERS)))
    if not os.access(o.loadgen, os.X_OK):
        p.error("%s is not built" % o.loadgen)
    return o


def main(argv):
    from jabtest import federation as fed
    o = options(argv)
    fed.enter_namespace("s2sbench")
    from jabtest.report import Report
    os.makedirs(o.out, exist_ok=True)
    report = Report("s2sbench")
    t0 = time.monotonic()
    rows = bench(o, report)
    save(o, rows)
    peerlib.log("federation: %d rows in %.0f s; %s" % (len(rows), time.monotonic() - t0,
                                                       os.path.join(o.out, "results.md")))
    with open(os.path.join(o.out, "results.md")) as f:
        print(f.read())
    return 0 if rows and not report.failed and not any(r.get("failed") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
