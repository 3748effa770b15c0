# tests/bench/peers/scenario_upload.py: HTTP File Upload (XEP-0363) throughput in the peer
# benchmark, after the WebSocket scenario. Per server with an upload service (jabshard's SM signing
# slots for its fronts' store, Prosody's http_file_share component, ejabberd's mod_http_upload; not
# jabberd2), on a freshly started server:
#   1. slots: --upload-users accounts log in (a small blocking XMPP client here: STARTTLS, SASL
#      PLAIN, bind) and ask upload.localhost for --upload-files slots in all, each of
#      --upload-size bytes (application/octet-stream), as XEP-0363 §4 says;
#   2. uploads: every PUT at once, one connection each (asyncio, raw sockets, HTTP/1.1, the slot's
#      <header/> elements sent along: Prosody's Authorization), over plain HTTP to the server's HTTP
#      port whatever scheme and port the slot's URL names (its host kept as the Host header), or
#      over HTTPS to its HTTPS port with --upload-tls;
#   3. downloads: every GET at once the same way, each body's SHA-256 and length checked against
#      what was put (a server whose transfer broke or mixed files up gets no figure, it fails).
# Per phase: MB/s (10^6 bytes of file content over the wall time from the first connect to the last
# answer) and the server's CPU seconds (all its processes, /proc/PID/stat) per GB (10^9 bytes) moved.
# The files differ from each other (a random block, each file's first 32 bytes its own), so a
# download of the wrong file is caught.
import asyncio
import base64
import hashlib
import os
import resource
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET

import peerlib
from scenario_sm import fmt, on_fresh_server

LABEL = "upload"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_UPLOAD = "urn:xmpp:http:upload:0"
NS_STREAMS = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
CHUNK = 256 * 1024


def add_options(p, env):
    p.add_argument("--no-upload", action="store_true", help="leave the upload scenario out")
    p.add_argument("--upload-files", type=int, default=int(env("BENCH_PEERS_UPLOAD_FILES", "100")),
                   help="files uploaded at once, then downloaded at once")
    p.add_argument("--upload-size", type=int,
                   default=int(env("BENCH_PEERS_UPLOAD_SIZE", str(10 * 1024 * 1024))),
                   help="bytes of each file (10 MiB)")
    p.add_argument("--upload-users", type=int, default=int(env("BENCH_PEERS_UPLOAD_USERS", "10")),
                   help="accounts asking for the slots (the files spread over them)")
    p.add_argument("--upload-tls", action="store_true",
                   help="PUT and GET over HTTPS on each server's HTTPS port (default: plain HTTP)")


def check_options(p, o):
    if o.upload_files < 1 or o.upload_size < 1 or o.upload_users < 1:
        p.error("--upload-files, --upload-size and --upload-users: at least 1")
    if o.upload_size > 16 * 1024 * 1024:
        p.error("--upload-size: at most 16 MiB (Prosody's http_file_share limit in prosody.cfg.lua)")


def selected(o):
    from scenario_web import others_only
    return not (o.no_upload or others_only(o))


def sessions_needed(o):
    return [o.upload_users] if selected(o) else []


# ---- slots over XMPP -------------------------------------------------------------------------

class Xmpp:
    """A blocking client stream: just enough for STARTTLS (when offered), SASL PLAIN, bind and iq
    round trips."""

    def __init__(self, port, user, password, domain="localhost", timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.domain = domain
        self._open()
        if self._expect_features().find("{%s}starttls" % NS_TLS) is not None:
            self.send("<starttls xmlns='%s'/>" % NS_TLS)   # PLAIN needs it on some servers
            if self.next().tag != "{%s}proceed" % NS_TLS:
                raise RuntimeError("%s: STARTTLS refused" % user)
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=domain)
            self._open()
            self._expect_features()
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
        el = self.next()
        if el.tag != "{%s}success" % NS_SASL:
            raise RuntimeError("%s: SASL PLAIN refused: %s" % (user, ET.tostring(el)[:200]))
        self._open()
        self._expect_features()
        self.send("<iq type='set' id='bind'><bind xmlns='%s'/></iq>" % NS_BIND)
        el = self.next()
        if el.get("type") != "result":
            raise RuntimeError("%s: bind refused" % user)

    def _open(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.pending = []
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='%s' "
                  "to='%s' version='1.0'>" % (NS_STREAMS, self.domain))

    def _expect_features(self):
        el = self.next()
        if el.tag != "{%s}features" % NS_STREAMS:
            raise RuntimeError("expected stream features, got %s" % el.tag)
        return el

    def send(self, text):
        self.sock.sendall(text.encode())

    def next(self):
        """The next top-level element of the server's stream."""
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("the server closed the stream")
            self.parser.feed(data)
            for event, el in self.parser.read_events():
                if event == "start":
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.pending.append(el)
        return self.pending.pop(0)

    def close(self):
        try:
            self.send("</stream:stream>")
        finally:
            self.sock.close()


