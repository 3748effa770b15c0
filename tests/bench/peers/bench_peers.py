#!/usr/bin/python3
# tests/bench/peers/bench_peers.py: "make bench-peers". Runs the same loadgen scenario against
# jabshard, Prosody, ejabberd and jabberd2, one after another, each started fresh on its own
# loopback ports with the same bulk-created users, and records per server and scenario: logins/s,
# resident memory per idle session (all the server's processes, during the hold minus before the
# logins), the highest delivered message rate with p99 under the latency bound, and CPU seconds.
# The XEP-0198 scenarios (scenario_sm.py) follow, per server, then the PEP fan-out
# (scenario_pep.py), then message archiving off and on (scenario_mam.py), then group chat fan-out
# (scenario_muc.py), then web clients: XMPP over WebSocket (scenario_web.py) and HTTP File Upload
# throughput (scenario_upload.py), then federation (scenario_s2s.py: jabshard against Prosody and
# ejabberd over s2s, in a network namespace of its own).
# Writes OUT/results.json (every run, appended as it finishes), OUT/results.md, OUT/rate.png and
# OUT/memory.png; --publish copies the last three to docs/perf/. A server that fails to start,
# crashes or stalls is stopped by PID and marked failed with the reason; the run goes on.
#
# Options may also be given as environment variables: --sessions as BENCH_PEERS_SESSIONS, etc.
import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402
import scenario_mam  # noqa: E402
import scenario_muc  # noqa: E402
import scenario_pep  # noqa: E402
import scenario_s2s  # noqa: E402
import scenario_sm  # noqa: E402
import scenario_upload  # noqa: E402
import scenario_web  # noqa: E402
from loadgen_run import LoadgenRun, probe  # noqa: E402
from server_ejabberd import Ejabberd  # noqa: E402
from server_jabberd2 import Jabberd2  # noqa: E402
from server_jabshard import ROOT, Jabshard  # noqa: E402
from server_prosody import Prosody  # noqa: E402

SERVERS = {"jabshard": Jabshard, "prosody": Prosody, "ejabberd": Ejabberd, "jabberd2": Jabberd2}
# Each server's plain port from --port-base; direct TLS is the next port, helpers above that.
PORT_OFFSETS = {"jabshard": 0, "prosody": 1000, "ejabberd": 2000, "jabberd2": 3000}
TRANSPORTS = ("plain", "tls")
DEFAULT_RATES = "2000,4000,6000,8000,12000,16000,24000,32000,40000,48000,64000"
TARGETS = {"memory": 0.25, "logins": 5.0, "rate": 5.0}


