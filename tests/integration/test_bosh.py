"""tests/integration/test_bosh.py — BOSH (XEP-0124 with XEP-0206) on the front's web listener,
driven by hand over real HTTP connections to a real SM, as a browser's BOSH library uses it.

1. a session: creation (sid, wait, hold, requests, the features in the answer), SASL PLAIN, the
   restart, bind, a message to a TCP client, and one back answered on a held request;
2. requests on many connections at once: with a browser's connections spread over the IO
   threads, every request reaches its session and every answer the connection that asked;
3. a held request is answered empty when its wait passes;
4. out of order: rid+2 before rid+1 waits for the gap and both are answered, in order;
5. a repeated rid is answered with the same bytes again;
6. terminate ends the session: the TCP contact sees it go, and the sid is unknown after;
7. refusals: an unknown sid (item-not-found), a body that is not BOSH (400), a body larger than
   the front takes (413), a GET (an explanation), a POST on plain HTTP from an address not counted
   as secure while TLS is required (403);
8. inactivity: a session nobody polls ends after <inactivity> seconds, and the SM sees it end;
9. host-meta lists the BOSH URL beside the WebSocket one.

Usage: test_bosh.py BUILD_DIR. Prints ok/not ok lines and "bosh: N passed, N failed"."""

import base64
import http.client
import re
import threading
import time
import xml.etree.ElementTree as ET

from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.web import raw_http, strict_front

NS = 'http://jabber.org/protocol/httpbind'
NS_CLIENT = 'jabber:client'
XBOSH = "xmlns:xmpp='urn:xmpp:xbosh'"


def q(ns, tag):
    return '{%s}%s' % (ns, tag)


