"""tests/integration/test_front_flow.py — what one connection may send and receive, end to end with
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

Usage: test_front_flow.py BUILD_DIR. Prints ok/not ok lines and "front_flow: N passed, N failed".
"""
import re
import socket
import ssl
import threading
import time

from jabtest.proc import rss_kib
from jabtest.raw import Raw
from jabtest.suite import main
from jabtest.system import System

# The output-queue phase: above the kernel's own buffering (a socket's send buffer grows to
# tcp_wmem's 4 MiB), so that what the policy judges is really queued in the front.
OUTPUT_QUEUE = 1 << 20
OUTPUT_MAX = 32 << 20
OUTPUT_TIMEOUT = 1


def session(system, user, password, rcvbuf=None):
    """A bound session (PLAIN over direct TLS), read by hand; what it receives from then on is in
    its data."""
    s = Raw.connect(system.tls_port, tls=True, rcvbuf=rcvbuf, wait=20)
    s.login(user, password, "r")
    s.discard()
    return s


def message(sender, to, body):
    sender.send(f"<message to='{to}@localhost/r' type='chat'><body>{body}</body></message>")


def delivery_ms(sender, receiver, to, size, tag):
    """Sends a message of about size bytes; returns the milliseconds until it arrived whole, or
    None."""
    body = tag + ":" + "x" * (size - 120) + ":end-" + tag
    t0 = time.monotonic()
    try:
        message(sender, to, body)
    except OSError:       # the sender's stream was closed (a stanza over the limit)
        return None
    if not receiver.wait_for(f":end-{tag}</body>".encode(), 10):
        return None
    return (time.monotonic() - t0) * 1000


def defaults_body(r, system):
    if not system.start_pair(r, 2, ""):
        return
    alice = session(system, "u0", "pw0")
    bob = session(system, "u1", "pw1")
    for size, what in ((50000, "a 50 KB message"), (70000, "a 70 KB message"),
                       (260000, "a 260 KB message (stanza_size is 262,144)")):
        ms = delivery_ms(alice, bob, "u1", size, f"m{size}")
        r.check(f"default limits: {what} arrives promptly "
                f"({'lost' if ms is None else '%.0f ms' % ms})", ms is not None and ms < 1000)
    # From bob, whose bps_burst is whole; the stanza never ends, so the front reads all that was
    # sent before it closes (unread bytes would make the close a reset).
    bob.send(b"<message to='u0@localhost/r'><body>" + b"y" * 262200)
    closed = bob.read_to_close(10)
    r.check("default limits: a stanza over stanza_size closes the sender's stream with "
            "<policy-violation/>", closed and b"<policy-violation" in bob.data,
            repr(bob.data[-200:]))
    alice.close()
    bob.close()


def cut_logged(front, reason, port):
    return re.search(r"c2s output-cut addr=127\.0\.0\.1 port=%d reason=%s " % (port, reason),
                     front.text())


