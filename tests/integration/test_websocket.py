"""tests/integration/test_websocket.py — the front's web listener as web clients and attackers
use it: XMPP over WebSocket (RFC 7395), the connection discovery files (XEP-0156), and HTTP's
errors, over real sockets (plain and TLS) to a real SM.

1. the opening handshake: 101 with the right Sec-WebSocket-Accept and the xmpp subprotocol on
   ws:// (loopback counts as secure) and wss://; refusals: no xmpp subprotocol (400), another
   WebSocket version (426 naming 13), a GET without the upgrade (400), an origin not listed
   (403), a plain connection from an address not counted as secure while TLS is required (403);
2. a session: <open/> answered by <open/> and features (SASL, no STARTTLS inside a WebSocket),
   PLAIN, the restart, bind, a message to a TCP client and one back (each stanza its own message
   with xmlns='jabber:client'), stream management (enable, <r/>, <a h=''/>), <close/> answered by
   <close/> and a close frame, and the SM sees the session end;
3. bad input: a binary frame (close 1003), an <open/> in another namespace (invalid-namespace),
   a message past max_message (close 1009), an unmasked frame (close 1002), garbage bytes;
   the front and other sessions carry on;
4. pings: the server answers a ping frame with a pong carrying the same bytes;
5. host-meta and host-meta.json list the WebSocket URL (public_url when set), with CORS;
6. HTTP: 404 for another path, 413 for a body where none is taken, 431 for a head too large,
   400 for garbage, an OPTIONS preflight, keep-alive with two requests on one connection.

Usage: test_websocket.py BUILD_DIR. Prints ok/not ok lines and "websocket: N passed, N failed"."""

import json
import time
import xml.etree.ElementTree as ET

from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.web import raw_http, strict_front
from jabtest.websocket import BINARY, CLOSE, PING, PONG, TEXT, Closed, WebSocket, XmppWebSocket, \
    frame

NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'
NS_STREAMS = 'http://etherx.jabber.org/streams'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_SM = 'urn:xmpp:sm:3'
NS_CLIENT = 'jabber:client'
ORIGIN = 'https://chat.example.org'


def q(ns, tag):
    return '{%s}%s' % (ns, tag)


def close_code(ws):
    """The status code of the next close frame (skipping other messages), or None."""
    try:
        while True:
            op, payload = ws.recv()
            if op == CLOSE:
                return int.from_bytes(payload[:2], 'big') if len(payload) >= 2 else 1005
    except (Closed, OSError):
        return None


def handshakes(r, http, https):
    ws = WebSocket(http)
    r.check('ws:// from loopback: 101 with the xmpp subprotocol and the right accept key',
            ws.handshake() == 101 and ws.accept_ok() and
            ws.headers.get('sec-websocket-protocol') == 'xmpp', ws.headers)
    ws.close()
    ws = WebSocket(https, tls=True)
    r.check('wss://: 101', ws.handshake() == 101 and ws.accept_ok(), ws.headers)
    ws.close()
    for what, kwargs, want in (
            ('no xmpp subprotocol', {'protocol': 'chat'}, 400),
            ('WebSocket version 8', {'version': '8'}, 426),
            ('an origin not listed', {'origin': 'https://evil.example'}, 403)):
        ws = WebSocket(http)
        status = ws.handshake(**kwargs)
        r.check('refused: %s (%d)' % (what, want), status == want, (status, ws.headers))
        if want == 426:
            r.check('426 names version 13', ws.headers.get('sec-websocket-version') == '13',
                    ws.headers)
        ws.close()
    ws = WebSocket(http)
    r.check('the listed origin is accepted', ws.handshake(origin=ORIGIN) == 101)
    ws.close()
    text = raw_http(http, b'GET /xmpp-websocket HTTP/1.1\r\nHost: x\r\n\r\n')
    r.check('a GET without the upgrade: 400', text.startswith('HTTP/1.1 400'), text[:200])


def tcp_client(tls_port, user, password, resource):
    c = Raw.connect(tls_port, tls=True)
    c.login(user, password, resource)
    return c