class Bosh:
    """One BOSH session over a pool of keep-alive HTTP connections."""

    def __init__(self, port, nconns=2):
        self.port = port
        self.conns = [self._conn() for _ in range(nconns)]
        self.rid = 4000
        self.sid = None

    def _conn(self):
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=90)

    def post(self, body, conn=0):
        c = self.conns[conn]
        try:
            c.request('POST', '/http-bind', body, {'Content-Type': 'text/xml; charset=utf-8'})
            r = c.getresponse()
        except (http.client.HTTPException, OSError):
            self.conns[conn] = self._conn()
            raise
        data = r.read().decode()
        return r.status, data

    def body(self, inner='', conn=0, rid=None, attrs=''):
        if rid is None:
            self.rid += 1
            rid = self.rid
        return self.post("<body xmlns='%s' rid='%d' sid='%s'%s>%s</body>"
                         % (NS, rid, self.sid, attrs, inner), conn)

    def create(self, wait=10):
        status, data = self.post("<body xmlns='%s' rid='%d' to='localhost' xml:lang='en' wait='%d' "
                                 "hold='1' ver='1.11' xmpp:version='1.0' %s/>"
                                 % (NS, self.rid, wait, XBOSH))
        m = re.search(r"sid='([^']+)'", data)
        self.sid = m.group(1) if m else None
        return status, data

    def login(self, user, password, resource='bosh'):
        self.create()
        token = base64.b64encode(('\0%s\0%s' % (user, password)).encode()).decode()
        _, data = self.body("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                            "%s</auth>" % token)
        if 'success' not in data:
            raise Failure('SASL over BOSH: %s' % data)
        self.body(attrs=" xmpp:restart='true' %s to='localhost'" % XBOSH)
        _, data = self.body("<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:"
                            "params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>"
                            % resource)
        m = re.search(r'<jid>([^<]+)</jid>', data)
        if not m:
            raise Failure('bind over BOSH: %s' % data)
        return m.group(1)

    def close(self):
        for c in self.conns:
            c.close()


def children(data):
    return list(ET.fromstring(data))


def session(r, port, tls, system):
    b = Bosh(port)
    status, data = b.create()
    root = ET.fromstring(data)
    r.check('creation: 200, a sid, wait 10, hold 1, requests 2, from localhost, xmpp:version 1.0',
            status == 200 and b.sid and root.get('wait') == '10' and root.get('hold') == '1' and
            root.get('requests') == '2' and root.get('from') == 'localhost' and
            root.get('{urn:xmpp:xbosh}version') == '1.0', data[:400])
    r.check('the creation answer carries the stream features (SASL)',
            'mechanisms' in data and 'PLAIN' in data, data[:600])
    b.close()
    a = Bosh(port)
    jid = a.login('u0', 'pw0')
    r.check('PLAIN, the restart and bind over BOSH', jid == 'u0@localhost/bosh', jid)
    c = Raw.connect(tls, tls=True)
    c.login('u1', 'pw1', 'tcp')
    a.body("<presence xmlns='jabber:client'/><message xmlns='jabber:client' to='u1@localhost/tcp'"
           " type='chat'><body>over BOSH &#xe9;</body></message>")
    got = c.expect(lambda e: e.tag == q(NS_CLIENT, 'message'), 'the message')
    r.check('a message from BOSH reaches the TCP client intact',
            got.findtext(q(NS_CLIENT, 'body')) == 'over BOSH \u00e9' and
            got.get('from') == 'u0@localhost/bosh', ET.tostring(got))
    answer = {}

    def hold():
        answer['r'] = a.body(conn=1)

    th = threading.Thread(target=hold)
    th.start()
    time.sleep(0.3)
    c.send("<message to='u0@localhost/bosh' type='chat'><body>on the held request</body>"
           "</message>")
    th.join(15)
    status, data = answer.get('r', (None, ''))
    msgs = [e for e in children(data) if e.tag == q(NS_CLIENT, 'message')] if data else []
    r.check('a message to the session is the answer to its held request',
            status == 200 and msgs and msgs[0].findtext(q(NS_CLIENT, 'body')) ==
            'on the held request', data[:400])
    t0 = time.monotonic()
    status, data = a.body()
    took = time.monotonic() - t0
    r.check('an empty request is held for its wait (10 s) and answered empty',
            status == 200 and not children(data) and 9 <= took <= 14, (took, data))
    # Out of order: rid+2 first (held for the gap), then rid+1.
    first, second = a.rid + 1, a.rid + 2
    a.rid = second
    later = {}

    def ahead():
        later['r'] = a.body("<message xmlns='jabber:client' to='u1@localhost/tcp' type='chat'>"
                            "<body>second</body></message>", conn=1, rid=second)

    th = threading.Thread(target=ahead)
    th.start()
    time.sleep(0.3)
    a.body("<message xmlns='jabber:client' to='u1@localhost/tcp' type='chat'><body>first</body>"
           "</message>", rid=first)
    th.join(15)
    bodies = [c.expect(lambda e: e.tag == q(NS_CLIENT, 'message'), 'message %d' % i)
              .findtext(q(NS_CLIENT, 'body')) for i in range(2)]
    r.check('rid+2 before rid+1: both delivered, in rid order', bodies == ['first', 'second'],
            bodies)
    a.rid += 1
    rid = a.rid
    c.send("<message to='u0@localhost/bosh' type='chat'><body>once</body></message>")
    time.sleep(0.3)
    s1, d1 = a.body(rid=rid)
    s2, d2 = a.body(rid=rid)
    r.check('a repeated rid is answered with the same bytes', s1 == s2 == 200 and d1 == d2 and
            'once' in d1, (d1[:200], d2[:200]))
    status, data = a.body("<presence xmlns='jabber:client' type='unavailable'/>",
                          attrs=" type='terminate'")
    r.check('terminate: answered with type terminate', "type='terminate'" in data, data)
    end = time.monotonic() + 10
    while time.monotonic() < end and 'u0@localhost/bosh' in system.sessions():
        time.sleep(0.2)
    r.check('the SM sees the session end', 'u0@localhost/bosh' not in system.sessions())
    status, data = a.body()
    r.check('the sid is unknown afterwards: item-not-found',
            "condition='item-not-found'" in data, data)
    a.close()
    c.close()


def many(r, port):
    """Sessions whose requests come over several connections at once (the IO threads each get
    some): every answer must reach the connection that asked."""
    sessions = [Bosh(port, nconns=3) for _ in range(6)]
    ok = True
    for i, s in enumerate(sessions):
        try:
            s.login('u%d' % (2 + i), 'pw%d' % (2 + i), 'm')
        except Failure as e:
            ok = False
            r.not_ok('session %d logs in' % i, str(e))
    results = []

    for s in sessions:
        # One connection at a time per session (a client keeps its rids in order), connections
        # rotating, so requests of one session cross threads.
        for k in range(6):
            st, data = s.body("<iq xmlns='jabber:client' type='get' id='p%d' to='localhost'>"
                              "<ping xmlns='urn:xmpp:ping'/></iq>" % k, conn=k % 3)
            results.append(st == 200 and "id='p%d'" % k in data)
    r.check('6 sessions, 36 requests over 18 connections: each answer to the request that asked',
            ok and all(results) and len(results) == 36, results.count(False))
    for s in sessions:
        s.body(attrs=" type='terminate'")
        s.close()


def refusals(r, port):
    b = Bosh(port)
    b.sid = '00000000000000000000000000000000deadbeefdeadbeefdeadbeefdeadbeef'[:48]
    status, data = b.body()
    r.check('an unknown sid: terminate, item-not-found', status == 200 and
            "condition='item-not-found'" in data, (status, data))
    status, data = b.post('<nonsense/>')
    r.check('a body that is not BOSH: 400', status == 400, (status, data))
    b.close()
    text = raw_http(port, b'POST /http-bind HTTP/1.1\r\nContent-Length: 900000\r\n\r\n')
    r.check('a body larger than the front takes: 413', text.startswith('HTTP/1.1 413'), text[:100])
    text = raw_http(port, b'GET /http-bind HTTP/1.1\r\nConnection: close\r\n\r\n')
    r.check('a GET: 200 saying what the endpoint is', text.startswith('HTTP/1.1 200') and
            'BOSH' in text, text[:200])
    text = raw_http(port, b'OPTIONS /http-bind HTTP/1.1\r\nOrigin: https://x.example\r\n'
                     b'Connection: close\r\n\r\n')
    r.check('an OPTIONS preflight allows POST', text.startswith('HTTP/1.1 204') and 'POST' in text,
            text[:300])
    text = raw_http(port, b'GET /.well-known/host-meta HTTP/1.1\r\nHost: chat.example.org\r\n'
                     b'Connection: close\r\n\r\n')
    r.check('host-meta lists the BOSH URL', 'urn:xmpp:alt-connections:xbosh' in text and
            "href='http://chat.example.org/http-bind'" in text, text[-400:])


def inactivity(r, port, system):
    b = Bosh(port)
    jid = b.login('u8', 'pw8', 'idle')
    b.close()
    end = time.monotonic() + 25
    while time.monotonic() < end and jid in system.sessions():
        time.sleep(0.5)
    r.check('a session nobody polls ends after its inactivity (10 s), and the SM sees it end',
            jid not in system.sessions(), jid)


def body(report, build):
    with System(build, 'bosh', report) as system:
        sm_port, port, tls, web, web2 = free_ports(5)
        system.sm_port = sm_port
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')]))
        conf = ('<http><port>%d</port><tls_port>0</tls_port><bosh><inactivity>10</inactivity>'
                '</bosh></http>' % web)
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem'), extra=conf), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(9))
        if not (report.check('import 9 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        try:
            session(report, web, tls, system)
            many(report, web)
            refusals(report, web)
            inactivity(report, web, system)
        except (Failure, OSError, http.client.HTTPException) as e:
            report.not_ok('the BOSH scenario ran to its end', repr(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        def create(web_port):
            b = Bosh(web_port)
            status, _ = b.create()
            b.close()
            return status

        strict_front(report, system, sm_port, port, tls, web2, 'BOSH', create)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('bosh', body)
