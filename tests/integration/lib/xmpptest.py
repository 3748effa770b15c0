"""tests/integration/lib/xmpptest.py — what the xmpp_*.py scenarios share: the server under test
(from the environment xmpp.sh sets), ok / not ok reporting, a slixmpp client that keeps every
stanza it receives so a scenario can wait for the one it expects, and a raw socket that speaks
XMPP by hand for what no client library will send.

Every wait is bounded (WAIT seconds); a scenario never sleeps to decide anything."""

import asyncio
import base64
import copy
import logging
import os
import re
import socket
import ssl
import sys
import time
import traceback
import xml.etree.ElementTree as ET

# Before slixmpp is imported: it logs a warning about its stringprep at import time.
if not os.environ.get('XMPP_DEBUG'):
    logging.disable(logging.CRITICAL)

import slixmpp  # noqa: E402

HOST = os.environ.get('XMPP_HOST', '127.0.0.1')
PORT = int(os.environ.get('XMPP_PORT', '5222'))
TLS_PORT = int(os.environ.get('XMPP_TLS_PORT', '5223'))
CAFILE = os.environ.get('XMPP_CAFILE', '')
DOMAIN = 'localhost'
WAIT = float(os.environ.get('XMPP_WAIT', '5'))

NS_CLIENT = 'jabber:client'
NS_STREAM = 'http://etherx.jabber.org/streams'
NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_ROSTER = 'jabber:iq:roster'
NS_DELAY = 'urn:xmpp:delay'


class Failure(Exception):
    """A scenario's expectation that did not hold; the text says what was seen instead."""


def q(ns, name):
    return '{%s}%s' % (ns, name)


def show(el):
    """One stanza as text, for failure messages."""
    if el is None:
        return '(none)'
    text = ET.tostring(el, encoding='unicode')
    return text if len(text) < 600 else text[:600] + '...'


def xml_escape(text):
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;').replace('"', '&quot;'))


def stanza_error(el):
    """(type, condition) of a type='error' stanza, or None."""
    if el is None or el.get('type') != 'error':
        return None
    err = el.find(q(NS_CLIENT, 'error'))
    if err is None:
        return (None, None)
    for child in err:
        if child.tag.startswith('{%s}' % NS_STANZAS) and not child.tag.endswith('}text'):
            return (err.get('type'), child.tag.split('}')[1])
    return (err.get('type'), None)


