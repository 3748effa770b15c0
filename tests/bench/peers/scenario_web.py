# tests/bench/peers/scenario_web.py: web clients, XMPP over WebSocket (RFC 7395), in the peer
# benchmark, after the group chat scenario. Per server with a web listener (peerlib.Server.web:
# jabshard, Prosody's mod_websocket, ejabberd's ejabberd_http_ws; not jabberd2), on a freshly
# started server each time, the TCP scenario's measurements (bench_peers.run_one: --warmup, the
# measured logins, an idle hold with the memory sample, then message rounds at stepped rates until
# one misses p99 < --p99-ms or 95% delivery) twice: over plain TCP, the baseline of the same run,
# then over ws:// on the server's HTTP port (loadgen --transport websocket --ws-path, the server's
# WebSocket path). Per server and transport: logins/s, RSS per idle session, the best rate and the
# server's CPU per delivered message at each rate. Reported as in results.md's main table: jabshard
# over WebSocket against the leaner (faster) peer over WebSocket, and each server's WebSocket
# figure against its own TCP one.
import peerlib
from scenario_muc import at_rate
from scenario_sm import fmt

LABEL = "web"
TRANSPORTS = ("plain", "websocket")


def add_options(p, env):
    p.add_argument("--web-only", action="store_true",
                   help="only the web client scenarios (WebSocket, and uploads unless --no-upload)")
    p.add_argument("--no-web", action="store_true", help="leave the WebSocket scenario out")
    p.add_argument("--web-sessions", type=int, default=int(env("BENCH_PEERS_WEB_SESSIONS", "5000")),
                   help="idle WebSocket sessions (each is a descriptor at the server and at the "
                   "load generator: at most 19,000 under the 20,000 open-file limit)")
    p.add_argument("--web-rates", default=env("BENCH_PEERS_WEB_RATES",
                                              "500,1000,2000,4000,8000,16000,24000,32000"),
                   help="offered message rates of the WebSocket scenario, ascending")
    p.add_argument("--web-transports", default=env("BENCH_PEERS_WEB_TRANSPORTS",
                                                   ",".join(TRANSPORTS)),
                   help="plain (the TCP baseline of the same run) and/or websocket")


def check_options(p, o):
    if o.web_only and o.no_web and getattr(o, "no_upload", False):
        p.error("--web-only with both --no-web and --no-upload")
    try:
        o.web_rate_list = [int(x) for x in o.web_rates.split(",") if x]
    except ValueError:
        p.error("--web-rates: numbers")
    o.web_transport_list = [t for t in o.web_transports.split(",") if t]
    for t in o.web_transport_list:
        if t not in TRANSPORTS:
            p.error("unknown --web-transports entry %r (known: %s)" % (t, ", ".join(TRANSPORTS)))
    if not 1 <= o.web_sessions <= 19000:
        p.error("--web-sessions: 1 to 19,000")


def others_only(o):
    """Another scenario's --X-only is given: this one stays out."""
    return o.sm_only or o.pep_only or o.mam_only or o.muc_only or o.hold_only or o.s2s_only


def selected(o):
    return not (o.no_web or others_only(o))


def sessions_needed(o):
    return [o.web_sessions] if selected(o) else []


def run_server(o, server, record, run_one):
    """The WebSocket scenario on SERVER (plain TCP first, as its baseline), each result passed to
    RECORD. RUN_ONE is bench_peers.run_one."""
    if not selected(o):
        return
    for transport in o.web_transport_list:
        if not server.web:
            r = {"server": server.name, "version": server.version(), "transport": transport,
                 "label": LABEL, "sessions": o.web_sessions,
                 "failed": "no web listener in this benchmark's configuration"}
            record(r)
            continue
        extra, port = [], None
        if transport == "websocket":
            extra = ["--transport", "websocket", "--ws-path", server.ws_path]
            port = server.http_port
            peerlib.log("%s: WebSocket at %s" % (server.name, server.ws_url()))
        r = run_one(o, server, o.web_sessions, transport,
                    max(o.hold_seconds, o.settle_seconds + 5), o.web_rate_list, LABEL,
                    port=port, extra=extra)
        if transport == "websocket":
            r["ws_url"] = server.ws_url()
        for m in r.get("rounds") or []:
            if m.get("delivered") and m.get("server_cpu_s") is not None:
                m["cpu_us_per_msg"] = m["server_cpu_s"] / m["delivered"] * 1e6
        record(r)


# ---- reporting -------------------------------------------------------------------------------

def delivered(m):
    """Round M delivered (nearly) all it offered, late or not: its CPU per message is whole."""
    return m.get("rate", 0) >= 0.95 * m.get("offered", 0) and not m.get("errored")