def request_slots(port, service, users, count, size):
    """COUNT slots of SIZE bytes, asked by USERS (user1.. in turn, pipelined per user): a list of
    (put_url, put_headers, get_url)."""
    per_user = [count // users + (1 if i < count % users else 0) for i in range(users)]
    slots = []
    for u, n in enumerate(per_user):
        if not n:
            continue
        c = Xmpp(port, "user%d" % (u + 1), "pass%d" % (u + 1))
        try:
            for k in range(n):
                c.send("<iq type='get' to='%s' id='slot%d'><request xmlns='%s' filename='bench-%d-%d.bin' "
                       "size='%d' content-type='application/octet-stream'/></iq>" % (
                           service, k, NS_UPLOAD, u + 1, k, size))
            got = 0
            while got < n:
                el = c.next()
                if not el.tag.endswith("}iq"):
                    continue
                got += 1
                slot = el.find("{%s}slot" % NS_UPLOAD)
                if el.get("type") != "result" or slot is None:
                    raise RuntimeError("slot refused: %s" % ET.tostring(el)[:300])
                put, get = slot.find("{%s}put" % NS_UPLOAD), slot.find("{%s}get" % NS_UPLOAD)
                headers = [(h.get("name"), (h.text or "").strip())
                           for h in put.findall("{%s}header" % NS_UPLOAD)]
                slots.append((put.get("url"), headers, get.get("url")))
        finally:
            c.close()
    return slots


# ---- transfers over HTTP ---------------------------------------------------------------------

def target(url, port):
    """(Host header, request target) of URL, sent to our port whatever the URL names."""
    u = urllib.parse.urlsplit(url)
    return "%s:%d" % (u.hostname, port), (u.path or "/") + ("?" + u.query if u.query else "")


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def connect(port, tls):
    ctx = None
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, limit=4 * CHUNK)


async def put(port, tls, url, headers, body):
    host, path = target(url, port)
    reader, writer = await connect(port, tls)
    try:
        head = "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" \
               "Content-Type: application/octet-stream\r\nConnection: close\r\n" % (
                   path, host, len(body))
        head += "".join("%s: %s\r\n" % h for h in headers)
        writer.write(head.encode() + b"\r\n")
        view = memoryview(body)
        for at in range(0, len(body), CHUNK):
            writer.write(view[at:at + CHUNK])
            await writer.drain()
        status, _ = await read_head(reader)
        return status
    finally:
        writer.close()


async def get(port, tls, url):
    """(status, bytes received, SHA-256 hex) of the body."""
    host, path = target(url, port)
    reader, writer = await connect(port, tls)
    try:
        writer.write(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host))
                     .encode())
        status, headers = await read_head(reader)
        h, n = hashlib.sha256(), 0
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if not size:
                    break
                data = await reader.readexactly(size + 2)
                h.update(data[:-2])
                n += size
        elif "content-length" in headers:
            left = int(headers["content-length"])
            while left:
                data = await reader.read(min(left, CHUNK))
                if not data:
                    break
                h.update(data)
                n += len(data)
                left -= len(data)
        else:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                h.update(data)
                n += len(data)
        return status, n, h.hexdigest()
    finally:
        writer.close()


def files(count, size):
    """COUNT distinct files of SIZE bytes (a shared random block, each with its own first 32
    bytes) and their SHA-256s."""
    block = os.urandom(size)
    out = []
    for i in range(count):
        data = (hashlib.sha256(b"bench file %d" % i).digest() + block[32:])[:size]
        out.append((data, hashlib.sha256(data).hexdigest()))
    return out


def own_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def phase(server, coroutines):
    """Runs the coroutines at once; (results, wall seconds, server CPU seconds, the client's own
    CPU seconds: one Python thread, which caps what it can move)."""
    usage = peerlib.Usage(server.roots)
    cpu0, own0 = usage.sample(), own_cpu()

    async def all_of():
        return await asyncio.gather(*coroutines, return_exceptions=True)

    t0 = time.time()
    results = asyncio.run(all_of())
    wall = time.time() - t0
    return results, wall, usage.sample() - cpu0, own_cpu() - own0


