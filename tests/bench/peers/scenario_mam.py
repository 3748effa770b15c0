# tests/bench/peers/scenario_mam.py: the message archiving (MAM, XEP-0313) scenario of the peer
# benchmark, issue 16, over plain TCP, after the other scenarios. What archiving costs per message:
# N users, a warm-up round and a measured round of chat messages with bodies at the same fixed
# offered rate (one that every server delivers in time with archiving once each account's archive
# is set up: the peers' first message per account is slow, see the warm-up round's p99), on a
# server started fresh twice, archiving off then on (a restart with another configuration,
# Server.archiving: jabshard's sm.xml lists its modules with or without mam; Prosody's mod_mam,
# its archive on the same internal storage, policy "always"; ejabberd's mod_mam on SQL, default
# always). Each message is archived twice, in the sender's and the recipient's archive. Per server
# and mode: the server's CPU time from the end of the warm-up round to the end of a short linger
# after the measured one (so that writes batched after delivery, jabshard's within a second, are
# counted) per delivered message, p99, lost and duplicated messages, of the measured round; after
# each run, the messages in its archives (read from its storage once it stopped): 2 per message
# with archiving, none without. Targets (issue 16): archiving adds at most 25% to jabshard's CPU
# per message, and jabshard's CPU per message with archiving is at most a quarter of the leanest
# peer's. Options are declared here (add_options); results.md gets its table from report_lines.
import time

import peerlib
from scenario_pep import leaner_peer
from scenario_sm import fmt, loadgen_argv, on_fresh_server, start_run

TARGET_CPU_RATIO = 1.25       # archiving adds at most 25% to the CPU per message
TARGET_CPU_VS_PEER = 0.25     # and with it at most a quarter of the leanest peer's
MODES = ("off", "on")
LINGER_S = 3                  # idle after the round, inside the measured CPU: the batched writes
NO_MAM = "no archiving configured"


def add_options(p, env):
    p.add_argument("--mam-only", action="store_true",
                   help="only the message archiving scenario, not the login/memory/rate, 0198 or "
                   "PEP ones")
    p.add_argument("--no-mam", action="store_true", help="leave the message archiving scenario out")
    p.add_argument("--mam-users", type=int, default=int(env("BENCH_PEERS_MAM_USERS", "1000")))
    p.add_argument("--mam-rate", type=int, default=int(env("BENCH_PEERS_MAM_RATE", "250")),
                   help="offered messages per second: one that every server delivers with "
                   "archiving, p99 under --p99-ms after the warm-up round")
    p.add_argument("--mam-round-seconds", type=int,
                   default=int(env("BENCH_PEERS_MAM_ROUND_SECONDS", "20")))


def check_options(p, o):
    if o.mam_only and o.no_mam:
        p.error("--mam-only and --no-mam")


def selected(o):
    return not (o.no_mam or o.sm_only or o.pep_only or o.muc_only or o.hold_only or o.web_only
                or o.s2s_only)


def sessions_needed(o):
    return [o.mam_users] if selected(o) else []


# ---- running ---------------------------------------------------------------------------------

def measure(o, server, m, tag):
    """One round on the running SERVER; its figures into M."""
    n, rate, secs = o.mam_users, o.mam_rate, o.mam_round_seconds
    argv = loadgen_argv(o, server, n, 3) + [
        "--rates", "%d,%d" % (rate, rate), "--round-seconds", str(secs), "--drain-seconds", "15",
        "--hold-after", str(LINGER_S)]
    run, _ = start_run(o, server, tag, argv)
    why = run.wait(time.time() + 120 + n / 20.0 + 2 * (secs + 15) + LINGER_S + 40)
    if why or len(run.rounds) < 2:
        raise RuntimeError(why or "%d rounds of 2 ran" % len(run.rounds))
    m["warmup"], rnd = run.rounds
    m["round"] = rnd
    m["sent_all"] = sum(x.get("sent", 0) for x in run.rounds)
    if "linger" not in run.cpu or "hold" not in run.cpu:
        raise RuntimeError("no hold or linger line from loadgen")
    m["server_cpu_s"] = run.cpu["linger"] - run.cpu["hold"] - m["warmup"]["server_cpu_s"]
    if rnd.get("delivered"):
        m["cpu_us_per_msg"] = m["server_cpu_s"] / rnd["delivered"] * 1e6
    if rnd.get("delivered", 0) < rnd.get("sent", 0):
        m["failed"] = "%s of %s delivered by the end of the drain (the server cannot keep up; CPU " \
            "per message overstated)" % (rnd.get("delivered"), rnd.get("sent"))
    elif rnd.get("p99_ms", 0) > o.p99_ms:
        m["note"] = "p99 over %g ms: falls behind at this rate" % o.p99_ms


def check_archive(server, m, on):
    """After the run: the messages in the server's archives against 2 per message sent in both
    rounds (on) or none (off)."""
    try:
        got = server.archived_messages()
    except Exception as e:  # noqa: BLE001 - an unreadable archive is a finding, not a crash
        m["archive_check"] = "could not read the archive: %s" % e
        return
    sent = m.get("sent_all")
    want = 2 * sent if on and sent is not None else 0
    m["archived"], m["archived_expected"] = got, want
    if got is None:
        m["archive_check"] = "not checked (no way to count this server's archive)"
    elif got == want:
        m["archive_check"] = "ok"
    else:
        m["archive_check"] = "%s archived, %s expected" % (got, want)
        if on:
            m["failed"] = m.get("failed") or "archive holds %s of %s" % (got, want)