def common_rate(rows):
    """The highest offered rate at which every row ran a round that delivered what it offered,
    whatever its p99 (None when there is none): CPU per message compared at the same load, fixed
    costs (timers, keepalives) spread over as many messages."""
    sets = [set(m.get("offered") for m in r.get("rounds") or [] if delivered(m)) for r in rows]
    common = set.intersection(*sets) if sets else set()
    return max(common) if common else None


def ratio_cell(ours, peers, key, better):
    """jabshard's figure against the leaner/faster peer's: "0.25 (prosody)", or "-"."""
    vals = [(p[key], p["server"]) for p in peers if p.get(key)]
    if ours is None or ours.get(key) is None or not vals:
        return "-"
    ref, who = better(vals)
    return "%.2f (%s)" % (ours[key] / ref, who)


def report_lines(results, p99_ms):
    """The web clients section of results.md (nothing when it did not run)."""
    rows = [r for r in results if r.get("label") == LABEL]
    if not rows:
        return []
    out = ["", "Web clients, XMPP over WebSocket (ws:// on each server's HTTP port; scenario_web.py; "
           "plain TCP is the same run's baseline):", "",
           "| server | version | transport | sessions | logins/s | login p99 (ms) "
           "| RSS/session (KiB) | best rate, p99 < %g ms (msg/s) | CPU per message at the best "
           "rate (µs) | CPU per message per round (msg/s: µs, p99 ms) | notes |" % p99_ms,
           "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        steps = ", ".join("%s: %s, %s" % (fmt(m.get("offered")), fmt(m.get("cpu_us_per_msg"), 1),
                                          fmt(m.get("p99_ms"), 1)) for m in r.get("rounds") or [])
        notes = r.get("failed") or ""
        if r.get("failed_at") and not notes:
            notes = "first failing round: %s/s" % fmt(r["failed_at"])
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["server"], r.get("version"), r["transport"], fmt(r.get("sessions")),
            fmt(r.get("logins_per_s")), fmt(r.get("login_p99_ms"), 1),
            fmt(r.get("rss_per_session_kib"), 1), fmt(r.get("best_rate")),
            fmt(r.get("cpu_us_per_msg"), 1), steps, notes.replace("|", "/")))
    ws = [r for r in rows if r["transport"] == "websocket" and not r.get("failed")]
    ours = next((r for r in ws if r["server"] == "jabshard"), None)
    peers = [r for r in ws if r["server"] != "jabshard"]
    rate = common_rate(ws) if ws else None
    for r in ws:
        m = at_rate(r, rate) if rate else {}
        r["cpu_us_common"] = m.get("cpu_us_per_msg")
    out += ["", "jabshard over WebSocket against the peers over WebSocket (ratio, and the peer it is "
            "against):", "",
            "| memory/session vs leanest | logins/s vs fastest | best rate vs best | CPU per message "
            "at the best rate vs leanest | CPU per message at the common rate (%s msg/s) vs "
            "leanest |" % (fmt(rate) if rate else "none"),
            "|---|---|---|---|---|",
            "| %s | %s | %s | %s | %s |" % (
                ratio_cell(ours, peers, "rss_per_session_kib", min),
                ratio_cell(ours, peers, "logins_per_s", max),
                ratio_cell(ours, peers, "best_rate", max),
                ratio_cell(ours, peers, "cpu_us_per_msg", min),
                ratio_cell(ours, peers, "cpu_us_common", min))]
    out += ["", "Each server over WebSocket against itself over plain TCP in this run (WebSocket / "
            "TCP):", "", "| server | memory/session | logins/s | best rate | CPU per message at "
            "the common rate of its two runs |", "|---|---|---|---|---|"]
    for server in dict.fromkeys(r["server"] for r in rows):
        tcp = next((r for r in rows if r["server"] == server and r["transport"] == "plain"), None)
        web = next((r for r in rows if r["server"] == server and r["transport"] == "websocket"),
                   None)
        if not tcp or not web or tcp.get("failed") and not tcp.get("logins_per_s"):
            continue
        both = common_rate([tcp, web])
        cells = []
        for a, b in ((web.get("rss_per_session_kib"), tcp.get("rss_per_session_kib")),
                     (web.get("logins_per_s"), tcp.get("logins_per_s")),
                     (web.get("best_rate"), tcp.get("best_rate")),
                     (at_rate(web, both).get("cpu_us_per_msg") if both else None,
                      at_rate(tcp, both).get("cpu_us_per_msg") if both else None)):
            cells.append("%.2f" % (a / b) if a and b else "-")
        if both:
            cells[3] += " (at %s msg/s)" % fmt(both)
        out.append("| %s | %s |" % (server, " | ".join(cells)))
    return out

