"""tests/integration/test_front_load.py — the front under load, end to end with the real SM.

Starts jabshard-sm and jabshard-c2s on free loopback ports in a temporary directory, creates the
accounts with `jabshardctl import`, then:

1. a slow reader: one client logs in (PLAIN over direct TLS, small receive buffer) and never
   reads; others flood it while pairs of other clients keep exchanging messages. The others'
   messages must all arrive while the slow one is stuck, and the front must close the slow one
   once its output queue passes <output_max> (four times <output_queue>, set small here), with
   <policy-violation/>;
2. CLIENTS concurrent clients (2,000 by default) log in over direct TLS with PLAIN, bind, and
   each sends MESSAGES messages to the next one: every message must arrive, none twice.

It also reports the front's resident memory with the clients connected, and again after they
have been idle long enough for the front to shrink their parsers and buffers.

Sanitizer builds run 300 clients by default: they are several times slower.

Usage: test_front_load.py BUILD_DIR [CLIENTS] [MESSAGES]. Prints ok/not ok lines and ends with
"front_load: N passed, N failed" (exit status 1 on failures).
"""
import asyncio
import re
import sqlite3
import ssl
import sys
import time

from jabtest.proc import rss_kib
from jabtest.raw import Raw
from jabtest.suite import main
from jabtest.system import System, sanitized
from jabtest.xmpp import bind_iq, plain_auth, stream_header, tls_context

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build/default"
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 300 if sanitized(BUILD) else 2000
MESSAGES = int(sys.argv[3]) if len(sys.argv) > 3 else 5
OUTPUT_QUEUE = 65536