def session(r, http, system, tls_port):
    ws = XmppWebSocket(http)
    ws.handshake()
    opened, features = ws.open()
    r.check('<open/> is answered by <open/> from localhost, version 1.0',
            opened.tag == q(NS_FRAMING, 'open') and opened.get('from') == 'localhost' and
            opened.get('version') == '1.0' and opened.get('id'), ET.tostring(opened))
    mechs = [m.text for m in features.iter(q(NS_SASL, 'mechanism'))]
    r.check('features: SASL with PLAIN (loopback counts as secure), no STARTTLS',
            features.tag == q(NS_STREAMS, 'features') and 'PLAIN' in mechs and
            features.find(q('urn:ietf:params:xml:ns:xmpp-tls', 'starttls')) is None,
            ET.tostring(features))
    ws.close()
    a = XmppWebSocket(http)
    a.handshake()
    jid = a.login('u0', 'pw0')
    r.check('PLAIN, the restart and bind over WebSocket', jid == 'u0@localhost/ws', jid)
    b = tcp_client(tls_port, 'u1', 'pw1', 'tcp')
    a.send("<presence/>")
    a.element()
    a.send("<message xmlns='jabber:client' to='u1@localhost/tcp' type='chat'>"
           "<body>from the browser \u00e9\u00e8</body></message>")
    got = b.expect(lambda e: e.tag == q(NS_CLIENT, 'message'), 'the message')
    r.check('a message from the WebSocket reaches the TCP client intact',
            got.findtext(q(NS_CLIENT, 'body')) == 'from the browser \u00e9\u00e8' and
            got.get('from') == 'u0@localhost/ws', ET.tostring(got))
    b.send("<message to='u0@localhost/ws' type='chat'><body>back &amp; forth</body></message>")
    msg = a.element()
    r.check('a message to the WebSocket: one message, xmlns jabber:client, text intact',
            msg.tag == '{jabber:client}message' and msg.findtext('{jabber:client}body') ==
            'back & forth', ET.tostring(msg))
    a.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    enabled = a.element()
    r.check('stream management: <enable/> gets <enabled/>', enabled.tag == q(NS_SM, 'enabled'),
            ET.tostring(enabled))
    b.send("<message to='u0@localhost/ws' type='chat'><body>counted</body></message>")
    seen = [a.element() for _ in range(1)]
    a.send("<r xmlns='%s'/>" % NS_SM)
    ack = a.element()
    r.check('stream management: <r/> is answered by <a/> counting the stanzas received',
            ack.tag == q(NS_SM, 'a') and ack.get('h') is not None, ET.tostring(ack))
    a.send("<a xmlns='%s' h='%d'/>" % (NS_SM, len(seen)))
    a.send("<close xmlns='%s'/>" % NS_FRAMING)
    closing = a.element()
    r.check('<close/> is answered by <close/>', closing.tag == q(NS_FRAMING, 'close'),
            ET.tostring(closing))
    r.check('then a close frame with 1000', close_code(a) == 1000)
    a.close()
    end = time.monotonic() + 10
    while time.monotonic() < end and 'u0@localhost/ws' in system.sessions():
        time.sleep(0.2)
    r.check('the SM sees the session end', 'u0@localhost/ws' not in system.sessions())
    b.close()


def bad_input(r, http, tls_port):
    cases = (
        ('a binary frame closes with 1003', lambda ws: ws.send(b'<presence/>', BINARY), 1003),
        ('a message past max_message closes with 1009',
         lambda ws: ws.send('<message>' + 'x' * 70000 + '</message>'), 1009),
        ('an unmasked frame closes with 1002',
         lambda ws: ws.send_raw(frame(TEXT, b'<presence/>', mask=False)), 1002),
    )
    for what, act, want in cases:
        ws = XmppWebSocket(http)
        ws.handshake()
        ws.open()
        act(ws)
        code = close_code(ws)
        r.check(what, code == want, code)
        ws.close()
    ws = XmppWebSocket(http)
    ws.handshake()
    ws.send("<open xmlns='jabber:client' to='localhost' version='1.0'/>")
    texts = []
    try:
        for _ in range(3):
            texts.append(ws.recv_text())
    except (Closed, OSError):
        pass
    r.check('an <open/> in another namespace: a stream error invalid-namespace, <close/>',
            any('invalid-namespace' in t for t in texts) and any('<close' in t for t in texts),
            texts)
    ws.close()
    ws = WebSocket(http)
    ws.handshake()
    ws.send_raw(b'\xff' * 64)
    code = close_code(ws)
    r.check('garbage after the upgrade (a reserved opcode, a 2^63 length): a close frame',
            code is not None, code)
    ws.close()
    ws = WebSocket(http)
    ws.handshake()
    ws.send_raw(b'\xc1\x80abcd')
    code = close_code(ws)
    r.check('a frame with a reserved bit set: close 1002', code == 1002, code)
    ws.close()
    ws = WebSocket(http)
    ws.handshake()
    ws.send(b'are you there', PING)
    op, payload = ws.recv_frame()[1:3]
    r.check('a ping is answered by a pong with its bytes', op == PONG and payload == b'are you there',
            (op, payload))
    ws.close()
    c = Raw.connect(tls_port, tls=True)
    jid = c.login('u2', 'pw2', 'after')
    r.check('after all that, a TCP client logs in', jid == 'u2@localhost/after', jid)
    c.close()


