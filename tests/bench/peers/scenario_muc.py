# tests/bench/peers/scenario_muc.py: the group chat (MUC, XEP-0045) fan-out scenario of the peer
# benchmark, issue 17, over plain TCP, after the other scenarios. Per server and room shape (R rooms
# x K occupants: 1 x 1,000 and 10 x 100 by default), on a freshly started server: the load
# generator (--muc, lg_muc_rounds.h) logs R x K users in, each joins its room (the first joiner of
# each creates it and submits an instant-room configuration), then rounds of groupchat messages from
# random occupants at stepped rates, every room reflecting each message to each of its occupants
# (the sender included). The rates are given in deliveries per second (--muc-delivery-rates), the
# same ladder for every shape: a round offers that divided by K messages per second. Stepping stops
# at the first round whose p99 (send to each delivery) is over --p99-ms or that delivers less than
# 95% of what was expected. Per server and shape: join time of all occupants, the highest delivery
# rate of a round that passed, the server's CPU per delivery over that round (the first round when
# none passed), lost and duplicated deliveries. Servers without group chat in this benchmark
# (jabberd2: Debian's configuration has no MUC component) are skipped. Target (issue 17): jabshard's
# CPU per delivery at most a quarter of the leaner peer's.
import time

import peerlib
from scenario_sm import fmt, loadgen_argv, on_fresh_server, start_run, watch

TARGET_CPU_VS_PEER = 0.25     # CPU per delivery vs the leaner peer's
LABEL = "muc"


def add_options(p, env):
    p.add_argument("--muc-only", action="store_true",
                   help="only the group chat fan-out scenario")
    p.add_argument("--no-muc", action="store_true", help="leave the group chat scenario out")
    p.add_argument("--muc-shapes", default=env("BENCH_PEERS_MUC_SHAPES", "1x1000,10x100"),
                   help="room shapes, ROOMSxOCCUPANTS, comma-separated (issue 17: 1x1000,10x100)")
    p.add_argument("--muc-delivery-rates",
                   default=env("BENCH_PEERS_MUC_DELIVERY_RATES",
                               "1000,2000,5000,10000,20000,40000,60000,80000,120000,160000,"
                               "240000,320000"),
                   help="deliveries per second of each round (messages/s x occupants), stepped "
                   "until a round misses")
    p.add_argument("--muc-round-seconds", type=int,
                   default=int(env("BENCH_PEERS_MUC_ROUND_SECONDS", "10")))
    p.add_argument("--muc-hold-seconds", type=int,
                   default=int(env("BENCH_PEERS_MUC_HOLD_SECONDS", "5")),
                   help="idle after the joins, before the first round")
    p.add_argument("--muc-join-concurrency", type=int,
                   default=int(env("BENCH_PEERS_MUC_JOIN_CONCURRENCY", "50")))


def shapes(o):
    out = []
    for s in o.muc_shapes.split(","):
        rooms, occupants = s.lower().split("x")
        out.append((int(rooms), int(occupants)))
    return out


def check_options(p, o):
    if o.muc_only and o.no_muc:
        p.error("--muc-only and --no-muc")
    try:
        if not all(r >= 1 and k >= 2 for r, k in shapes(o)):
            raise ValueError
        o.muc_rates = [int(x) for x in o.muc_delivery_rates.split(",")]
    except ValueError:
        p.error("--muc-shapes is ROOMSxOCCUPANTS[,...] and --muc-delivery-rates numbers")


def selected(o):
    return not (o.no_muc or o.sm_only or o.pep_only or o.mam_only or o.hold_only or o.web_only
                or o.s2s_only)


def sessions_needed(o):
    return [max(r * k for r, k in shapes(o))] if selected(o) else []


# ---- running ---------------------------------------------------------------------------------