def kernel_send_buffer_max():
    """The most a TCP socket's send buffer may grow to by itself (tcp_wmem's third value)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


# Each flood message's body: the 1,000 of them pass the kernel's buffering, the front's
# <output_max> (four <output_queue>s) and 1 MiB more.
FLOOD_BODY = (kernel_send_buffer_max() + 4 * OUTPUT_QUEUE + (1 << 20)) // 1000
FLOOD_BURST = 2 * 100 * FLOOD_BODY
HEADER = stream_header().encode()


# ---- asyncio clients --------------------------------------------------------------------------

class Client:
    def __init__(self, idx, user, password):
        self.idx, self.user, self.password = idx, user, password
        self.buf = b""
        self.got = {}          # sender index -> list of message numbers received
        self.reader = self.writer = None
        self.error = None

    async def read_until(self, marker):
        while marker not in self.buf:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise EOFError(f"{self.user}: EOF waiting for {marker!r}: {self.buf[-200:]!r}")
            self.buf += chunk

    async def login(self, port, ctx):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                                 server_hostname="localhost")
        self.writer.write(HEADER)
        await self.read_until(b"</stream:features>")
        self.writer.write(plain_auth(self.user, self.password).encode())
        await self.read_until(b"<success")
        self.buf = b""
        self.writer.write(HEADER)
        await self.read_until(b"</stream:features>")
        self.writer.write(bind_iq("r", "b").encode())
        await self.read_until(b"</iq>")
        if b"type='result'" not in self.buf and b'type="result"' not in self.buf:
            raise RuntimeError(f"{self.user}: bind failed: {self.buf[-300:]!r}")
        self.buf = b""

    def send(self, to, tag, n, body=""):
        self.writer.write(f"<message to='{to}@localhost/r' type='chat'><body>{tag}:{self.idx}:{n}:"
                          f"{body}</body></message>".encode())

    async def receive(self, tag, expect, deadline):
        """Reads until `expect` messages tagged `tag` arrived, or the deadline."""
        pattern = re.compile(rb"<body>" + tag.encode() + rb":(\d+):(\d+):")
        count = 0
        pos = 0
        while count < expect:
            for m in pattern.finditer(self.buf, pos):
                self.got.setdefault(int(m.group(1)), []).append(int(m.group(2)))
                count += 1
                pos = m.end()
            # keep the tail only (a body may be split across reads)
            self.buf, pos = self.buf[pos:], 0
            if count >= expect:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                break
            if not chunk:
                break
            self.buf += chunk
        return count

    def close(self):
        if self.writer:
            try:
                self.writer.write(b"</stream:stream>")
                self.writer.close()
            except Exception:
                pass


async def gather_limited(coros, limit):
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


# ---- the scenario -------------------------------------------------------------------------------

def slow_login(port, user, password):
    """A client with a small receive buffer that logs in and then does not read."""
    slow = Raw.connect(port, tls=True, rcvbuf=4096, wait=20)
    slow.login(user, password, "r")
    slow.discard()
    return slow


async def slow_reader_phase(r, system, users):
    """users[0] is the slow one; users[1..] are the others."""
    ctx = tls_context()
    slow = await asyncio.to_thread(slow_login, system.tls_port, users[0][0], users[0][1])
    others = [Client(i, u, p) for i, (u, p) in enumerate(users)][1:]
    await gather_limited([c.login(system.tls_port, ctx) for c in others], 100)
    flooders, pairs = others[:10], others[10:]
    # Flood the slow one: 10 x 100 messages, far past its output queue and the kernel's buffers
    # (the front's send buffer may grow up to tcp_wmem's maximum, 4 MiB on Debian, when the
    # flood trickles in: one CI run took 2 MB in without a cut); meanwhile each pair member sends
    # 50 messages to its partner. The flooders' bps burst is raised to match (load_body).
    body = "x" * FLOOD_BODY
    for n in range(100):
        for c in flooders:
            c.send(users[0][0], "flood", n, body)
    for n in range(50):
        for i, c in enumerate(pairs):
            partner = pairs[i ^ 1] if (i ^ 1) < len(pairs) else pairs[i]
            c.send(partner.user, "pair", n)
    deadline = time.monotonic() + 20
    counts = await asyncio.gather(*(c.receive("pair", 50, deadline) for c in pairs))
    r.check("slow reader: the other clients' messages all arrive while it does not read",
            all(n == 50 for n in counts), f"received {sum(counts)} of {50 * len(pairs)}")
    in_order = all(v == sorted(v) for c in pairs for v in c.got.values())
    r.check("slow reader: ...in the order each sender sent them", in_order)
    # The flood reaches the front at the SM's pace (slow under a sanitizer): reading before the
    # front's queue passed its bound would drain it instead. So the read waits for the front's cut
    # (its log line), for at most a minute.
    await asyncio.to_thread(system.front().wait_log, "reason=output_max", 60)
    # Now read what the slow one was sent: the front must have closed it with <policy-violation/>.
    await asyncio.to_thread(slow.read_to_close, 15)
    data = slow.data
    flood = data.count(b"<body>flood:")
    r.check("slow reader: closed by the front, not served without bound",
            flood < 1000, f"got {flood} of 1000 flood messages")
    r.check("slow reader: ...with a <policy-violation/> stream error",
            b"<policy-violation" in data, f"{len(data)} bytes read, ending {data[-200:]!r}")
    # Nothing sent to it is lost: what the front had queued but not started to write went back to
    # the SM (UNDELIVERED), as did what reached the front while it was closing, and the SM stored it
    # offline with what came after the session's END. Counting rule: each of the 1,000 flood
    # messages is found exactly once, either read above, or delivered at a later login, or still in
    # offline storage. A stanza the front wrote any byte of is not handed back, and the one it was
    # in the middle of when the queue overflowed is finished before the stream error (which the
    # check above read), so it is read and never also stored: no loss and no duplicate at all.
    # Still in storage, because the offline messages (about 2 MB) come in one burst, far past this
    # front's <output_queue>: a login that gets them is closed the same way, keeps what fits in the
    # bound and hands back the rest, so each login takes a queue's worth (the SM does not pace
    # offline delivery).
    pattern = re.compile(rb"<body>flood:(\d+):(\d+):")
    seen = {}

    def count_in(text):
        for m in pattern.finditer(text):
            key = (int(m.group(1)), int(m.group(2)))
            seen[key] = seen.get(key, 0) + 1
    count_in(data)
    read = len(seen)
    delivered = delayed = 0
    for _ in range(2):
        again = Client(0, users[0][0], users[0][1])
        await again.login(system.tls_port, ctx)
        again.writer.write(b"<presence/>")
        again.writer.write(b"<iq type='get' id='after' to='localhost'>"
                           b"<ping xmlns='urn:xmpp:ping'/></iq>")
        text = b""
        try:
            while True:
                chunk = await asyncio.wait_for(again.reader.read(65536), 20)
                if not chunk:
                    break
                text += chunk
        except (asyncio.TimeoutError, OSError, ssl.SSLError):
            pass
        again.close()
        delivered += len(pattern.findall(text))
        delayed += len(re.findall(rb"<delay xmlns=['\"]urn:xmpp:delay['\"]", text))
        count_in(text)
    await asyncio.sleep(1)   # the last hand-back reaches storage
    db = sqlite3.connect(f"file:{system.path('db.sqlite')}?mode=ro", uri=True)
    stored = 0
    for (xml,) in db.execute("SELECT xml FROM offline"):
        stored += len(pattern.findall(xml.encode()))
        count_in(xml.encode())
    db.close()
    everyone = {(c.idx, n) for c in flooders for n in range(100)}
    lost = everyone - set(seen)
    twice = sorted(k for k, v in seen.items() if v > 1)
    r.note(f"slow reader: {read} read before the close, {delivered} delivered offline at 2 "
         f"logins, {stored} still stored")
    r.check("slow reader: every message sent to it was read, delivered offline or is stored, "
            "none twice", not lost and not twice and set(seen) == everyone,
            f"lost {sorted(lost)[:10]} ({len(lost)}), twice {twice[:10]} ({len(twice)})")
    r.check("slow reader: ...and a later login gets stored ones, with <delay/>",
            delivered > 0 and delayed == delivered,
            f"{delivered} delivered, {delayed} with <delay/>")
    for c in others:
        c.close()


async def load_phase(r, system, users, c2s_pid):
    ctx = tls_context()
    clients = [Client(i, u, p) for i, (u, p) in enumerate(users)]
    t0 = time.monotonic()
    results = await gather_limited([c.login(system.tls_port, ctx) for c in clients], 200)
    errors = [r for r in results if isinstance(r, Exception)]
    t_login = time.monotonic() - t0
    r.check(f"{len(clients)} clients log in over TLS with PLAIN and bind ({t_login:.1f} s)",
            not errors, f"{len(errors)} failed, first: {errors[0]!r}" if errors else "")
    if errors:
        return
    rss_connected = rss_kib(c2s_pid)
    t0 = time.monotonic()
    n = len(clients)
    for m in range(MESSAGES):
        for c in clients:
            c.send(clients[(c.idx + 1) % n].user, "load", m)
    deadline = time.monotonic() + 30
    counts = await asyncio.gather(*(c.receive("load", MESSAGES, deadline) for c in clients))
    t_msgs = time.monotonic() - t0
    total = sum(counts)
    r.check(f"{n} x {MESSAGES} messages all delivered ({total} in {t_msgs:.1f} s)",
            total == n * MESSAGES, f"{n * MESSAGES - total} lost")
    ok = all(c.got.get((c.idx - 1) % n, []) == list(range(MESSAGES)) and len(c.got) == 1
             for c in clients)
    r.check("...each exactly once, from the right sender, in order", ok)
    # Idle: the front shrinks parsers and buffers after 10 s without input.
    await asyncio.sleep(12)
    rss_idle = rss_kib(c2s_pid)
    r.note(f"front RSS with {n} clients connected: {rss_connected} KiB after login, "
         f"{rss_idle} KiB after 12 s idle (per client about {rss_idle * 1024 // n} bytes of "
         f"process memory, all included)")
    for c in clients:
        c.close()


def load_body(report, system):
    # The slow reader's phase uses the last 31 accounts; the load phase the first CLIENTS.
    # The defaults otherwise (loopback is trusted: no conn_rate), but a bps_burst that lets each
    # flooder send its hundred messages at once.
    limits = (f"<output_queue>{OUTPUT_QUEUE}</output_queue><auth_timeout>60</auth_timeout>"
              f"<bps_burst>{FLOOD_BURST}</bps_burst>")
    if not system.start_pair(report, CLIENTS + 31, limits):
        return
    c2s = system.front()
    report.note(f"front RSS with no clients: {rss_kib(c2s.pid)} KiB")
    users = [(f"u{i}", f"pw{i}") for i in range(CLIENTS + 31)]
    asyncio.run(slow_reader_phase(report, system, users[-31:]))
    report.check("slow reader: the front logged the output-queue cut",
                 re.search(r"c2s output-cut addr=127\.0\.0\.1 port=\d+ reason=output_max",
                           c2s.text()))
    asyncio.run(load_phase(report, system, users[:CLIENTS], c2s.pid))


def suite(report, build):
    with System(build, "front_load", report) as system:
        try:
            load_body(report, system)
        finally:
            system.stop_pair(report)


if __name__ == "__main__":
    main("front_load", suite)