def options(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(description="jabshard side by side with Prosody, ejabberd and "
                                "jabberd2 (docs/performance.md).")
    p.add_argument("--servers", default=env("BENCH_PEERS_SERVERS", ",".join(SERVERS)))
    p.add_argument("--sessions", default=env("BENCH_PEERS_SESSIONS", "5000,19000"),
                   help="idle session counts, one scenario each")
    p.add_argument("--transports", default=env("BENCH_PEERS_TRANSPORTS", "plain,tls"))
    p.add_argument("--tls-mode", default=env("BENCH_PEERS_TLS_MODE", "starttls"),
                   choices=("starttls", "direct"), help="how the tls transport is set up")
    p.add_argument("--rates", default=env("BENCH_PEERS_RATES", DEFAULT_RATES),
                   help="offered message rates, ascending; a server stops at its first failure")
    p.add_argument("--round-seconds", type=int, default=int(env("BENCH_PEERS_ROUND_SECONDS", "10")))
    p.add_argument("--hold-seconds", type=int, default=int(env("BENCH_PEERS_HOLD_SECONDS", "20")),
                   help="idle hold after the logins, during which memory is measured")
    p.add_argument("--settle-seconds", type=int,
                   default=int(env("BENCH_PEERS_SETTLE_SECONDS", "8")),
                   help="wait after the last login before measuring memory")
    p.add_argument("--p99-ms", type=float, default=float(env("BENCH_PEERS_P99_MS", "50")))
    p.add_argument("--mech", default=env("BENCH_PEERS_MECH", "SCRAM-SHA-1"))
    p.add_argument("--hold-minutes", type=float, default=float(env("BENCH_PEERS_HOLD_MINUTES", "0")),
                   help="also hold the largest session count on jabshard this long (target: 10)")
    p.add_argument("--hold-only", action="store_true",
                   help="only the long hold (with --hold-minutes), no scenario runs")
    p.add_argument("--append", action="store_true",
                   help="add to OUT/results.json and report on all of it, instead of starting anew")
    p.add_argument("--port-base", type=int, default=int(env("BENCH_PEERS_PORT_BASE", "27222")))
    p.add_argument("--out", default=env("BENCH_PEERS_OUT", os.path.join(ROOT, "build", "bench-peers")))
    p.add_argument("--loadgen", default=env("BENCH_PEERS_LOADGEN",
                                            os.path.join(ROOT, "build", "default", "bench", "loadgen")))
    p.add_argument("--jabshard-build", default=env("BENCH_PEERS_JABSHARD_BUILD",
                                                   os.path.join(ROOT, "build", "default")))
    p.add_argument("--no-install", action="store_true", help="do not apt-get install what is missing")
    p.add_argument("--report-only", action="store_true",
                   help="remake results.md and the plots from OUT/results.json")
    p.add_argument("--publish", action="store_true",
                   help="copy results.md, rate.png and memory.png to docs/perf/")
    scenario_sm.add_options(p, env)
    scenario_pep.add_options(p, env)
    scenario_mam.add_options(p, env)
    scenario_muc.add_options(p, env)
    scenario_web.add_options(p, env)
    scenario_upload.add_options(p, env)
    scenario_s2s.add_options(p, env)
    o = p.parse_args(argv)
    scenario_sm.check_options(p, o)
    scenario_pep.check_options(p, o)
    scenario_mam.check_options(p, o)
    scenario_muc.check_options(p, o)
    scenario_web.check_options(p, o)
    scenario_upload.check_options(p, o)
    scenario_s2s.check_options(p, o)
    if o.sm_only + o.pep_only + o.mam_only + o.muc_only + o.web_only + o.s2s_only > 1:
        p.error("at most one of --sm-only, --pep-only, --mam-only, --muc-only, --web-only and "
                "--s2s-only")
    o.servers = [s for s in o.servers.split(",") if s]
    for s in o.servers:
        if s not in SERVERS:
            p.error("unknown server %r (known: %s)" % (s, ", ".join(SERVERS)))
    o.sessions = [int(x) for x in o.sessions.split(",") if x]
    o.transports = [t for t in o.transports.split(",") if t]
    for t in o.transports:
        if t not in TRANSPORTS:
            p.error("unknown transport %r" % t)
    o.rates = [int(x) for x in o.rates.split(",") if x]
    return o


# ---- one run ---------------------------------------------------------------------------------

def best_rate(rounds, p99_ms):
    """The highest delivered rate of a round that kept p99 under the bound and delivered at least
    95% of what was offered, and the offered rate of the first round that did not (None)."""
    best, failed_at = 0.0, None
    for r in rounds:
        ok = (r.get("p99_ms", 1e9) < p99_ms and r.get("rate", 0) >= 0.95 * r.get("offered", 0)
              and r.get("errored", 0) == 0)
        if ok:
            best = max(best, float(r.get("rate", 0)))
        elif failed_at is None:
            failed_at = r.get("offered")
    return best, failed_at


def cpu_per_message(rounds, best):
    """The server's CPU time per delivered message in the round that set the best rate (or the
    first round when none passed), in microseconds."""
    chosen = [r for r in rounds if best and float(r.get("rate", 0)) == best] or rounds[:1]
    if not chosen or not chosen[0].get("delivered") or chosen[0].get("server_cpu_s") is None:
        return None
    return chosen[0]["server_cpu_s"] / chosen[0]["delivered"] * 1e6


def run_one(o, server, sessions, transport, hold_seconds, rates, label, port=None, extra=()):
    """One server start and one load generator run: TRANSPORT plain or tls (o.tls_mode) on the
    server's XMPP ports, or websocket (PORT and EXTRA: loadgen's --transport websocket options);
    PORT, when given, instead of the transport's port; EXTRA appended to loadgen's arguments."""
    result = {"server": server.name, "version": server.version(), "transport": transport,
              "tls_mode": o.tls_mode if transport == "tls" else "none", "mechanism": o.mech,
              "sessions": sessions, "label": label, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    logdir = os.path.join(o.out, "logs")
    os.makedirs(logdir, exist_ok=True)
    tag = "%s-%s-%d-%s" % (label, server.name, sessions, transport)
    peerlib.log("%s: %d sessions, %s" % (server.name, sessions, transport))
    ready = os.path.join(o.out, "ready-" + tag)
    try:
        server.start()
        probe(o, server)
    except Exception as e:  # noqa: BLE001 - any start failure is a result, not a crash
        server.stop()
        result.update(failed="start: %s" % e, log_tail=server.log_tail())
        return result
    try:
        time.sleep(3)
        result["rss_before_kib"] = peerlib.rss_kib(peerlib.server_pids(server.roots))
        result["processes"] = len(peerlib.server_pids(server.roots))
        if os.path.exists(ready):
            os.unlink(ready)
        tls = o.tls_mode if transport == "tls" else "none"
        if port is None:
            port = server.tls_port if tls == "direct" else server.port
        # --warmup logs everyone in and out once before the measured logins: twice the logins.
        login_budget = 60 + 2 * sessions / 20.0
        budget = (login_budget + hold_seconds + len(rates) * (o.round_seconds + 5 + 15) + 60)
        argv = [o.loadgen_bin, "--host", "127.0.0.1", "--port", str(port), "--domain", "localhost",
                "--users", str(sessions), "--first", "1", "--user-format", "user%u",
                "--password-format", "pass%u", "--mech", o.mech, "--tls", tls,
                "--sources", "127.0.0.1-127.0.0.250", "--login-concurrency", "200", "--warmup",
                "--hold", str(hold_seconds), "--keepalive", "60",
                "--round-seconds", str(o.round_seconds), "--stop-p99-ms", "%g" % o.p99_ms,
                "--drain-seconds", "5", "--ready-file", ready, "--timeout", "60"]
        if rates:
            argv += ["--rates", ",".join(str(r) for r in rates)]
        argv += list(extra)
        run = LoadgenRun(argv, os.path.join(logdir, tag + ".log"), server, ready,
                         o.settle_seconds)
        why = run.wait(time.time() + budget + 30)
        login, hold = run.lines["login"] or {}, run.lines["hold"] or {}
        result.update(login=login, hold=hold, rounds=run.rounds, done=run.lines["done"],
                      cpu=run.cpu, rss_after_kib=run.rss_after)
        if login:
            result["logins_per_s"] = login.get("rate")
            result["login_p99_ms"] = login.get("p99_ms")
        ok = login.get("ok", 0)
        if run.rss_after is not None and ok:
            result["rss_per_session_kib"] = (run.rss_after - result["rss_before_kib"]) / ok
        if rates:
            result["best_rate"], result["failed_at"] = best_rate(run.rounds, o.p99_ms)
            result["cpu_us_per_msg"] = cpu_per_message(run.rounds, result["best_rate"])
        result["cpu_s"] = run.cpu.get("total")
        if why:
            result["failed"] = why
        elif login.get("failed", 0):
            result["failed"] = "%d of %d logins failed" % (login["failed"], sessions)
        elif not login:
            result["failed"] = "no login line from loadgen"
        if not any(peerlib.alive(r) for r in server.roots):
            result["failed"] = result.get("failed") or "server exited"
        if result.get("failed"):
            result["log_tail"] = server.log_tail(10)
    finally:
        server.stop()
        if os.path.exists(ready):
            os.unlink(ready)
        keep = os.path.join(logdir, tag + "-server")
        if os.path.exists(keep):
            shutil.rmtree(keep)
        src = os.path.join(server.workdir, "run", "log")
        if os.path.isdir(src):
            shutil.copytree(src, keep)
    with open("/proc/loadavg") as f:
        result["loadavg"] = float(f.read().split()[0])
    peerlib.log("%s: %s" % (server.name, summary(result)))
    return result


def summary(r):
    if r.get("failed") and not r.get("logins_per_s"):
        return "FAILED: " + r["failed"]
    s = "logins/s %s, RSS/session %s KiB, best rate %s/s, CPU %s s" % (
        fmt(r.get("logins_per_s")), fmt(r.get("rss_per_session_kib"), 1), fmt(r.get("best_rate")),
        fmt(r.get("cpu_s"), 1))
    return s + (" (FAILED: %s)" % r["failed"] if r.get("failed") else "")


def fmt(v, digits=0):
    if v is None:
        return "-"
    return ("{:,.%df}" % digits).format(v)


# ---- the report ------------------------------------------------------------------------------

def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024 // 1024
    return "%d cores (%s), %d GiB, Linux %s" % (os.cpu_count(), cpu, mem, platform.release())


def report(o, results):
    runs = [r for r in results if r.get("label") == "scenario"]
    holds = [r for r in results if r.get("label") == "hold"]
    loads = [r["loadavg"] for r in results if "loadavg" in r]
    load = ("; 1-minute load average at the end of each run %.1f to %.1f (2 cores: above 2 means "
            "other work competed)" % (min(loads), max(loads))) if loads else ""
    out = ["# jabshard and its peers", "",
           "Machine: %s%s. Generated %s by `tests/bench/peers/bench_peers.py %s`." % (
               machine(), load, time.strftime("%Y-%m-%d %H:%M"), " ".join(o.argv)), ""]
    out += ["| server | version | transport | mechanism | sessions | logins/s | login p99 (ms) "
            "| RSS/session (KiB) | best rate, p99 < %g ms (msg/s) | p99 at first rate (ms) "
            "| server CPU per message (µs) | CPU s | notes |" % o.p99_ms,
            "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        transport = r["transport"] + (" (%s)" % r["tls_mode"] if r["transport"] == "tls" else "")
        notes = r.get("failed") or ""
        if r.get("failed_at") and not notes:
            notes = "first failing round: %s/s" % fmt(r["failed_at"])
        first = (r.get("rounds") or [{}])[0]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["server"], r["version"], transport, r["mechanism"], fmt(r["sessions"]),
            fmt(r.get("logins_per_s")), fmt(r.get("login_p99_ms"), 1),
            fmt(r.get("rss_per_session_kib"), 1), fmt(r.get("best_rate")),
            fmt(first.get("p99_ms"), 1), fmt(r.get("cpu_us_per_msg"), 1),
            fmt(r.get("cpu_s"), 1), notes.replace("|", "/")))
    out += ["", "Targets, jabshard against the best peer of the same scenario (ratio, target, met):",
            "", "| sessions | transport | memory/session vs leanest (≤ %.2f) | logins/s vs fastest "
            "(≥ %g) | best rate vs best (≥ %g) | CPU per message vs leanest (no target) |" % (
                TARGETS["memory"], TARGETS["logins"], TARGETS["rate"]),
            "|---:|---|---|---|---|---|"]
    for sessions in sorted({r["sessions"] for r in runs}):
        for transport in TRANSPORTS:
            group = [r for r in runs if r["sessions"] == sessions and r["transport"] == transport]
            ours = [r for r in group if r["server"] == "jabshard" and not r.get("failed")]
            peers = [r for r in group if r["server"] != "jabshard" and not r.get("failed")]
            if not group:
                continue
            cells = []
            for key, better, target in (("rss_per_session_kib", min, TARGETS["memory"]),
                                        ("logins_per_s", max, TARGETS["logins"]),
                                        ("best_rate", max, TARGETS["rate"]),
                                        ("cpu_us_per_msg", min, None)):
                vals = [p[key] for p in peers if p.get(key) is not None]
                if not ours or ours[0].get(key) is None or not vals:
                    cells.append("-")
                    continue
                ref = better(vals)
                who = [p["server"] for p in peers if p.get(key) == ref][0]
                if ref <= 0:
                    cells.append("- (%s: %s)" % (who, fmt(ref, 1)))
                    continue
                ratio = ours[0][key] / ref
                if target is None:
                    cells.append("%.2f (%s)" % (ratio, who))
                    continue
                met = ratio <= target if better is min else ratio >= target
                cells.append("%.2f (%s) %s" % (ratio, who, "yes" if met else "no"))
            out.append("| %s | %s | %s |" % (fmt(sessions), transport, " | ".join(cells)))
    if holds:
        out += ["", "Long hold, jabshard alone:", ""]
        for r in holds:
            h = r.get("hold") or {}
            lost = (r["sessions"] - h.get("connected", 0)) + h.get("dropped", 0) if h else None
            out.append("- %s sessions over %s s on one front process (%s transport): connected %s, "
                       "dropped %s: %s" % (
                           fmt(r["sessions"]), fmt(h.get("seconds")), r["transport"],
                           fmt(h.get("connected")), fmt(h.get("dropped")),
                           "met" if h and not r.get("failed") and lost == 0 else
                           "NOT met (%s)" % (r.get("failed") or "%s lost" % lost)))
    out += scenario_sm.report_lines(results)
    out += scenario_pep.report_lines(results)
    out += scenario_mam.report_lines(results)
    out += scenario_muc.report_lines(results)
    out += scenario_web.report_lines(results, o.p99_ms)
    out += scenario_upload.report_lines(results)
    out += scenario_s2s.report_lines(results, o.p99_ms)
    out += ["", "Every run's load generator output and server logs: build/bench-peers/logs/; all "
            "figures and rounds: build/bench-peers/results.json.", ""]
    path = os.path.join(o.out, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(out))
    if runs:
        plots(o, runs)
    return path


def plots(o, runs):
    data = os.path.join(o.out, "plotdata")
    if os.path.exists(data):
        shutil.rmtree(data)
    os.makedirs(data)
    scenarios = []
    for r in runs:
        scen = "%d-%s" % (r["sessions"], r["transport"])
        if scen not in scenarios:
            scenarios.append(scen)
        if r.get("rounds"):
            with open(os.path.join(data, "rate-%s-%s.dat" % (scen, r["server"])), "w") as f:
                f.write("# offered delivered_rate p99_ms\n")
                for x in r["rounds"]:
                    f.write("%s %s %s\n" % (x.get("offered"), x.get("rate"), x.get("p99_ms")))
    servers = [s for s in SERVERS if any(r["server"] == s for r in runs)]
    for s in servers:
        for t in TRANSPORTS:
            mine = [r for r in runs if r["server"] == s and r["transport"] == t
                    and r.get("rss_after_kib") is not None]
            if not mine:
                continue
            base = sum(r["rss_before_kib"] for r in mine) / len(mine)
            with open(os.path.join(data, "memory-%s-%s.dat" % (s, t)), "w") as f:
                f.write("# sessions rss_mib\n0 %.1f\n" % (base / 1024))
                for r in sorted(mine, key=lambda r: r["sessions"]):
                    f.write("%d %.1f\n" % (r["login"].get("ok", r["sessions"]),
                                           r["rss_after_kib"] / 1024))
    gp = os.path.join(peerlib.HERE, "plot.gp")
    r = subprocess.run(["gnuplot", "-e", "datadir='%s'; outdir='%s'; scenarios='%s'; servers='%s'; "
                        "p99='%g'" % (data, o.out, " ".join(scenarios), " ".join(servers), o.p99_ms),
                        gp], capture_output=True, text=True)
    if r.returncode != 0:
        peerlib.log("gnuplot failed: " + r.stderr.strip()[-500:])


BEGIN, END = "<!-- bench-peers results: begin -->", "<!-- bench-peers results: end -->"


def publish(o):
    """Copies results.md and the plots to docs/perf/ and puts the tables and the plots between the
    markers of docs/performance.md."""
    dest = os.path.join(ROOT, "docs", "perf")
    os.makedirs(dest, exist_ok=True)
    for name in ("results.md", "rate.png", "memory.png"):
        src = os.path.join(o.out, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(dest, name))
    doc = os.path.join(ROOT, "docs", "performance.md")
    with open(doc) as f:
        text = f.read()
    with open(os.path.join(o.out, "results.md")) as f:
        table = f.read().split("\n", 1)[1]  # less its title
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + BEGIN + "\n" + table.strip() + "\n\n![delivered rate and p99 against offered " \
            "rate](perf/rate.png)\n\n![memory against sessions](perf/memory.png)\n" + END + \
            rest.split(END, 1)[1]
        with open(doc, "w") as f:
            f.write(text)
    else:
        peerlib.log("%s has no results markers; left alone" % doc)
    peerlib.log("published to " + dest)


# ---- main ------------------------------------------------------------------------------------

def load_results(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv):
    o = options(argv)
    o.argv = argv
    os.makedirs(o.out, exist_ok=True)
    results_path = os.path.join(o.out, "results.json")
    if o.report_only:
        peerlib.log("wrote " + report(o, load_results(results_path)))
        if o.publish:
            publish(o)
        return 0

    servers = []
    for name in [] if o.s2s_only else o.servers:   # the federation scenario starts its own
        cls = SERVERS[name]
        s = cls(o.out, os.path.join(o.out, "cert"), o.port_base + PORT_OFFSETS[name])
        if name == "jabshard":
            s.source_build = o.jabshard_build
        servers.append(s)
    if not o.no_install:
        packages = ["gnuplot-nox"] + [p for s in servers for p in s.packages]
        users = [s.user for s in servers if s.user]
        if scenario_s2s.selected(o):
            packages += scenario_s2s.PACKAGES
            users += scenario_s2s.PEERS
        peerlib.ensure_packages(list(dict.fromkeys(packages)), list(dict.fromkeys(users)))
    if not os.access(o.loadgen, os.X_OK):
        peerlib.log("%s is not built: make -j2 all (tests/bench/loadgen/)" % o.loadgen)
        return 2
    # A private copy: the build tree may be rebuilt while the benchmark runs.
    os.makedirs(os.path.join(o.out, "bin"), exist_ok=True)
    o.loadgen_bin = os.path.join(o.out, "bin", "loadgen")
    shutil.copy2(o.loadgen, o.loadgen_bin)

    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    results = []
    if o.append:
        results = load_results(results_path)
    elif os.path.exists(results_path):
        os.rename(results_path, results_path + ".previous")

    def record(r):
        results.append(r)
        with open(results_path, "a") as f:
            f.write(json.dumps(r) + "\n")
        report(o, results)

    try:
        peerlib.certificate(os.path.join(o.out, "cert"))
        only = o.sm_only or o.pep_only or o.mam_only or o.muc_only or o.web_only or o.s2s_only
        sm = not (o.pep_only or o.mam_only or o.muc_only or o.web_only or o.s2s_only)
        need = max(([] if only else o.sessions) + (scenario_sm.sessions_needed(o) if sm else [])
                   + scenario_pep.sessions_needed(o) + scenario_mam.sessions_needed(o)
                   + scenario_muc.sessions_needed(o) + scenario_web.sessions_needed(o)
                   + scenario_upload.sessions_needed(o) + [1])
        creds = peerlib.credentials(need, os.path.join(o.out, "credentials.tsv"))
        for s in servers:
            s.prepare(creds)
        plan = [] if o.hold_only or only else [(n, t, s) for n in o.sessions for t in o.transports
                                       for s in servers]
        for i, (n, t, s) in enumerate(plan):
            peerlib.log("run %d of %d" % (i + 1, len(plan)))
            r = run_one(o, s, n, t, max(o.hold_seconds, o.settle_seconds + 5), o.rates, "scenario")
            record(r)
        if not o.hold_only and sm:
            for s in servers:
                scenario_sm.run_server(o, s, record)
        for s in servers:
            scenario_pep.run_server(o, s, record)
        for s in servers:
            scenario_mam.run_server(o, s, record)
        for s in servers:
            scenario_muc.run_server(o, s, record)
        for s in servers:
            scenario_web.run_server(o, s, record, run_one)
        for s in servers:
            scenario_upload.run_server(o, s, record)
        for s in servers:
            s.stop()   # the federation scenario starts its own servers, one at a time
        scenario_s2s.run(o, record)
        if o.hold_minutes > 0:
            js = [s for s in servers if s.name == "jabshard"]
            if js:
                r = run_one(o, js[0], need, o.transports[0], int(o.hold_minutes * 60), [], "hold")
                record(r)
            else:
                peerlib.log("--hold-minutes: jabshard is not among --servers; no hold")
    except KeyboardInterrupt:
        peerlib.log("interrupted; stopping")
    finally:
        for s in servers:
            s.stop()
    path = report(o, results)
    peerlib.log("wrote %s, rate.png, memory.png" % path)
    if o.publish:
        publish(o)
    with open(path) as f:
        print(f.read())
    return 1 if stopping else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
