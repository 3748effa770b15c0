# tests/bench/peers/scenario_sm.py: the XEP-0198 (stream management) scenarios of the peer
# benchmark, issue 14, each on a freshly started server, over plain TCP, after the other scenarios:
#   rate       the same users at the same offered rate twice in one server run, first without
#              stream management, then with it (loadgen --sm, an <r/> after every message as
#              Conversations does): the server's CPU time per delivered message, both ways
#   hibernate  N users enable resumption, then their sockets are cut (loadgen --cut-after, TCP
#              reset, no </stream>) and they stay away: resident memory while they hibernate,
#              minus before the logins, per session
#   storm      N users with resumption exchange messages (one round at --sm-storm-rate); in
#              its middle all are cut at once and all reconnect at once (a front kill's reconnect
#              storm): how many resumed, the last resumption's time after the cut, resume latency
#              (connect to <resumed/>) p50/p99, and the round's lost and duplicated messages
# A server whose stream features offer no urn:xmpp:sm:3 after SASL (one --sm login gets no
# <enabled/>) is recorded as "no XEP-0198", not as a failure. Each scenario's options are declared
# here (add_options); results.md gets its table from report_lines.
import os
import shutil
import subprocess
import time

import peerlib
from loadgen_run import LoadgenRun, parse_line, probe

SCENARIOS = ("rate", "hibernate", "storm")
NO_SM = "no XEP-0198"
# Targets from issue 14, for jabshard against the peers.
TARGET_CPU_RATIO = 1.15       # 0198 costs at most 15% more CPU per message
TARGET_CPU_VS_PEER = 0.25     # and at most a quarter of the leanest peer's with 0198
TARGET_HIBERNATED = 0.25      # memory per hibernated session vs the leaner peer
TARGET_STORM_S = 10.0         # all resumed within 10 s of the cut
TARGET_RESUME_P99_MS = 200.0


def add_options(p, env):
    p.add_argument("--sm-scenarios", default=env("BENCH_PEERS_SM_SCENARIOS", ",".join(SCENARIOS)),
                   help="XEP-0198 scenarios to run (%s; empty: none)" % ", ".join(SCENARIOS))
    p.add_argument("--sm-only", action="store_true",
                   help="only the XEP-0198 scenarios, not the login/memory/rate ones")
    p.add_argument("--sm-rate", type=int, default=int(env("BENCH_PEERS_SM_RATE", "500")),
                   help="offered messages per second of the 0198 rate scenario: one that every "
                   "server delivers in time with 0198 (Prosody 0.12 does not at 2,000 here), "
                   "or the CPU of what it delivers late counts against what it delivered")
    p.add_argument("--sm-rate-sessions", type=int,
                   default=int(env("BENCH_PEERS_SM_RATE_SESSIONS", "1000")))
    p.add_argument("--sm-ack-every", type=int, default=int(env("BENCH_PEERS_SM_ACK_EVERY", "1")),
                   help="an <r/> after every N messages (1: as Conversations)")
    p.add_argument("--sm-hibernate-sessions", type=int,
                   default=int(env("BENCH_PEERS_SM_HIBERNATE_SESSIONS", "5000")))
    p.add_argument("--sm-storm-sessions", type=int,
                   default=int(env("BENCH_PEERS_SM_STORM_SESSIONS", "5000")))
    p.add_argument("--sm-storm-rate", type=int, default=int(env("BENCH_PEERS_SM_STORM_RATE", "500")),
                   help="messages per second during the storm's round")
    p.add_argument("--loadgen-nice", type=int, default=None,
                   help="run the load generator at this niceness throughout (a shared machine)")


def check_options(p, o):
    o.sm_scenarios = [s for s in o.sm_scenarios.split(",") if s]
    for s in o.sm_scenarios:
        if s not in SCENARIOS:
            p.error("unknown --sm-scenarios entry %r (known: %s)" % (s, ", ".join(SCENARIOS)))


def sessions_needed(o):
    counts = {"rate": o.sm_rate_sessions, "hibernate": o.sm_hibernate_sessions,
              "storm": o.sm_storm_sessions}
    return [counts[s] for s in o.sm_scenarios]


# ---- running ---------------------------------------------------------------------------------

def loadgen_argv(o, server, users, hold):
    return [o.loadgen_bin, "--host", "127.0.0.1", "--port", str(server.port), "--domain",
            "localhost", "--users", str(users), "--mech", o.mech, "--tls", "none",
            "--sources", "127.0.0.1-127.0.0.250", "--login-concurrency", "200",
            "--hold", str(hold), "--keepalive", "60", "--timeout", "60"]


