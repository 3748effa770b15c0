"""jabtest.raw — Raw, an XMPP stream driven by hand over a socket (plain, STARTTLS or direct TLS,
from a chosen source address): for what no client library sends, for thousands of cheap
connections, and for the link's raw ends (jabtest.link). What arrives is kept as bytes (data,
read with regular expressions) and, on demand, parsed into the stream's top-level elements
(elements, next(), expect()); stream_error() reads how the server ended the stream.

Every read is bounded: by the seconds given, else by the stream's wait."""

import re
import socket
import time
import xml.etree.ElementTree as ET

from .report import Failure
from .xmpp import (DOMAIN, NS_BIND, NS_CLIENT, NS_SASL, NS_STREAM, NS_STREAM_ERRORS, NS_TLS,
                   bind_iq, local, plain_auth, q, sasl_condition, stream_header, tls_context)


class Raw:
    """One stream on sock. data: what arrived since the stream (re)started; closed: the peer
    closed the connection (or it failed)."""

    def __init__(self, sock, wait=5.0, domain=DOMAIN, cafile=None):
        self.sock, self.wait, self.domain, self.cafile = sock, wait, domain, cafile
        self.closed = False
        self.opened = False
        self.restart()

    @classmethod
    def connect(cls, port, host='127.0.0.1', tls=False, cafile=None, src=None, rcvbuf=None,
                nodelay=False, wait=5.0, domain=DOMAIN, header=False):
        """A connection to host:port, from src if given (a loopback address), with direct TLS
        (checking the certificate against cafile, if given) if tls; with header, the client's
        stream header is sent at once (a connection refused at once keeps what the server
        said)."""
        sock = socket.socket()
        if src:
            sock.bind((src, 0))
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(wait)
        sock.connect((host, port))
        if nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            sock = tls_context(cafile).wrap_socket(sock, server_hostname=domain)
        r = cls(sock, wait, domain, cafile)
        if header:
            try:
                r.open()
            except OSError:
                pass
        return r

    @classmethod
    def to(cls, server, direct_tls=True, **kwargs):
        """A connection to a jabtest.xmpp.Server: its direct TLS port, or its STARTTLS port."""
        return cls.connect(server.tls_port if direct_tls else server.port, host=server.host,
                           tls=direct_tls, cafile=server.cafile, wait=server.wait,
                           domain=server.domain, **kwargs)

    # ---- sending ----

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

    def open(self, to=None):
        """Sends the client's stream header."""
        self.opened = True
        self.send(stream_header(to=self.domain if to is None else to))

    def restart(self):
        """A new stream on the connection (after STARTTLS or SASL): what came before is
        forgotten."""
        self.data = b''
        self.opened = False
        self.elements = []
        self._parser = None
        self._fed = 0
        self._depth = 0

    # ---- reading ----

    def _deadline(self, seconds):
        return time.monotonic() + (self.wait if seconds is None else seconds)

    def _read(self, deadline):
        """One read before deadline: True if bytes came, False on timeout or at the end."""
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            chunk = b''
        if not chunk:
            self.closed = True
            return False
        self.data += chunk
        return True

    def read_until(self, pattern, what, seconds=None):
        """Reads until the text received so far matches the regular expression pattern (re.S);
        returns the match. Raises Failure on timeout or at the end of the stream."""
        deadline = self._deadline(seconds)
        while True:
            m = re.search(pattern, self.data.decode('utf-8', 'replace'), re.S)
            if m:
                return m
            if not self._read(deadline):
                if self.closed or time.monotonic() >= deadline:
                    raise Failure('no %s from the server (%s; got %r)' % (
                        what, 'connection closed' if self.closed else 'timed out',
                        self.data[-400:]))

    def wait_for(self, marker, seconds=None):
        """Reads until the bytes marker have arrived (True); False at the end or on timeout."""
        deadline = self._deadline(seconds)
        while marker not in self.data:
            if not self._read(deadline) and (self.closed or time.monotonic() >= deadline):
                return False
        return True

    def read_to_close(self, seconds=None):
        """Reads until the peer closes the connection (True) or seconds pass (False)."""
        deadline = self._deadline(seconds)
        while not self.closed and time.monotonic() < deadline:
            self._read(deadline)
        return self.closed

    def until(self, pred, seconds=None):
        """Reads until pred(self) holds, the stream ends or seconds pass; returns pred(self)."""
        deadline = self._deadline(seconds)
        while not pred(self):
            if not self._read(deadline) and (self.closed or time.monotonic() >= deadline):
                return pred(self)
        return True

    def discard(self):
        """Forgets the text received so far (read_until then sees only what comes next); the
        elements parsed from it stay."""
        self._parse()
        self.data = b''
        self._fed = 0

    # ---- top-level elements ----

    def _parse(self):
        if self._parser is None:
            self._parser = ET.XMLPullParser(events=('start', 'end'))
        if self._fed >= len(self.data):
            return
        chunk, self._fed = self.data[self._fed:], len(self.data)
        try:
            self._parser.feed(chunk)
            for ev, el in self._parser.read_events():
                self._depth += 1 if ev == 'start' else -1
                if ev == 'end' and self._depth == 1:
                    self.elements.append(el)
        except ET.ParseError:
            pass   # what was parsed stays; the regular expressions still see the text

    def find(self, pred):
        """The first element received (and not taken) for which pred holds, or None."""
        self._parse()
        return next((el for el in self.elements if pred(el)), None)

    def next(self, pred, seconds=None):
        """Reads until an element for which pred holds has arrived; takes it from elements and
        returns it (None at the end of the stream or on timeout)."""
        self.until(lambda r: r.find(pred) is not None, seconds)
        el = self.find(pred)
        if el is not None:
            self.elements.remove(el)
        return el

    def expect(self, pred, what, seconds=None):
        """next(), raising Failure instead of returning None."""
        el = self.next(pred, seconds)
        if el is None:
            seen = ' | '.join(ET.tostring(e, encoding='unicode')[:200]
                              for e in self.elements[-3:]) or 'nothing'
            raise Failure('no %s within %s s (%s; unclaimed: %s)' % (
                what, self.wait if seconds is None else seconds,
                'connection closed' if self.closed else 'timed out', seen))
        return el

    def features(self, seconds=None):
        """The server's <stream:features/> (None: the stream ended without them)."""
        return self.next(lambda el: el.tag == q(NS_STREAM, 'features'), seconds)

    # ---- the opening of a client stream ----

    def starttls(self):
        """STARTTLS on the plain port: the stream restarts over TLS."""
        self.open()
        self.read_until(r'</stream:features>', 'stream features')
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        self.read_until(r'<proceed[^>]*/>', '<proceed/>')
        self.restart()
        self.sock = tls_context(self.cafile).wrap_socket(self.sock, server_hostname=self.domain)

    def sasl_plain(self, user, password, seconds=None):
        """Sends PLAIN's <auth/>; returns the <success/> or <failure/> that answers it (None if
        none came) and the seconds it took."""
        self.send(plain_auth(user, password))
        t0 = time.monotonic()
        el = self.next(lambda e: e.tag in (q(NS_SASL, 'success'), q(NS_SASL, 'failure')), seconds)
        return el, time.monotonic() - t0

    def authenticate(self, user, password):
        """PLAIN on this stream (opened here if it is not yet): 'success' once the restarted
        stream has its features, else the <failure/>'s condition; and the seconds SASL took."""
        if not self.opened:
            self.open()
        self.expect(lambda el: el.tag == q(NS_STREAM, 'features'), 'stream features')
        el, took = self.sasl_plain(user, password)
        if el is None:
            raise Failure('%s: no SASL outcome (%s)' % (
                user, 'connection closed' if self.closed else 'timed out'))
        cond = sasl_condition(el)
        if cond == 'success':
            self.restart()
            self.open()
            self.expect(lambda e: e.tag == q(NS_STREAM, 'features'), 'stream features after SASL')
        return cond, took

    def login(self, user, password, resource='raw', presence=False):
        """PLAIN over the TLS already in place, then bind (and initial presence if asked);
        returns the full JID. What the stream received stays in data, from its header on, for
        stream_error()."""
        cond, _ = self.authenticate(user, password)
        if cond != 'success':
            raise Failure('%s: SASL <%s/>' % (user, cond))
        self.send(bind_iq(resource))
        res = self.expect(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == 'bind',
                          'the bind result')
        jid = res.find('%s/%s' % (q(NS_BIND, 'bind'), q(NS_BIND, 'jid')))
        if res.get('type') != 'result' or jid is None:
            raise Failure('%s: bind failed: %s' % (user, ET.tostring(res, encoding='unicode')))
        if presence:
            self.send('<presence/>')
        return jid.text

    # ---- the end of a stream ----

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
        conds = [local(c.tag) for c in error
                 if c.tag.startswith('{%s}' % NS_STREAM_ERRORS) and not c.tag.endswith('}text')]
        if len(conds) != 1:
            raise Failure('a stream error with conditions %s: %r' % (conds, text[-400:]))
        if not stream_closed:
            raise Failure('stream error %s without </stream:stream>' % conds[0])
        return conds[0], closed

    def end(self):
        """Closes the stream (</stream:stream>, if the connection still takes it), then the
        connection."""
        try:
            self.send('</stream:stream>')
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
