# tests/bench/peers/scenario_pep.py: the PEP (XEP-0163) publish fan-out scenario of the peer
# benchmark, issue 15, on a freshly started server over plain TCP, after the other scenarios.
# N users, each with K contacts (a ring, every subscription both ways: peerlib.ring), written into
# the server's storage before it starts (write_rosters of each server module). The load generator
# (--pep) logs them all in; each client's presence carries XEP-0115 caps announcing
# urn:xmpp:bench:pep+notify and answers the servers' disco#info queries, so every contact wants
# the node's notifications. After a hold (caps verified, presence settled), one warm-up publish
# round, then the measured one at the same fixed rate: random users publish one item each, carrying
# its send time. Per server: the server's CPU time over the measured round (its sending and its
# drain) per notification delivered, publish-to-notification p50/p99, notifications delivered of
# expected, and resident memory (all the server's processes, median of three samples): before the
# logins, after the hold (sessions, rosters, presence, caps), and after the publishes (each user's
# node and item), per user. The target (issue 15): jabshard's CPU per notification at most a
# quarter of the leaner peer's. Options are declared here (add_options); results.md gets its table
# from report_lines.
import time

import peerlib
from scenario_sm import fmt, loadgen_argv, on_fresh_server, rss_by_process, start_run, watch

TARGET_CPU_VS_PEER = 0.25     # CPU per notification vs the leaner peer's
DELIVERED_SHARE = 0.95        # below it, the round's CPU per notification is not comparable


def add_options(p, env):
    p.add_argument("--pep-only", action="store_true",
                   help="only the PEP fan-out scenario, not the login/memory/rate or 0198 ones")
    p.add_argument("--no-pep", action="store_true", help="leave the PEP fan-out scenario out")
    p.add_argument("--pep-users", type=int, default=int(env("BENCH_PEERS_PEP_USERS", "2000")),
                   help="online users (issue 15: 5,000; 2,000 is what every peer logs in, with "
                   "its presence storm, in reasonable time here)")
    p.add_argument("--pep-contacts", type=int, default=int(env("BENCH_PEERS_PEP_CONTACTS", "50")),
                   help="contacts per user, even (issue 15: 100)")
    p.add_argument("--pep-rate", type=int, default=int(env("BENCH_PEERS_PEP_RATE", "20")),
                   help="publishes per second, in total, of the warm-up and the measured round: "
                   "one that every server notifies in time")
    p.add_argument("--pep-round-seconds", type=int,
                   default=int(env("BENCH_PEERS_PEP_ROUND_SECONDS", "20")))
    p.add_argument("--pep-hold-seconds", type=int,
                   default=int(env("BENCH_PEERS_PEP_HOLD_SECONDS", "30")),
                   help="idle after the logins, for presence and caps to settle, before publishing")


def check_options(p, o):
    if o.pep_only and o.no_pep:
        p.error("--pep-only and --no-pep")
    if o.pep_contacts < 2 or o.pep_contacts % 2 or o.pep_contacts >= o.pep_users:
        p.error("--pep-contacts must be even, at least 2 and fewer than --pep-users")


def selected(o):
    return not (o.no_pep or o.sm_only or o.mam_only or o.muc_only or o.hold_only or o.web_only
                or o.s2s_only)


def sessions_needed(o):
    return [o.pep_users] if selected(o) else []


# ---- running ---------------------------------------------------------------------------------

def scenario(o, server, r, tag):
    n, k, rate, secs = o.pep_users, o.pep_contacts, o.pep_rate, o.pep_round_seconds
    drain, linger = 15, 6
    r.update(users=n, contacts=k, rate=rate, round_seconds=secs)
    r["rss_before_kib"] = peerlib.rss_kib(peerlib.server_pids(server.roots))
    r["rss_before_by_process_kib"] = rss_by_process(server.roots)
    argv = loadgen_argv(o, server, n, o.pep_hold_seconds) + [
        "--pep", "--pep-contacts", str(k), "--rates", "%d,%d" % (rate, rate),
        "--round-seconds", str(secs), "--drain-seconds", str(drain), "--hold-after", str(linger)]
    run, ready = start_run(o, server, tag, argv)
    ready_at = []

    def settled(run):
        """Late in the hold: the sessions, their presence and caps are all there."""
        if not ready_at and run.lines["login"] is not None:
            ready_at.append(time.time())
        return ready_at[0] + max(o.settle_seconds, o.pep_hold_seconds - 5) if ready_at else None

    def published(run):
        """A second into the linger (--hold-after) that follows the last round."""
        return run.marks["pep"] + 1 if len(run.rounds) >= 2 else None

    budget = 120 + n / 20.0 + o.pep_hold_seconds + 2 * (secs + drain) + linger + 60
    got, why = watch(run, time.time() + budget, {"settled": settled, "published": published})
    if why:
        raise RuntimeError(why)
    login = run.lines["login"] or {}
    r["login"] = login
    if login.get("failed"):
        r["failed"] = "%d of %d logins failed" % (login["failed"], n)
    for name in ("settled", "published"):
        if name in got:
            r["rss_%s_kib" % name] = got[name]
            r["rss_%s_by_process_kib" % name] = got[name + "_by_process"]
    ok = login.get("ok", 0)
    if ok and "settled" in got:
        r["rss_per_user_settled_kib"] = (got["settled"] - r["rss_before_kib"]) / ok
        if "published" in got:
            r["rss_per_user_published_kib"] = (got["published"] - got["settled"]) / ok
    r["rounds"] = run.rounds
    if len(run.rounds) < 2:
        raise RuntimeError("%d publish rounds of 2 ran" % len(run.rounds))
    m = run.rounds[-1]
    r["measured"] = m
    # Every notification stanza the server sent counts, its duplicates too (it did that work): the
    # peers' figure is the lower for it, never jabshard's.
    delivered = sum(m.get(f, 0) for f in ("notified", "self", "self_dup", "dup"))
    r["delivered_stanzas"] = delivered
    if delivered:
        r["cpu_us_per_notification"] = m["server_cpu_s"] / delivered * 1e6
    if m.get("expected"):
        r["delivered_share"] = m.get("notified", 0) / m["expected"]
    problems = []
    if r.get("delivered_share", 0) < DELIVERED_SHARE:
        problems.append("%s of %s notifications by the end of the drain (the server cannot keep "
                        "up: CPU per notification overstated)" % (m.get("notified"), m.get("expected")))
    if m.get("publish_errors"):
        problems.append("%d publishes refused" % m["publish_errors"])
    if m.get("misrouted"):
        problems.append("%s notifications at users who are no contact" % m["misrouted"])
    if problems and not r.get("failed"):
        r["failed"] = "; ".join(problems)
    notes = []
    if m.get("dup"):
        notes.append("%d notifications came twice to a contact" % m["dup"])
    if m.get("self_dup"):
        notes.append("%d came twice to the publisher" % m["self_dup"])
    r["notes"] = "; ".join(notes)


