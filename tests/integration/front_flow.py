#!/usr/bin/python3
"""tests/integration/front_flow.py — what one connection may send and receive, end to end with
the SM, over TLS:

1. with the default limits (no <limits> at all): a 50 KB message arrives promptly (max_bps paces
   only past bps_burst, which holds a stanza of the largest size), and so do a 70 KB message and
   one of nearly stanza_size (256 KiB), which the old 64 KiB default refused; one over
   stanza_size still closes the sender's stream with <policy-violation/>;
2. the output-queue policy (a small output_queue, output_timeout 1 s): a client that reads, but
   slower than a burst of eight times output_queue arrives, is served all of it; a client that
   does not read at all is cut with <policy-violation/> in bounded time, output_timeout after it
   passed output_queue, or at once past output_max, and the front's memory stays bounded while
   a flood far larger than output_max is sent its way.

Timing checks use generous bounds (a second where milliseconds are expected); nothing is decided
by sleeping.

Usage: front_flow.py BUILD_DIR. Prints ok/not ok lines and "front_flow: N passed, N failed".
"""
import os
import re
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import front_load as fl  # noqa: E402
from faultlib import MEMORY_UNDER_SANITIZER, sanitized  # noqa: E402

# The output-queue phase: above the kernel's own buffering (a socket's send buffer grows to
# tcp_wmem's 4 MiB), so that what the policy judges is really queued in the front.
OUTPUT_QUEUE = 1 << 20
OUTPUT_MAX = 32 << 20
OUTPUT_TIMEOUT = 1