def offers_sm(o, server):
    """Whether one --sm login gets <enabled/> (the sm line's enabled=1)."""
    argv = [o.loadgen_bin, "--host", "127.0.0.1", "--port", str(server.port), "--domain",
            "localhost", "--users", "1", "--mech", o.mech, "--tls", "none", "--timeout", "10",
            "--sm", "--hold", "1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    for line in r.stdout.splitlines():
        kind, f = parse_line(line)
        if kind == "sm":
            return f.get("enabled") == 1
    raise RuntimeError("no sm line from loadgen --sm: %s" % (r.stdout + r.stderr)[-300:])


def watch(run, deadline, since):
    """Waits for RUN to end; for each name of SINCE, a function of the run giving the time from
    which the server's memory is to be sampled (None: not yet), one median sample. Returns the
    samples and why the run was stopped early (None)."""
    got = {}
    while run.proc.poll() is None:
        if not any(peerlib.alive(p) for p in run.server.roots):
            run.kill()
            return got, "server exited"
        if time.time() > deadline:
            run.kill()
            return got, "timed out after %d s" % (time.time() - run.t0)
        for name, when in since.items():
            t = when(run)
            if name not in got and t is not None and time.time() >= t:
                got[name] = peerlib.rss_median(run.server.roots)
                got[name + "_by_process"] = rss_by_process(run.server.roots)
        run.usage.sample()
        time.sleep(0.25)
    run.reader.join(10)
    if run.proc.returncode != 0:
        return got, "loadgen exited with status %d" % run.proc.returncode
    return got, None


def rss_by_process(roots):
    """{process name: resident KiB} of the server's processes (jabshard: front and SM apart)."""
    out = {}
    for pid in peerlib.server_pids(roots):
        try:
            with open("/proc/%d/comm" % pid) as f:
                name = f.read().strip()
        except OSError:
            continue
        out[name] = out.get(name, 0) + peerlib.rss_kib([pid])
    return out


def start_run(o, server, tag, argv):
    ready = os.path.join(o.out, "ready-" + tag)
    if os.path.exists(ready):
        os.unlink(ready)
    os.makedirs(os.path.join(o.out, "logs"), exist_ok=True)
    logpath = os.path.join(o.out, "logs", tag + ".log")
    return LoadgenRun(argv + ["--ready-file", ready], logpath, server, ready, o.settle_seconds,
                      nice=o.loadgen_nice), ready


def sm_figures(run, r, users):
    sm = run.lines.get("sm") or {}
    r["sm"] = sm
    if sm.get("enabled", 0) < users:
        r["failed"] = "0198 enabled for %s of %d users" % (sm.get("enabled"), users)


def scenario_rate(o, server, r, tag):
    n, rate = o.sm_rate_sessions, o.sm_rate
    r.update(sessions=n, rate=rate, ack_every=o.sm_ack_every)
    for mode in ("without", "with"):
        argv = loadgen_argv(o, server, n, 3) + [
            "--rates", str(rate), "--round-seconds", str(o.round_seconds), "--drain-seconds", "15"]
        if mode == "with":
            argv += ["--sm", "--sm-ack-every", str(o.sm_ack_every)]
        run, _ = start_run(o, server, "%s-%s" % (tag, mode), argv)
        why = run.wait(time.time() + 120 + n / 20.0 + o.round_seconds + 40)
        if why or not run.rounds:
            raise RuntimeError("%s 0198: %s" % (mode, why or "no round line"))
        rnd = run.rounds[0]
        r[mode] = rnd
        if rnd.get("delivered", 0) < rnd.get("sent", 0):
            r["failed"] = "%s 0198: %s of %s delivered by the end of the drain (the server cannot " \
                "keep up; CPU per message overstated)" % (mode, rnd.get("delivered"), rnd.get("sent"))
        if rnd.get("delivered"):
            r["cpu_us_" + mode] = rnd["server_cpu_s"] / rnd["delivered"] * 1e6
        if mode == "with":
            sm_figures(run, r, n)
        time.sleep(2)
    if r.get("cpu_us_with") and r.get("cpu_us_without"):
        r["cpu_ratio"] = r["cpu_us_with"] / r["cpu_us_without"]


def scenario_hibernate(o, server, r, tag):
    n = o.sm_hibernate_sessions
    cut_after = o.settle_seconds + 4
    hold = cut_after + o.settle_seconds + 6
    r.update(sessions=n)
    r["rss_before_kib"] = peerlib.rss_kib(peerlib.server_pids(server.roots))
    r["rss_before_by_process_kib"] = rss_by_process(server.roots)
    argv = loadgen_argv(o, server, n, hold) + [
        "--sm", "--cut-after", str(cut_after), "--cut-return", "never"]
    run, ready = start_run(o, server, tag, argv)
    ready_at = []

    def live(run):
        if not ready_at and os.path.exists(ready):
            ready_at.append(time.time())
        return ready_at[0] + o.settle_seconds if ready_at else None

    def hibernated(run):
        return run.marks["cut"] + o.settle_seconds if "cut" in run.marks else None

    got, why = watch(run, time.time() + 120 + n / 20.0 + hold + 30,
                     {"live": live, "hibernated": hibernated})
    if why:
        raise RuntimeError(why)
    sm_figures(run, r, n)
    cut = (run.lines.get("cut") or {}).get("users", 0)
    r["cut"] = cut
    for name in ("live", "hibernated"):
        if name in got:
            r["rss_%s_kib" % name] = got[name]
            r["rss_%s_by_process_kib" % name] = got[name + "_by_process"]
            if cut:
                r["rss_per_%s_kib" % name] = (got[name] - r["rss_before_kib"]) / cut


def scenario_storm(o, server, r, tag):
    n = o.sm_storm_sessions
    hold, before, after = 3, 10, 20   # the cut comes `before` s into a round of before + after s
    r.update(sessions=n, rate=o.sm_storm_rate)
    argv = loadgen_argv(o, server, n, hold) + [
        "--sm", "--cut-after", str(hold + before), "--cut-return", "0",
        "--rates", str(o.sm_storm_rate), "--round-seconds", str(before + after),
        "--drain-seconds", "15"]
    run, _ = start_run(o, server, tag, argv)
    why = run.wait(time.time() + 120 + n / 20.0 + hold + before + after + 60)
    if why:
        raise RuntimeError(why)
    sm_figures(run, r, n)
    sm = r["sm"]
    r["round"] = run.rounds[0] if run.rounds else {}
    r["cut"] = (run.lines.get("cut") or {}).get("users", 0)
    r["all_resumed_in_time"] = (r["cut"] > 0 and sm.get("resumed") == r["cut"] and
                                sm.get("last_resume_s", 1e9) <= TARGET_STORM_S)


RUNNERS = {"rate": scenario_rate, "hibernate": scenario_hibernate, "storm": scenario_storm}


def run_server(o, server, record):
    """Every selected scenario on SERVER, each result passed to RECORD as it is done."""
    has_sm = None
    for scen in o.sm_scenarios:
        r = {"server": server.name, "version": server.version(), "transport": "plain",
             "mechanism": o.mech, "label": "sm-" + scen,
             "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        if has_sm is False:
            r["no_sm"] = True
            record(r)
            continue
        tag = "sm-%s-%s" % (scen, server.name)
        peerlib.log("%s: XEP-0198 %s scenario" % (server.name, scen))

        def body(scen=scen, tag=tag, r=r):
            nonlocal has_sm
            has_sm = offers_sm(o, server)
            if has_sm:
                RUNNERS[scen](o, server, r, tag)
            else:
                r["no_sm"] = True

        on_fresh_server(o, server, r, tag, body)
        peerlib.log("%s: %s" % (server.name, summary(r)))
        record(r)


def on_fresh_server(o, server, r, tag, body, store=None):
    """Starts SERVER (on a copy of STORE, see peerlib.Server.start), waits until it logs a user in,
    runs BODY(), and stops it, keeping its logs under TAG; an exception is R's failure (with the
    server's log tail), not the run's end."""
    try:
        server.start(store=store)
        probe(o, server)
        time.sleep(3)
        body()
    except Exception as e:  # noqa: BLE001 - a failure is a result, not a crash
        r["failed"] = str(e)
    finally:
        server.stop()
        keep_server_logs(o, server, tag)
    if r.get("failed"):
        r["log_tail"] = server.log_tail(10)


def keep_server_logs(o, server, tag):
    keep = os.path.join(o.out, "logs", tag + "-server")
    if os.path.exists(keep):
        shutil.rmtree(keep)
    src = os.path.join(server.workdir, "run", "log")
    if os.path.isdir(src):
        shutil.copytree(src, keep)


# ---- reporting -------------------------------------------------------------------------------

def fmt(v, digits=0):
    return "-" if v is None else ("{:,.%df}" % digits).format(v)


def summary(r):
    if r.get("no_sm"):
        return NO_SM
    sm = r.get("sm") or {}
    parts = {"sm-rate": "CPU/msg %s µs without, %s µs with 0198" % (
                 fmt(r.get("cpu_us_without"), 1), fmt(r.get("cpu_us_with"), 1)),
             "sm-hibernate": "%s KiB per hibernated session" % fmt(r.get("rss_per_hibernated_kib"), 1),
             "sm-storm": "%s of %s resumed, last after %s s, p99 %s ms" % (
                 sm.get("resumed"), r.get("cut"), sm.get("last_resume_s"), sm.get("resume_p99_ms"))}
    s = parts.get(r["label"], "")
    return s + (" (FAILED: %s)" % r["failed"] if r.get("failed") else "")


def report_lines(results):
    """The XEP-0198 section of results.md (nothing when no such scenario ran)."""
    by = {}
    for r in results:
        if r.get("label", "").startswith("sm-"):
            by.setdefault(r["server"], {})[r["label"][3:]] = r
    if not by:
        return []
    out = ["", "XEP-0198 stream management (plain TCP; scenario_sm.py):", "",
           "| server | version | sessions (rate) | offered msg/s | CPU/msg without 0198 (µs) "
           "| CPU/msg with 0198 (µs) | with/without | lost, dup with 0198 | RSS/hibernated session "
           "(KiB) | RSS/live session (KiB) | storm: resumed of cut | last resume after cut (s) "
           "| resume p50 / p99 (ms) | storm round: sent, lost, dup | notes |",
           "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|---|"]
    for server, scen in by.items():
        rate, hib, storm = scen.get("rate", {}), scen.get("hibernate", {}), scen.get("storm", {})
        any_r = rate or hib or storm
        if any(s.get("no_sm") for s in scen.values()):
            out.append("| %s | %s | %s | | | | | | | | | | | | |" % (server, any_r.get("version"),
                                                                   NO_SM))
            continue
        w = rate.get("with") or {}
        ssm = storm.get("sm") or {}
        notes = "; ".join("%s: %s" % (k, v["failed"]) for k, v in scen.items() if v.get("failed"))
        sr = storm.get("round") or {}
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            server, any_r.get("version"), fmt(rate.get("sessions")), fmt(rate.get("rate")),
            fmt(rate.get("cpu_us_without"), 1), fmt(rate.get("cpu_us_with"), 1),
            fmt(rate.get("cpu_ratio"), 2),
            "%s, %s" % (w.get("lost", "-"), w.get("dup", "-")) if w else "-",
            fmt(hib.get("rss_per_hibernated_kib"), 1), fmt(hib.get("rss_per_live_kib"), 1),
            "%s of %s" % (ssm.get("resumed"), storm.get("cut")) if ssm else "-",
            fmt(ssm.get("last_resume_s"), 2),
            "%s / %s" % (fmt(ssm.get("resume_p50_ms"), 1), fmt(ssm.get("resume_p99_ms"), 1))
            if ssm else "-",
            "%s, %s, %s" % (sr.get("sent"), sr.get("lost"), sr.get("dup")) if sr else "-",
            notes.replace("|", "/")))
    out += ["", targets(by)]
    return out