def scenario(o, server, r, tag, rooms, occupants):
    n, secs, drain = rooms * occupants, o.muc_round_seconds, 5
    rates = ["%.15g" % (d / float(occupants)) for d in o.muc_rates]
    r.update(users=n, rooms=rooms, occupants=occupants, round_seconds=secs)
    argv = loadgen_argv(o, server, n, o.muc_hold_seconds) + [
        "--muc", "--muc-rooms", str(rooms), "--muc-join-concurrency", str(o.muc_join_concurrency),
        "--rates", ",".join(rates), "--round-seconds", str(secs), "--drain-seconds", str(drain),
        "--stop-p99-ms", "%g" % o.p99_ms]
    run, _ = start_run(o, server, tag, argv)
    budget = 180 + n / 10.0 + o.muc_hold_seconds + len(rates) * (secs + drain + 5)
    _, why = watch(run, time.time() + budget, {})
    r["login"] = run.lines["login"] or {}
    r["join"] = run.lines.get("join") or {}
    r["rounds"] = run.rounds
    if why:
        raise RuntimeError(why)
    if r["login"].get("failed"):
        r["failed"] = "%d of %d logins failed" % (r["login"]["failed"], n)
    if r["join"].get("failed"):
        r["failed"] = "%d of %d joins failed" % (r["join"]["failed"], n)
    if not run.rounds:
        raise RuntimeError("no groupchat round ran")
    passed = [m for m in run.rounds if passes(o, m)]
    best = passed[-1] if passed else run.rounds[0]
    r["best"] = best
    r["passed"] = bool(passed)
    # Every delivery the server made counts, its duplicates too (it did that work).
    delivered = best.get("delivered", 0) + best.get("dup", 0)
    if delivered:
        r["cpu_us_per_delivery"] = best["server_cpu_s"] / delivered * 1e6
    notes = []
    for m in run.rounds:
        if m.get("dup") or m.get("misrouted") or m.get("errored") or m.get("unexpected"):
            notes.append("round at %s msg/s: %s dup, %s misrouted, %s errored, %s unexpected" % (
                m.get("offered"), m.get("dup"), m.get("misrouted"), m.get("errored"),
                m.get("unexpected")))
    r["notes"] = "; ".join(notes)


def passes(o, m):
    return (m.get("expected") and m.get("delivered", 0) >= 0.95 * m["expected"] and
            m.get("p99_ms", 1e9) <= o.p99_ms)