def run_server(o, server, record):
    """The PEP fan-out scenario on SERVER, its result passed to RECORD."""
    if not selected(o):
        return
    r = {"server": server.name, "version": server.version(), "transport": "plain",
         "mechanism": o.mech, "label": "pep", "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    tag = "pep-%s" % server.name
    peerlib.log("%s: PEP fan-out, %d users x %d contacts, %d publishes/s" % (
        server.name, o.pep_users, o.pep_contacts, o.pep_rate))
    store = server.roster_store(o.pep_users, o.pep_contacts)
    on_fresh_server(o, server, r, tag, lambda: scenario(o, server, r, tag), store=store)
    peerlib.log("%s: %s" % (server.name, summary(r)))
    record(r)


# ---- reporting -------------------------------------------------------------------------------

def summary(r):
    m = r.get("measured") or {}
    s = "CPU/notification %s µs, p99 %s ms, %s of %s notified" % (
        fmt(r.get("cpu_us_per_notification"), 1), fmt(m.get("p99_ms"), 1), m.get("notified"),
        m.get("expected"))
    return s + (" (FAILED: %s)" % r["failed"] if r.get("failed") else "")


def leaner_peer(by, figure=lambda r: r.get("cpu_us_per_notification")):
    """(server, µs) of the peer with the least FIGURE (by default CPU per notification) of the
    results BY server, or (None, None)."""
    peers = [(figure(v), k) for k, v in by.items() if k != "jabshard" and figure(v)]
    if not peers:
        return None, None
    us, name = min(peers)
    return name, us


def report_lines(results):
    """The PEP fan-out section of results.md (nothing when it did not run)."""
    by = {r["server"]: r for r in results if r.get("label") == "pep"}
    if not by:
        return []
    peer, peer_us = leaner_peer(by)
    out = ["", "PEP fan-out (XEP-0163 with XEP-0115 caps filtering, plain TCP; scenario_pep.py):", "",
           "| server | version | users x contacts | publishes/s | published (ok, refused) "
           "| notified of expected | at the publisher | twice at a contact, misrouted | p50 / p99 (ms) "
           "| publish answer p99 (ms) | server CPU (s) | CPU per notification (µs) | vs leaner peer "
           "| RSS/user after logins (KiB) | RSS/user for the publishes (KiB) | notes |",
           "|---|---|---|---:|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for server, r in by.items():
        m = r.get("measured") or {}
        us = r.get("cpu_us_per_notification")
        ratio = "%.2f (%s)" % (us / peer_us, peer) if us and peer_us else "-"
        out.append("| %s | %s | %s x %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                   "| %s |" % (
                       server, r.get("version"), fmt(r.get("users")), r.get("contacts"),
                       fmt(r.get("rate")),
                       "%s (%s, %s)" % (m.get("published"), m.get("publish_ok"),
                                        m.get("publish_errors")) if m else "-",
                       "%s of %s (%.1f%%)" % (m.get("notified"), m.get("expected"),
                                              100.0 * r.get("delivered_share", 0)) if m else "-",
                       m.get("self", "-"), "%s, %s" % (m.get("dup"), m.get("misrouted")) if m else "-",
                       "%s / %s" % (fmt(m.get("p50_ms"), 1), fmt(m.get("p99_ms"), 1)) if m else "-",
                       fmt(m.get("answer_p99_ms"), 1), fmt(m.get("server_cpu_s"), 2),
                       fmt(us, 1), ratio if server == "jabshard" else "",
                       fmt(r.get("rss_per_user_settled_kib"), 1),
                       fmt(r.get("rss_per_user_published_kib"), 2),
                       "; ".join(x for x in (r.get("failed"), r.get("notes")) if x)
                       .replace("|", "/")))
    ours = by.get("jabshard", {})
    us = ours.get("cpu_us_per_notification")
    if us and peer_us:
        ok = us / peer_us <= TARGET_CPU_VS_PEER and not ours.get("failed")
        out += ["", "Target, jabshard: CPU per notification ≤ %.2f of the leaner peer's (%s): %.2f %s."
                % (TARGET_CPU_VS_PEER, peer, us / peer_us, "met" if ok else "NOT met")]
    else:
        out += ["", "Target, jabshard: CPU per notification ≤ %.2f of the leaner peer's: no figures "
                "to compare." % TARGET_CPU_VS_PEER]
    return out