def discovery(r, http, https, public_port):
    text = raw_http(http, b'GET /.well-known/host-meta HTTP/1.1\r\nHost: chat.example.org:5280\r\n'
                          b'Connection: close\r\n\r\n')
    head, _, body = text.partition('\r\n\r\n')
    links = [l.get('href') for l in ET.fromstring(body).iter(
        '{http://docs.oasis-open.org/ns/xri/xrd-1.0}Link')
        if l.get('rel') == 'urn:xmpp:alt-connections:websocket']
    r.check('host-meta (XRD) lists the WebSocket URL, with CORS',
            head.startswith('HTTP/1.1 200') and 'application/xrd+xml' in head and
            'Access-Control-Allow-Origin: *' in head and
            links == ['wss://chat.example.org:%d/xmpp-websocket' % public_port], (head, links))
    text = raw_http(https, b'GET /.well-known/host-meta.json HTTP/1.1\r\nHost: x\r\n'
                           b'Connection: close\r\n\r\n', tls=True)
    head, _, body = text.partition('\r\n\r\n')
    data = json.loads(body)
    r.check('host-meta.json lists it too',
            head.startswith('HTTP/1.1 200') and 'application/json' in head and
            data['links'][0]['href'].endswith('/xmpp-websocket'), body)


def http_errors(r, http):
    for what, req, want in (
            ('another path: 404', b'GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n', '404'),
            ('a body where none is taken: 413',
             b'POST /.well-known/host-meta HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello', '413'),
            ('a head over 8 KiB: 431',
             b'GET / HTTP/1.1\r\nX-Big: ' + b'a' * 9000 + b'\r\n\r\n', '431'),
            ('garbage: 400', b'\x00\x01 nonsense\r\n\r\n', '400'),
            ('a method on host-meta other than GET/HEAD: 405',
             b'DELETE /.well-known/host-meta HTTP/1.1\r\n\r\n', '405')):
        text = raw_http(http, req)
        r.check('HTTP: ' + what, text.startswith('HTTP/1.1 ' + want), text[:120])
    text = raw_http(http, b'OPTIONS /upload/x HTTP/1.1\r\nOrigin: https://a.example\r\n'
                          b'Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n')
    r.check('HTTP: an OPTIONS preflight allows PUT and Content-Type',
            text.startswith('HTTP/1.1 204') and 'PUT' in text and 'Content-Type' in text,
            text[:300])
    text = raw_http(http, b'GET /.well-known/host-meta HTTP/1.1\r\nHost: x\r\n\r\n'
                          b'GET /.well-known/host-meta.json HTTP/1.1\r\nHost: x\r\n'
                          b'Connection: close\r\n\r\n')
    r.check('HTTP: two requests on one connection, answered in order',
            text.count('HTTP/1.1 200') == 2 and text.index('xrd+xml') < text.index('json'),
            text[:300])


def body(report, build):
    with System(build, 'websocket', report) as system:
        sm_port, port, tls, http, https, http2 = free_ports(6)
        system.sm_port = sm_port
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')]))
        web = ('<http><port>%d</port><tls_port>%d</tls_port><public_url>https://chat.example.org:'
               '%d</public_url><websocket><origin>%s</origin></websocket>'
               '<max_message>65536</max_message></http>' % (http, https, https, ORIGIN))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem'), extra=web), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(3))
        if not (report.check('import 3 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        try:
            handshakes(report, http, https)
            session(report, http, system, tls)
            bad_input(report, http, tls)
            discovery(report, http, https, https)
            http_errors(report, http)
        except (Failure, Closed, OSError) as e:
            report.not_ok('the web scenario ran to its end', repr(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        def upgrade(web_port):
            ws = WebSocket(web_port)
            status = ws.handshake()
            ws.close()
            return status

        strict_front(report, system, sm_port, port, tls, http2, 'ws://', upgrade)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('websocket', body)