def targets(by):
    """jabshard against the issue's targets, where it has figures."""
    ours = by.get("jabshard", {})
    if not ours or any(s.get("no_sm") for s in ours.values()):
        return "Targets: jabshard offers %s yet; nothing to compare." % NO_SM
    peers = {k: v for k, v in by.items() if k != "jabshard"}
    rate, hib, storm = ours.get("rate", {}), ours.get("hibernate", {}), ours.get("storm", {})
    peer_cpu = [p["rate"]["cpu_us_with"] for p in peers.values()
                if p.get("rate", {}).get("cpu_us_with")]
    peer_mem = [p["hibernate"]["rss_per_hibernated_kib"] for p in peers.values()
                if p.get("hibernate", {}).get("rss_per_hibernated_kib")]
    ssm = storm.get("sm") or {}
    cells = [
        ("0198 CPU cost ≤ %.2fx" % TARGET_CPU_RATIO, rate.get("cpu_ratio"),
         lambda v: v <= TARGET_CPU_RATIO),
        ("CPU/msg with 0198 vs leanest peer ≤ %.2f" % TARGET_CPU_VS_PEER,
         rate.get("cpu_us_with") / min(peer_cpu) if peer_cpu and rate.get("cpu_us_with") else None,
         lambda v: v <= TARGET_CPU_VS_PEER),
        ("hibernated memory vs leaner peer ≤ %.2f" % TARGET_HIBERNATED,
         hib.get("rss_per_hibernated_kib") / min(peer_mem)
         if peer_mem and hib.get("rss_per_hibernated_kib") is not None else None,
         lambda v: v <= TARGET_HIBERNATED),
        ("storm: last resume ≤ %g s" % TARGET_STORM_S, ssm.get("last_resume_s"),
         lambda v: v <= TARGET_STORM_S and storm.get("all_resumed_in_time")),
        ("resume p99 < %g ms" % TARGET_RESUME_P99_MS, ssm.get("resume_p99_ms"),
         lambda v: v < TARGET_RESUME_P99_MS),
    ]
    return "Targets, jabshard: " + "; ".join(
        "%s: %s" % (name, "-" if v is None else "%.2f %s" % (v, "met" if ok(v) else "NOT met"))
        for name, v, ok in cells) + "."
