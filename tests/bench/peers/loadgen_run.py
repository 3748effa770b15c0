# tests/bench/peers/loadgen_run.py: one load generator process under the peer benchmark: its
# stdout lines parsed as they come ("KIND key=value ..."), the server's CPU time sampled at each
# phase line and per round, its resident memory once the sessions are up, a deadline after which
# it is killed; and the probe that waits until a started server really logs a user in.
import os
import subprocess
import threading
import time

import peerlib


def parse_line(line):
    words = line.split()
    if not words:
        return None, {}
    fields = {}
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            try:
                fields[k] = float(v) if "." in v else int(v)
            except ValueError:
                fields[k] = v
    return words[0], fields


# The load generator's niceness while it logs users in: ahead of the server in the scheduler, so
# that the logins it is told to run are run even when the server's threads would take both cores
# and a rate it cannot keep up with (TLS handshakes are its heaviest work) is its own limit, not
# the scheduler's. Back to 0 for the message rounds, where its preempting the server only adds
# latency. The same for every server.
LOADGEN_LOGIN_NICE = -10


def login_priority():
    if os.geteuid() == 0:
        os.nice(LOADGEN_LOGIN_NICE)


def fixed_priority(nice):
    """--loadgen-nice: the load generator at that niceness throughout (a shared machine)."""
    return lambda: os.nice(nice - os.nice(0))


class LoadgenRun:
    """One loadgen process: its output parsed as it comes, resource samples of the server taken
    at the phase boundaries, and a deadline after which it is killed. NICE: a fixed niceness
    instead of the login priority."""

    def __init__(self, argv, logpath, server, ready_file, settle, nice=None):
        self.server, self.ready_file, self.settle = server, ready_file, settle
        self.nice = nice
        self.lines = {"login": None, "hold": None, "done": None}
        self.marks = {}   # when the cut and sm lines came
        self.rounds = []
        self.phase = "login"
        self.cpu = {}
        self.rss_after = None
        self.usage = peerlib.Usage(server.roots)
        self.cpu0 = self.usage.sample()
        self.cpu_mark = self.cpu0   # at the last hold or round line: each round's CPU is from there
        self.t0 = time.time()
        self.log = open(logpath, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, process_group=0,
                                     preexec_fn=login_priority if nice is None else
                                     fixed_priority(nice))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            kind, f = parse_line(line)
            if kind in ("login", "hold", "done"):
                self.lines[kind] = f
                now = self.usage.sample()
                self.cpu[kind] = now - self.cpu0
                self.cpu_mark = now
                self.phase = {"login": "hold", "hold": "rounds", "done": "done"}[kind]
                if kind == "login" and os.geteuid() == 0 and self.nice is None:
                    os.setpriority(os.PRIO_PROCESS, self.proc.pid, 0)   # single-threaded
            elif kind == "join":   # --muc: the joins, after the logins; rounds count from here
                self.lines[kind] = f
                now = self.usage.sample()
                self.cpu[kind] = now - self.cpu0
                self.cpu_mark = now
            elif kind in ("round", "pep", "muc"):
                # The server's CPU over the round (its sending and its drain); pep: a publish round;
                # muc: a groupchat round.
                self.marks[kind] = time.time()
                now = self.usage.sample()
                f["server_cpu_s"] = now - self.cpu_mark
                self.cpu_mark = now
                self.rounds.append(f)
            elif kind in ("cut", "sm", "linger"):   # --cut-after, --sm (scenario_sm.py), --hold-after
                self.lines[kind] = f
                self.marks[kind] = time.time()
                if kind == "linger":   # scenario_mam.py: the CPU of the rounds and the linger
                    self.cpu[kind] = self.usage.sample() - self.cpu0

    def wait(self, deadline):
        """Waits for loadgen to end, sampling memory once the sessions are up. Returns the reason
        it was stopped early, or None."""
        measured = False
        ready_at = None
        while self.proc.poll() is None:
            now = time.time()
            if not any(peerlib.alive(r) for r in self.server.roots):
                self.kill()
                return "server exited during %s" % self.phase
            if now > deadline:
                self.kill()
                return "timed out during %s after %d s" % (self.phase, now - self.t0)
            if ready_at is None and os.path.exists(self.ready_file):
                ready_at = now
                self.cpu["ready"] = self.usage.sample() - self.cpu0
            if ready_at is not None and not measured and now >= ready_at + self.settle:
                self.rss_after = peerlib.rss_median(self.server.roots)
                measured = True
            self.usage.sample()
            time.sleep(0.25)
        self.reader.join(10)
        self.cpu["total"] = self.usage.sample() - self.cpu0
        if self.proc.returncode != 0 and self.lines["done"] is None:
            return "loadgen exited with status %d during %s" % (self.proc.returncode, self.phase)
        return None

    def kill(self):
        peerlib.stop([self.proc.pid], grace=3)
        self.proc.wait()


def probe(o, server, seconds=90):
    """Logs user1 in once with loadgen until it works: a listening port is not yet a server that
    authenticates (ejabberd opens its ports before its SQL pool is up)."""
    deadline = time.time() + seconds
    argv = [o.loadgen_bin, "--host", "127.0.0.1", "--port", str(server.port), "--domain",
            "localhost", "--users", "1", "--mech", o.mech, "--tls", "none", "--timeout", "10"]
    while True:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and "ok=1 " in r.stdout:
                return
            why = (r.stdout + r.stderr).strip().splitlines()[-1:] or ["status %d" % r.returncode]
        except subprocess.TimeoutExpired:
            why = ["probe timed out"]
        if time.time() > deadline:
            raise RuntimeError("no login within %d s of listening: %s" % (seconds, why[0]))
        time.sleep(1)