class Report:
    """ok / not ok lines, one per check, and the counts for the summary."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        self.passed += 1
        print('ok - %s' % name, flush=True)

    def not_ok(self, name, why):
        self.failed += 1
        print('not ok - %s: %s' % (name, why), flush=True)

    def check(self, name, cond, why=''):
        if cond:
            self.ok(name)
        else:
            self.not_ok(name, why or 'expectation failed')
        return cond

    async def scenario(self, name, fn, timeout=30):
        """Runs one scenario coroutine function: it reports its own checks and raises Failure
        for the one that stops it; that, a timeout or a crash is one not ok line."""
        try:
            await asyncio.wait_for(fn(), timeout)
        except Failure as e:
            self.not_ok(name, str(e))
        except asyncio.TimeoutError:
            self.not_ok(name, 'did not finish in %s s' % timeout)
        except Exception:
            self.not_ok(name, 'crashed:\n' + ''.join('    ' + l for l in
                                                      traceback.format_exc().splitlines(True)))

    def summary(self, what):
        print('%s: %d passed, %d failed' % (what, self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 else 1


class Client(slixmpp.ClientXMPP):
    """A slixmpp client over TLS that checks the server's certificate against the run
    directory's (pinned) and records every stanza it receives, as XML, in order.

    slixmpp 1.8 can authenticate to us with PLAIN only: its SCRAM -PLUS variants know only the
    tls-unique channel binding, which TLS 1.3 does not have, and its plain SCRAM then sends the
    'y' flag ("I could bind, the server cannot") while we advertise -PLUS, which the server must
    and does refuse as a possible downgrade (RFC 5802 §6). So mech defaults to PLAIN; None leaves
    the choice to slixmpp."""

    def __init__(self, jid, password, mech='PLAIN', plugins=()):
        super().__init__(jid, password, sasl_mech=mech)
        for p in plugins:
            self.register_plugin(p)
        if CAFILE:
            self.ssl_context.load_verify_locations(CAFILE)
        # Subscriptions are the scenarios' business, not the library's.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.received = []
        self.auth_failures = []
        self.stream_errors = []
        self.end_of_stream = False   # the server sent </stream:stream>
        self._arrived = asyncio.Event()
        self.started = self.loop.create_future()
        self.started.add_done_callback(lambda f: f.cancelled() or f.exception())  # no warning
        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler('failed_auth', lambda st: self.auth_failures.append(st['condition']))
        self.add_event_handler('stream_error', lambda e: self.stream_errors.append(e['condition']))
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('connection_failed', self._on_connection_failed)
        self._serial = 0

    # -- what arrives

    def incoming_filter(self, xml):
        self.received.append(copy.deepcopy(xml))
        self._arrived.set()
        return xml

    def _on_session_start(self, _):
        if not self.started.done():
            self.started.set_result(True)

    def _on_disconnected(self, reason):
        # slixmpp gives this reason when it saw the server's closing tag (and aborted at once,
        # so whether the server's FIN or our close comes first is a race of no interest).
        if reason == 'End of stream':
            self.end_of_stream = True
        if not self.started.done():
            why = 'disconnected before the session started'
            if self.auth_failures:
                why += '; SASL failures: %s' % ', '.join(self.auth_failures)
            if self.stream_errors:
                why += '; stream errors: %s' % ', '.join(self.stream_errors)
            self.started.set_exception(Failure(why))

    def _on_connection_failed(self, err):
        if not self.started.done():
            self.started.set_exception(Failure('cannot connect: %s' % err))
        self.cancel_connection_attempt()

    def next_id(self, prefix='t'):
        self._serial += 1
        return '%s%d' % (prefix, self._serial)

    async def login(self, direct_tls=False, port=None):
        """Connects (STARTTLS on PORT, or direct TLS on TLS_PORT; port overrides either),
        authenticates and binds; raises Failure if that does not happen within WAIT seconds."""
        port = port or (TLS_PORT if direct_tls else PORT)
        self.connect((HOST, port), use_ssl=direct_tls, force_starttls=not direct_tls)
        try:
            await asyncio.wait_for(asyncio.shield(self.started), WAIT)
        except asyncio.TimeoutError:
            self.abort()
            raise Failure('%s: no session within %s s (SASL failures %s, stream errors %s)' %
                          (self.boundjid, WAIT, self.auth_failures, self.stream_errors))
        return self

    async def logout(self):
        if self.transport:
            await asyncio.wait_for(self.disconnect(wait=WAIT), WAIT + 1)

    async def expect(self, pred, what, timeout=None):
        """Waits for, removes and returns the first received element for which pred is true."""
        deadline = time.monotonic() + (WAIT if timeout is None else timeout)
        while True:
            for i, el in enumerate(self.received):
                if pred(el):
                    del self.received[i]
                    return el
            left = deadline - time.monotonic()
            if left <= 0:
                recent = ' | '.join(show(e) for e in self.received[-4:]) or 'nothing'
                raise Failure('%s did not get %s (unclaimed stanzas: %s)' %
                              (self.boundjid.bare, what, recent))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def expect_id(self, sid, what):
        return await self.expect(lambda el: el.get('id') == sid and el.tag in (
            q(NS_CLIENT, 'iq'), q(NS_CLIENT, 'message'), q(NS_CLIENT, 'presence')), what)

    async def iq(self, type_, payload, to=None, what='the answer'):
        """Sends <iq type=type_ to=to>payload</iq> and returns the answer's element."""
        sid = self.next_id('iq')
        self.send_raw("<iq type='%s' id='%s'%s>%s</iq>" % (
            type_, sid, " to='%s'" % xml_escape(to) if to else '', payload))
        return await self.expect_id(sid, '%s (iq %s)' % (what, sid))

    def drop(self, pred):
        """Forgets received elements matching pred (pushes and presences a scenario ignores)."""
        self.received = [el for el in self.received if not pred(el)]


def is_(el, name, type_=None, from_=None, ns=NS_CLIENT):
    """el is <name/> in ns, of type type_ ('' = no type attribute) and from from_."""
    if el.tag != q(ns, name):
        return False
    if type_ is not None and (el.get('type') or '') != type_:
        return False
    if from_ is not None and el.get('from') != from_:
        return False
    return True


def roster_push_for(el, contact):
    """The <item/> for contact if el is a roster push (iq set with a roster query), else None."""
    if not is_(el, 'iq', 'set'):
        return None
    query = el.find(q(NS_ROSTER, 'query'))
    if query is None:
        return None
    for item in query.findall(q(NS_ROSTER, 'item')):
        if item.get('jid') == contact:
            return item
    return None


# ---- raw streams ------------------------------------------------------------------------------

def tls_context():
    ctx = ssl.create_default_context(cafile=CAFILE or None)
    if not CAFILE:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def stream_header(to=DOMAIN, version='1.0', xmlns=NS_CLIENT, stream_ns=NS_STREAM, prolog=True):
    return ("%s<stream:stream xmlns='%s' xmlns:stream='%s'%s version='%s'>" % (
        "<?xml version='1.0'?>" if prolog else '', xmlns, stream_ns,
        " to='%s'" % to if to is not None else '', version))