def scenario(o, server, r):
    n, size = o.upload_files, o.upload_size
    port = server.https_port if o.upload_tls else server.http_port
    r.update(files=n, size=size, users=o.upload_users, tls=o.upload_tls)
    t = time.time()
    slots = request_slots(server.port, server.upload_domain, o.upload_users, n, size)
    r["slots_s"] = time.time() - t
    data = files(n, size)
    total = n * size
    results, wall, cpu, own = phase(server, [put(port, o.upload_tls, s[0], s[1], d[0])
                                        for s, d in zip(slots, data)])
    bad = [x for x in results if isinstance(x, Exception) or x not in (200, 201)]
    r["put"] = {"seconds": wall, "server_cpu_s": cpu, "mb_per_s": total / wall / 1e6,
                "cpu_s_per_gb": cpu / (total / 1e9), "client_cpu_s": own, "failed": len(bad)}
    if bad:
        r["failed"] = "%d of %d PUTs failed (first: %r)" % (len(bad), n, bad[0])
        return
    time.sleep(2)
    results, wall, cpu, own = phase(server, [get(port, o.upload_tls, s[2]) for s in slots])
    wrong = []
    for x, d in zip(results, data):
        if isinstance(x, Exception):
            wrong.append(repr(x))
        elif x[0] != 200 or x[1] != size or x[2] != d[1]:
            wrong.append("status %s, %d bytes, %s" % (x[0], x[1],
                                                      "sha256 ok" if x[2] == d[1] else "sha256 wrong"))
    r["get"] = {"seconds": wall, "server_cpu_s": cpu, "mb_per_s": total / wall / 1e6,
                "cpu_s_per_gb": cpu / (total / 1e9), "client_cpu_s": own, "failed": len(wrong)}
    if wrong:
        r["failed"] = "%d of %d GETs wrong (first: %s)" % (len(wrong), n, wrong[0])


def run_server(o, server, record):
    if not selected(o):
        return
    r = {"server": server.name, "version": server.version(), "label": LABEL,
         "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not server.web:
        r["failed"] = "no upload service in this benchmark's configuration"
        record(r)
        return
    tag = "upload-%s" % server.name
    peerlib.log("%s: %d uploads of %d bytes at once, then the downloads" % (
        server.name, o.upload_files, o.upload_size))
    on_fresh_server(o, server, r, tag, lambda: scenario(o, server, r))
    peerlib.log("%s: %s" % (server.name, summary(r)))
    record(r)


# ---- reporting -------------------------------------------------------------------------------

def summary(r):
    p, g = r.get("put") or {}, r.get("get") or {}
    s = "PUT %s MB/s (%s CPU s/GB), GET %s MB/s (%s CPU s/GB)" % (
        fmt(p.get("mb_per_s"), 1), fmt(p.get("cpu_s_per_gb"), 2), fmt(g.get("mb_per_s"), 1),
        fmt(g.get("cpu_s_per_gb"), 2))
    return s + (" (FAILED: %s)" % r["failed"] if r.get("failed") else "")


def report_lines(results):
    rows = [r for r in results if r.get("label") == LABEL]
    if not rows:
        return []
    first = next((r for r in rows if r.get("files")), {})
    out = ["", "HTTP File Upload (XEP-0363; scenario_upload.py): %s files of %s bytes PUT at once, "
           "then GET at once, one connection each, over %s; every download's SHA-256 checked:" % (
               fmt(first.get("files")), fmt(first.get("size")),
               "HTTPS" if first.get("tls") else "plain HTTP"), "",
           "| server | version | PUT MB/s | PUT server CPU s per GB | GET MB/s "
           "| GET server CPU s per GB | client CPU s, PUT / GET | slots (s) | notes |",
           "|---|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        p, g = r.get("put") or {}, r.get("get") or {}
        out.append("| %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
            r["server"], r.get("version"), fmt(p.get("mb_per_s"), 1), fmt(p.get("cpu_s_per_gb"), 2),
            fmt(g.get("mb_per_s"), 1), fmt(g.get("cpu_s_per_gb"), 2), fmt(p.get("client_cpu_s"), 2),
            fmt(g.get("client_cpu_s"), 2), fmt(r.get("slots_s"), 2),
            (r.get("failed") or "").replace("|", "/")))
    ok = [r for r in rows if not r.get("failed") and r.get("get")]
    ours = next((r for r in ok if r["server"] == "jabshard"), None)
    peers = [r for r in ok if r["server"] != "jabshard"]
    if ours and peers:
        cells = []
        for ph in ("put", "get"):
            fast = max(peers, key=lambda p: p[ph]["mb_per_s"])
            lean = min(peers, key=lambda p: p[ph]["cpu_s_per_gb"])
            cells.append("%s: %.2f of the fastest peer's MB/s (%s), %.2f of the leanest peer's "
                         "CPU per GB (%s)" % (ph.upper(), ours[ph]["mb_per_s"] / fast[ph]["mb_per_s"],
                                              fast["server"], ours[ph]["cpu_s_per_gb"] /
                                              lean[ph]["cpu_s_per_gb"], lean["server"]))
        out += ["", "jabshard: " + "; ".join(cells) + "."]
    return out