def run_server(o, server, record):
    """The group chat scenario on SERVER, each room shape; results passed to RECORD."""
    if not selected(o):
        return
    for rooms, occupants in shapes(o):
        r = {"server": server.name, "version": server.version(), "transport": "plain",
             "mechanism": o.mech, "label": LABEL, "shape": "%dx%d" % (rooms, occupants),
             "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        if not server.can_muc:
            r["failed"] = "no group chat service in this benchmark's configuration"
            peerlib.log("%s: group chat skipped (%s)" % (server.name, r["failed"]))
            record(r)
            continue
        tag = "muc-%s-%dx%d" % (server.name, rooms, occupants)
        peerlib.log("%s: group chat, %d rooms x %d occupants" % (server.name, rooms, occupants))
        server.muc = True
        try:
            on_fresh_server(o, server, r, tag,
                            lambda: scenario(o, server, r, tag, rooms, occupants))
        finally:
            server.muc = False
        peerlib.log("%s: %s" % (server.name, summary(r)))
        record(r)


# ---- reporting -------------------------------------------------------------------------------

def summary(r):
    b, j = r.get("best") or {}, r.get("join") or {}
    s = "%s: join %s s, %s deliveries/s at p99 %s ms, CPU/delivery %s µs" % (
        r.get("shape"), fmt(j.get("seconds"), 2), fmt(b.get("deliveries_per_s")),
        fmt(b.get("p99_ms"), 1), fmt(r.get("cpu_us_per_delivery"), 2))
    return s + (" (FAILED: %s)" % r["failed"] if r.get("failed") else "")


def cpu_us(m):
    """Server CPU per delivery of round M (its duplicates counted), µs, or None."""
    n = m.get("delivered", 0) + m.get("dup", 0)
    return m["server_cpu_s"] / n * 1e6 if n and "server_cpu_s" in m else None


def common_rate(by):
    """The highest offered rate that every server of BY ran a round at (None when none): CPU per
    delivery compared at the same load, fixed costs (timers, an idle VM) spread alike."""
    sets = [set(m.get("offered") for m in r.get("rounds", [])) for r in by.values()
            if r.get("rounds")]
    common = set.intersection(*sets) if sets else set()
    return max(common) if common else None


def at_rate(r, rate):
    return next((m for m in r.get("rounds", []) if m.get("offered") == rate), {})


def report_lines(results):
    """The group chat section of results.md (nothing when it did not run)."""
    rows = [r for r in results if r.get("label") == LABEL]
    if not rows:
        return []
    out = ["", "Group chat fan-out (XEP-0045, plain TCP; scenario_muc.py; rates stepped until p99 "
           "≥ 50 ms):", "",
           "| server | version | rooms x occupants | join all (s) | join p99 (ms) "
           "| best msg/s | deliveries/s at p99 < 50 ms | p99 there (ms) | lost, dup there "
           "| server CPU there (s) | CPU per delivery there (µs) | vs leaner peer "
           "| CPU per delivery at the common rate (µs) | vs leaner peer | rounds (msg/s: p99 ms) "
           "| notes |",
           "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for shape in sorted({r.get("shape") for r in rows}):
        by = {r["server"]: r for r in rows if r.get("shape") == shape}
        rate = common_rate(by)

        def leaner(figure):
            peers = [(figure(v), k) for k, v in by.items()
                     if k != "jabshard" and figure(v) and not v.get("failed")]
            return min(peers) if peers else (None, None)

        best_us = lambda v: v.get("cpu_us_per_delivery")            # noqa: E731
        common_us = lambda v: cpu_us(at_rate(v, rate))               # noqa: E731
        peer_us, peer = leaner(best_us)
        peer_cus, cpeer = leaner(common_us)
        for server, r in by.items():
            b, j = r.get("best") or {}, r.get("join") or {}
            us, cus = best_us(r), common_us(r)
            ratio = "%.2f (%s)" % (us / peer_us, peer) if us and peer_us else "-"
            cratio = "%.2f (%s)" % (cus / peer_cus, cpeer) if cus and peer_cus else "-"
            steps = ", ".join("%s: %s" % (m.get("offered"), fmt(m.get("p99_ms"), 1))
                              for m in r.get("rounds", []))
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                       "| %s |" % (
                           server, r.get("version"), shape, fmt(j.get("seconds"), 2),
                           fmt(j.get("p99_ms"), 1),
                           fmt(b.get("offered")) if r.get("passed") else "none passed",
                           fmt(b.get("deliveries_per_s")) if r.get("passed") else "-",
                           fmt(b.get("p99_ms"), 1),
                           "%s, %s" % (b.get("lost"), b.get("dup")) if b else "-",
                           fmt(b.get("server_cpu_s"), 2), fmt(us, 2),
                           ratio if server == "jabshard" else "",
                           "%s at %s msg/s" % (fmt(cus, 2), rate) if cus else "-",
                           cratio if server == "jabshard" else "", steps,
                           "; ".join(x for x in (r.get("failed"), r.get("notes")) if x)
                           .replace("|", "/")))
        ours = by.get("jabshard", {})
        us, cus = best_us(ours), common_us(ours)
        if us and peer_us:
            ok = us / peer_us <= TARGET_CPU_VS_PEER and not ours.get("failed")
            out += ["", "Target, jabshard, %s: CPU per delivery ≤ %.2f of the leaner peer's (%s), "
                    "each at its best rate: %.2f %s; at the common rate (%s msg/s): %s." % (
                        shape, TARGET_CPU_VS_PEER, peer, us / peer_us, "met" if ok else "NOT met",
                        rate, "%.2f of %s's" % (cus / peer_cus, cpeer) if cus and peer_cus
                        else "no figures"), ""]
    return out