class Raw:
    """A hand-driven client stream: direct TLS (TLS_PORT) by default, or the plain port, where
    starttls() upgrades it. Reads are bounded by WAIT."""

    def __init__(self, direct_tls=True, nodelay=False):
        self.sock = socket.create_connection((HOST, TLS_PORT if direct_tls else PORT), timeout=WAIT)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if direct_tls:
            self.sock = tls_context().wrap_socket(self.sock, server_hostname=DOMAIN)
        self.data = b''
        self.closed = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_bytewise(self, data):
        """One byte per send (with TCP_NODELAY: per TCP segment; over TLS: per record), each
        given a moment to leave before the next so the server reads them one by one."""
        if isinstance(data, str):
            data = data.encode()
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            time.sleep(0.0005)

    def _read(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLError):
            chunk = b''
        if not chunk:
            self.closed = True
            return False
        self.data += chunk
        return True

    def read_until(self, pattern, what):
        """Reads until the text received so far matches the regular expression pattern;
        returns the match. Raises Failure after WAIT seconds or at end of stream."""
        deadline = time.monotonic() + WAIT
        while True:
            m = re.search(pattern, self.data.decode('utf-8', 'replace'), re.S)
            if m:
                return m
            if not self._read(deadline):
                raise Failure('no %s from the server (%s; got %r)' % (
                    what, 'connection closed' if self.closed else 'timed out', self.data[-400:]))

    def read_to_close(self):
        """Reads until the server closes the connection (True) or WAIT passes (False)."""
        deadline = time.monotonic() + WAIT
        while self._read(deadline):
            pass
        return self.closed

    def starttls(self):
        self.send(stream_header())
        self.read_until(r'</stream:features>', 'stream features')
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        self.read_until(r'<proceed[^>]*/>', '<proceed/>')
        self.data = b''
        self.sock = tls_context().wrap_socket(self.sock, server_hostname=DOMAIN)

    def login(self, user, password, resource='raw'):
        """PLAIN over the TLS already in place, then bind; returns the full JID."""
        self.send(stream_header())
        self.read_until(r'</stream:features>', 'stream features')
        token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode()).decode()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, token))
        self.read_until(r'<success[^>]*(/>|>.*?</success>)', 'SASL success')
        self.data = b''
        self.send(stream_header())
        self.read_until(r'</stream:features>', 'stream features after SASL')
        self.send("<iq type='set' id='bind1'><bind xmlns='%s'><resource>%s</resource></bind></iq>"
                  % (NS_BIND, resource))
        # What this stream received stays in data, from its header on, for stream_error().
        return self.read_until(r'<jid>([^<]*)</jid>', 'the bound JID').group(1)

    def stream_error(self):
        """Reads to the end of the stream and returns (condition, closed): the single defined
        condition of the stream error in what the server sent, which must be well-formed XML (a
        stream header, maybe features, the error, the closing tag). Raises Failure otherwise."""
        closed = self.read_to_close()
        text = self.data.decode('utf-8', 'replace')
        parser = ET.XMLPullParser(events=('start', 'end'))
        try:
            parser.feed(self.data)
            events = list(parser.read_events())
        except ET.ParseError as e:
            raise Failure('the server sent malformed XML (%s): %r' % (e, text[-400:]))
        depth = 0
        error = None
        stream_closed = False
        for ev, el in events:
            if ev == 'start':
                depth += 1
            else:
                depth -= 1
                if depth == 1 and el.tag == q(NS_STREAM, 'error'):
                    error = el
                if depth == 0 and el.tag == q(NS_STREAM, 'stream'):
                    stream_closed = True
        if error is None:
            raise Failure('no stream error (closed: %s); got %r' % (closed, text[-400:]))
        conds = [c.tag.split('}')[1] for c in error
                 if c.tag.startswith('{%s}' % NS_STREAM_ERRORS) and not c.tag.endswith('}text')]
        if len(conds) != 1:
            raise Failure('a stream error with conditions %s: %r' % (conds, text[-400:]))
        if not stream_closed:
            raise Failure('stream error %s without </stream:stream>' % conds[0])
        return conds[0], closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def main(run, what):
    """Runs the coroutine function run(report) and exits with the summary's status. Library
    logging (slixmpp's complaints about connections a scenario cut on purpose) is shown only
    with XMPP_DEBUG=1, and then all of it, wire traffic included."""
    if os.environ.get('XMPP_DEBUG'):
        logging.basicConfig(level=logging.DEBUG, format='    %(name)s: %(message)s')
    report = Report()
    asyncio.run(run(report))
    sys.exit(report.summary(what))