def slow_reader(r, system):
    reader = session(system, "u0", "pw0", rcvbuf=65536)
    sender = session(system, "u1", "pw1")
    count, size = 1024, 8192    # 8 MiB: eight times output_queue, past the kernel's buffers
    t0 = time.monotonic()
    threading.Thread(target=lambda: [message(sender, "u0", f"slow:{n}:" + "z" * size)
                                     for n in range(count)]).start()
    got = []
    data = b""
    pattern = re.compile(rb"slow:(\d+):")
    reader.sock.settimeout(5)
    # A few MiB a second at most: the burst takes seconds, output_timeout is one.
    while len(got) < count and time.monotonic() - t0 < 60:
        try:
            chunk = reader.sock.recv(65536)
        except (socket.timeout, OSError, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
        cut = data.rfind(b"</message>")
        if cut >= 0:
            got += [int(m.group(1)) for m in pattern.finditer(data, 0, cut)]
            data = data[cut:]
        time.sleep(1 / 200)
    elapsed = time.monotonic() - t0
    r.check(f"output queue: a client reading slower than a burst of 8 x output_queue arrives is "
            f"served all of it, in order ({len(got)} of {count} messages in {elapsed:.1f} s)",
            got == list(range(count)) and b"policy-violation" not in data,
            f"got {len(got)}, ending {data[-200:]!r}")
    r.check("output queue: ...which took longer than output_timeout (its progress counted)",
            elapsed > OUTPUT_TIMEOUT)
    reader.close()
    sender.close()


def non_reader(r, system):
    """Over output_queue, under output_max: cut output_timeout after it stopped making
    progress."""
    front = system.front()
    idle = session(system, "u2", "pw2", rcvbuf=4096)
    sender = session(system, "u3", "pw3")
    port = idle.sock.getsockname()[1]
    for n in range(1024):
        message(sender, "u2", f"idle:{n}:" + "q" * 8192)   # 8 MiB
    t0 = time.monotonic()
    while not cut_logged(front, "output_timeout", port) and time.monotonic() - t0 < 15:
        time.sleep(0.05)
    took = time.monotonic() - t0
    r.check(f"output queue: a client that does not read is cut output_timeout after its queue "
            f"stopped moving ({took:.1f} s after the burst was sent)",
            cut_logged(front, "output_timeout", port) and took < OUTPUT_TIMEOUT + 5)
    closed = idle.read_to_close(20)
    r.check("output queue: ...with <policy-violation/>",
            closed and b"<policy-violation" in idle.data, repr(idle.data[-200:]))
    idle.close()
    sender.close()


def output_body(r, system):
    limits = (f"<max_bps>0</max_bps><output_queue>{OUTPUT_QUEUE}</output_queue>"
              f"<output_max>{OUTPUT_MAX}</output_max><output_timeout>{OUTPUT_TIMEOUT}"
              f"</output_timeout>")
    if not system.start_pair(r, 4, limits):
        return
    slow_reader(r, system)
    non_reader(r, system)


def flood_body(r, system):
    """A flood far past output_max at a client that does not read: cut at once, and the front
    holds no more than its bounds while the flood goes through it. Headlines, which the SM drops
    once the session is gone (RFC 6121 §8.5.2), so that what the front holds is its output
    queue and not a backlog of the SM's offline storage."""
    if not system.start_pair(r, 2, "<max_bps>0</max_bps><output_queue>65536</output_queue>"):
        return
    front = system.front()
    victim = session(system, "u0", "pw0", rcvbuf=4096)
    sender = session(system, "u1", "pw1")
    port = victim.sock.getsockname()[1]
    rss_before = rss_kib(front.pid)
    peak = [rss_before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(front.pid))
            time.sleep(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()
    flood_mib = 48
    chunk = "f" * 8000
    t0 = time.monotonic()
    for n in range((flood_mib << 20) // len(chunk)):
        sender.send(f"<message to='u0@localhost/r' type='headline'><body>flood:{n}:"
                    f"{chunk}</body></message>")
    # The SM answers a ping after everything the sender sent before it went through.
    sender.send(b"<iq type='get' id='done' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    through = sender.wait_for(b"id='done'", 60) or b'id="done"' in sender.data
    stop.set()
    sampler.join()
    grew = (peak[0] - rss_before) / 1024
    r.check(f"output queue: a flood of {flood_mib} MiB at a client that does not read cuts it "
            f"at output_max (all through in {time.monotonic() - t0:.1f} s)",
            through and cut_logged(front, "output_max", port))
    system.check_memory(r, f"output queue: ...and the front's memory stays bounded (RSS grew "
                        f"{grew:.1f} MiB at most)", grew < flood_mib / 2,
                        f"{rss_before} KiB before, {peak[0]} KiB at the peak")
    closed = victim.read_to_close(10)
    r.check("output queue: ...with <policy-violation/>",
            closed and b"<policy-violation" in victim.data, repr(victim.data[-200:]))
    victim.close()
    sender.close()


def suite(report, build):
    for name, body in (("defaults", defaults_body), ("output", output_body),
                       ("flood", flood_body)):
        with System(build, "front_flow-%s" % name, report) as system:
            try:
                body(report, system)
            finally:
                system.stop_pair(report)


if __name__ == "__main__":
    main("front_flow", suite)