def run_server(o, server, record):
    """Archiving off, then on, each on a freshly started SERVER; the result passed to RECORD."""
    if not selected(o):
        return
    r = {"server": server.name, "version": server.version(), "transport": "plain",
         "mechanism": o.mech, "label": "mam", "users": o.mam_users, "rate": o.mam_rate,
         "round_seconds": o.mam_round_seconds, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not server.can_archive:
        r["no_mam"] = True
        record(r)
        return
    try:
        for mode in MODES:
            peerlib.log("%s: message archiving %s, %d users, %d msg/s" % (
                server.name, mode, o.mam_users, o.mam_rate))
            m = r[mode] = {}
            tag = "mam-%s-%s" % (mode, server.name)
            server.archiving = mode == "on"
            on_fresh_server(o, server, m, tag, lambda m=m, tag=tag: measure(o, server, m, tag))
            if m.get("round"):
                check_archive(server, m, mode == "on")
            with open("/proc/loadavg") as f:
                m["loadavg"] = float(f.read().split()[0])
            time.sleep(2)
    finally:
        server.archiving = None
    off, on = r.get("off", {}), r.get("on", {})
    if off.get("cpu_us_per_msg") and on.get("cpu_us_per_msg"):
        r["cpu_ratio"] = on["cpu_us_per_msg"] / off["cpu_us_per_msg"]
    failed = ["archiving %s: %s" % (k, r[k]["failed"]) for k in MODES if r[k].get("failed")]
    if failed:
        r["failed"] = "; ".join(failed)
    notes = ["archiving %s: %s" % (k, r[k]["note"]) for k in MODES if r[k].get("note")]
    if notes:
        r["notes"] = "; ".join(notes)
    peerlib.log("%s: %s" % (server.name, summary(r)))
    record(r)


# ---- reporting -------------------------------------------------------------------------------

def summary(r):
    if r.get("no_mam"):
        return NO_MAM
    s = "CPU/msg %s µs off, %s µs on; archive: %s" % (
        fmt(r.get("off", {}).get("cpu_us_per_msg"), 1), fmt(r.get("on", {}).get("cpu_us_per_msg"), 1),
        r.get("on", {}).get("archive_check", "-"))
    return s + (" (FAILED: %s)" % r["failed"] if r.get("failed") else "")


def cpu_on(r):
    """CPU per message with archiving, of a run that did not fail."""
    return None if r.get("failed") else r.get("on", {}).get("cpu_us_per_msg")


def report_lines(results):
    """The message archiving section of results.md (nothing when it did not run): a row per run
    (a server run again with --append has a row per run); the targets from each server's last."""
    runs = [r for r in results if r.get("label") == "mam"]
    if not runs:
        return []
    by = {r["server"]: r for r in runs}
    out = ["", "Message archiving (XEP-0313, plain TCP; scenario_mam.py; off and on each on a "
           "freshly started server):", "",
           "| server | version | users | offered msg/s x s | CPU/msg off (µs) | CPU/msg on (µs) "
           "| on/off | p99 off / on (ms) | warm-up round p99 off / on (ms) | lost, dup off "
           "| lost, dup on | archived with archiving (2 per message) | archived without "
           "| load average off / on | notes |",
           "|---|---|---:|---|---:|---:|---:|---|---|---|---|---|---|---|---|"]
    for r in runs:
        server = r["server"]
        if r.get("no_mam"):
            out.append("| %s | %s | | | | | | | | | | | | | %s |" % (server, r.get("version"),
                                                                     NO_MAM))
            continue
        off, on = r.get("off", {}), r.get("on", {})
        ro, rn = off.get("round") or {}, on.get("round") or {}
        wo, wn = off.get("warmup") or {}, on.get("warmup") or {}

        def lost_dup(x):
            return "%s, %s" % (x.get("lost"), x.get("dup")) if x else "-"

        def archived(m):
            if m.get("archived") is None:
                return m.get("archive_check", "-")
            return "%s of %s" % (fmt(m["archived"]), fmt(m["archived_expected"]))

        out.append("| %s | %s | %s | %s x %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s "
                   "| %s / %s | %s |" % (
            server, r.get("version"), fmt(r.get("users")), fmt(r.get("rate")),
            r.get("round_seconds"), fmt(off.get("cpu_us_per_msg"), 1),
            fmt(on.get("cpu_us_per_msg"), 1), fmt(r.get("cpu_ratio"), 2),
            fmt(ro.get("p99_ms"), 1), fmt(rn.get("p99_ms"), 1), fmt(wo.get("p99_ms"), 1),
            fmt(wn.get("p99_ms"), 1), lost_dup(ro), lost_dup(rn),
            archived(on), archived(off), fmt(off.get("loadavg"), 1), fmt(on.get("loadavg"), 1),
            "; ".join(x for x in (r.get("failed"), r.get("notes")) if x).replace("|", "/")))
    out += ["", targets(by)]
    return out


def targets(by):
    ours = by.get("jabshard", {})
    if not ours or ours.get("no_mam"):
        return "Targets: no jabshard figures."
    peer, peer_us = leaner_peer(by, cpu_on)
    us = ours.get("on", {}).get("cpu_us_per_msg")
    cells = [("archiving's CPU cost ≤ %.2fx" % TARGET_CPU_RATIO, ours.get("cpu_ratio"),
              lambda v: v <= TARGET_CPU_RATIO),
             ("CPU/msg with archiving vs leanest peer%s ≤ %.2f" % (
                 " (%s)" % peer if peer else "", TARGET_CPU_VS_PEER),
              us / peer_us if us and peer_us else None, lambda v: v <= TARGET_CPU_VS_PEER)]
    return "Targets, jabshard: " + "; ".join(
        "%s: %s" % (name, "-" if v is None else "%.2f %s" % (
            v, "met" if ok(v) and not ours.get("failed") else "NOT met"))
        for name, v, ok in cells) + "."