class Session:
    """A bound session (PLAIN over direct TLS), read by hand."""

    def __init__(self, port, user, password, rcvbuf=None):
        self.c = fl.BlockingClient(port, user, password, rcvbuf)
        self.s = self.c.s
        self.data = b""

    def message(self, to, body):
        self.s.sendall(f"<message to='{to}@localhost/r' type='chat'><body>{body}</body>"
                       f"</message>".encode())

    def read_until(self, marker, seconds):
        """Reads until marker is in what arrived; False at end of stream or after seconds."""
        deadline = time.monotonic() + seconds
        while marker not in self.data:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, OSError, ssl.SSLError):
                return False
            if not chunk:
                return False
            self.data += chunk
        return True

    def read_to_end(self, seconds):
        """Everything until the server closes (True) or seconds pass (False)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return False
            except (OSError, ssl.SSLError):
                return True
            if not chunk:
                return True
            self.data += chunk

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def delivery_ms(sender, receiver, to, size, tag):
    """Sends a message of about size bytes; returns the milliseconds until it arrived whole, or
    None."""
    body = tag + ":" + "x" * (size - 120) + ":end-" + tag
    t0 = time.monotonic()
    try:
        sender.message(to, body)
    except OSError:       # the sender's stream was closed (a stanza over the limit)
        return None
    if not receiver.read_until(f":end-{tag}</body>".encode(), 10):
        return None
    return (time.monotonic() - t0) * 1000


def defaults_body(d):
    procs = []
    sub = os.path.join(d, "defaults")
    os.mkdir(sub)
    ports = fl.start_system(sub, 2, "", procs)
    try:
        if not ports:
            return
        alice = Session(ports["ssl"], "u0", "pw0")
        bob = Session(ports["ssl"], "u1", "pw1")
        for size, what in ((50000, "a 50 KB message"), (70000, "a 70 KB message"),
                           (260000, "a 260 KB message (stanza_size is 262,144)")):
            ms = delivery_ms(alice, bob, "u1", size, f"m{size}")
            fl.check(f"default limits: {what} arrives promptly "
                     f"({'lost' if ms is None else '%.0f ms' % ms})", ms is not None and ms < 1000)
        # From bob, whose bps_burst is whole; the stanza never ends, so the front reads all
        # that was sent before it closes (unread bytes would make the close a reset).
        bob.s.sendall(b"<message to='u0@localhost/r'><body>" + b"y" * 262200)
        closed = bob.read_to_end(10)
        fl.check("default limits: a stanza over stanza_size closes the sender's stream with "
                 "<policy-violation/>", closed and b"<policy-violation" in bob.data,
                 repr(bob.data[-200:]))
        alice.close()
        bob.close()
    finally:
        fl.stop_system(procs)


def cut_logged(log_path, reason, port):
    with open(log_path, errors="replace") as f:
        return re.search(r"c2s output-cut addr=127\.0\.0\.1 port=%d reason=%s " % (port, reason),
                         f.read())


def slow_reader(ports):
    reader = Session(ports["ssl"], "u0", "pw0", rcvbuf=65536)
    sender = Session(ports["ssl"], "u1", "pw1")
    count, size = 1024, 8192    # 8 MiB: eight times output_queue, past the kernel's buffers
    t0 = time.monotonic()
    threading.Thread(target=lambda: [sender.message("u0", f"slow:{n}:" + "z" * size)
                                     for n in range(count)]).start()
    got = []
    pattern = re.compile(rb"slow:(\d+):")
    reader.s.settimeout(5)
    # A few MiB a second at most: the burst takes seconds, output_timeout is one.
    while len(got) < count and time.monotonic() - t0 < 60:
        try:
            chunk = reader.s.recv(65536)
        except (socket.timeout, OSError, ssl.SSLError):
            break
        if not chunk:
            break
        reader.data += chunk
        cut = reader.data.rfind(b"</message>")
        if cut >= 0:
            got += [int(m.group(1)) for m in pattern.finditer(reader.data, 0, cut)]
            reader.data = reader.data[cut:]
        time.sleep(1 / 200)
    elapsed = time.monotonic() - t0
    fl.check(f"output queue: a client reading slower than a burst of 8 x output_queue arrives is "
             f"served all of it, in order ({len(got)} of {count} messages in {elapsed:.1f} s)",
             got == list(range(count)) and b"policy-violation" not in reader.data,
             f"got {len(got)}, ending {reader.data[-200:]!r}")
    fl.check("output queue: ...which took longer than output_timeout (its progress counted)",
             elapsed > OUTPUT_TIMEOUT)
    reader.close()
    sender.close()


def non_reader(ports, log_path):
    """Over output_queue, under output_max: cut output_timeout after it stopped making
    progress."""
    idle = Session(ports["ssl"], "u2", "pw2", rcvbuf=4096)
    sender = Session(ports["ssl"], "u3", "pw3")
    port = idle.s.getsockname()[1]
    for n in range(1024):
        sender.message("u2", f"idle:{n}:" + "q" * 8192)   # 8 MiB
    t0 = time.monotonic()
    while not cut_logged(log_path, "output_timeout", port) and time.monotonic() - t0 < 15:
        time.sleep(0.05)
    took = time.monotonic() - t0
    fl.check(f"output queue: a client that does not read is cut output_timeout after its queue "
             f"stopped moving ({took:.1f} s after the burst was sent)",
             cut_logged(log_path, "output_timeout", port) and took < OUTPUT_TIMEOUT + 5)
    closed = idle.read_to_end(20)
    fl.check("output queue: ...with <policy-violation/>",
             closed and b"<policy-violation" in idle.data, repr(idle.data[-200:]))
    idle.close()
    sender.close()


def output_body(d):
    procs = []
    sub = os.path.join(d, "output")
    os.mkdir(sub)
    limits = (f"<max_bps>0</max_bps><output_queue>{OUTPUT_QUEUE}</output_queue>"
              f"<output_max>{OUTPUT_MAX}</output_max><output_timeout>{OUTPUT_TIMEOUT}"
              f"</output_timeout>")
    ports = fl.start_system(sub, 4, limits, procs)
    try:
        if not ports:
            return
        slow_reader(ports)
        non_reader(ports, os.path.join(sub, "c2s.log"))
    finally:
        fl.stop_system(procs)


def flood_body(d):
    """A flood far past output_max at a client that does not read: cut at once, and the front
    holds no more than its bounds while the flood goes through it. Headlines, which the SM drops
    once the session is gone (RFC 6121 §8.5.2), so that what the front holds is its output
    queue and not a backlog of the SM's offline storage."""
    procs = []
    sub = os.path.join(d, "flood")
    os.mkdir(sub)
    ports = fl.start_system(sub, 2, "<max_bps>0</max_bps><output_queue>65536</output_queue>",
                            procs)
    try:
        if not ports:
            return
        log_path = os.path.join(sub, "c2s.log")
        c2s_pid = procs[-1].pid
        victim = Session(ports["ssl"], "u0", "pw0", rcvbuf=4096)
        sender = Session(ports["ssl"], "u1", "pw1")
        port = victim.s.getsockname()[1]
        rss_before = fl.rss_kib(c2s_pid)
        peak = [rss_before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], fl.rss_kib(c2s_pid))
                time.sleep(0.02)
        sampler = threading.Thread(target=sample)
        sampler.start()
        flood_mib = 48
        chunk = "f" * 8000
        t0 = time.monotonic()
        for n in range((flood_mib << 20) // len(chunk)):
            sender.s.sendall(f"<message to='u0@localhost/r' type='headline'><body>flood:{n}:"
                             f"{chunk}</body></message>".encode())
        # The SM answers a ping after everything the sender sent before it went through.
        sender.s.sendall(b"<iq type='get' id='done' to='localhost'>"
                         b"<ping xmlns='urn:xmpp:ping'/></iq>")
        through = sender.read_until(b"id='done'", 60) or b'id="done"' in sender.data
        stop.set()
        sampler.join()
        grew = (peak[0] - rss_before) / 1024
        fl.check(f"output queue: a flood of {flood_mib} MiB at a client that does not read cuts "
                 f"it at output_max (all through in {time.monotonic() - t0:.1f} s)",
                 through and cut_logged(log_path, "output_max", port))
        if sanitized(fl.BUILD):
            print(f"{MEMORY_UNDER_SANITIZER}: the front's memory under the flood "
                  f"(RSS grew {grew:.1f} MiB)")
        else:
            fl.check(f"output queue: ...and the front's memory stays bounded (RSS grew "
                     f"{grew:.1f} MiB at most)", grew < flood_mib / 2,
                     f"{rss_before} KiB before, {peak[0]} KiB at the peak")
        closed = victim.read_to_end(10)
        fl.check("output queue: ...with <policy-violation/>",
                 closed and b"<policy-violation" in victim.data, repr(victim.data[-200:]))
        victim.close()
        sender.close()
    finally:
        fl.stop_system(procs)


def body(d, procs):
    defaults_body(d)
    output_body(d)
    flood_body(d)


if __name__ == "__main__":
    sys.exit(fl.run("front_flow", body))
