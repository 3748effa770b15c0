"""jabtest.link — the link's raw ends, made by hand: smproto frames (docs/smproto.md §2), a front
that opens the link by the book (docs/smproto.md §1) and then sends whatever a test wants, a fake
SM that accepts a real front, and an external component's stream (XEP-0114) on the SM's
component port. Each end is a jabtest.raw.Raw on the TCP connection.

The protocol version a hand-made link asks for is the codec's own, read from smproto/frame.h."""

import hashlib
import os
import re
import socket
import struct

from .raw import Raw
from .report import Failure
from .system import ROOT
from .xmpp import NS_ACCEPT, NS_STREAM


def _smproto_version():
    with open(os.path.join(ROOT, 'smproto', 'frame.h')) as f:
        return int(re.search(r'#define SMPROTO_VERSION (\d+)', f.read()).group(1))


SMPROTO_VERSION = _smproto_version()
NS_SMPROTO = 'urn:jabshard:smproto'
# Frame types used by the tests, and the largest payload a frame may carry.
F_STANZA, F_AUTH_QUERY, F_ACK = 1, 2, 12
MAX_PAYLOAD = 1 << 20


def frame(type_, sid=0, payload=b'', length=None):
    """A frame: 16-byte header (length, type, flags, reserved, session id), then the payload."""
    return struct.pack('>IBBHQ', len(payload) if length is None else length, type_, 0, 0,
                       sid) + payload


def handshake(stream_id, secret):
    """XEP-0114's <handshake/> content: hex SHA-1 of the stream id and the secret."""
    return hashlib.sha1((stream_id + secret).encode()).hexdigest()


def _accept_header(to):
    return "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s'>" % (
        NS_ACCEPT, NS_STREAM, to)


def component(port, domain, secret, wait=5.0, accepted=True):
    """An external component's stream to the SM's port: the header for domain and, unless the
    SM refused the name at once, the handshake computed with secret. With accepted, the SM must
    answer <handshake/> (Failure otherwise); without, the Raw is returned as it is (for
    stream_error())."""
    r = Raw(socket.create_connection(('127.0.0.1', port), timeout=wait), wait)
    r.send(_accept_header(domain))
    m = r.read_until(r"<stream:stream[^>]*>|</stream:stream>", 'the stream header')
    sid = re.search(r"id=['\"]([^'\"]+)['\"]", m.group(0))
    if sid and '<stream:error' not in r.data.decode('utf-8', 'replace'):
        try:
            r.send('<handshake>%s</handshake>' % handshake(sid.group(1), secret))
        except OSError:
            pass   # refused already: stream_error() reads why
    elif accepted:
        raise Failure('the SM closed the component stream at its header: %r' % r.data[-300:])
    if accepted:
        r.read_until(r'<handshake\s*/>', 'the <handshake/> accepting the component')
    return r


def fake_front(sm_port, service, secret, instance='abcdef', acked=0, wait=5.0):
    """A raw front that opens the link as docs/smproto.md §1 says and reads the SM's answer;
    returns the Raw, now in frame mode, and the SM's received= value."""
    link = Raw(socket.create_connection(('127.0.0.1', sm_port), timeout=wait), wait)
    link.send(_accept_header(service))
    sid = link.read_until(r"<stream:stream\b[^>]*\sid=['\"]([^'\"]+)['\"][^>]*>",
                          'stream header from the SM').group(1)
    link.send('<handshake>%s</handshake>' % handshake(sid, secret))
    link.read_until(r'<handshake\s*/>|<handshake>\s*</handshake>', '<handshake/> from the SM')
    link.send("<smproto xmlns='%s' version='%d' instance='%s' acked='%d'/>" % (
        NS_SMPROTO, SMPROTO_VERSION, instance, acked))
    m = link.read_until(r"<smproto\b[^>]*\sreceived=['\"](\d+)['\"][^>]*/>", '<smproto/> answer')
    return link, int(m.group(1))


class FakeSM:
    """A listening socket on which a front is accepted and given the SM's side of the opening."""

    def __init__(self, wait=5.0):
        self.wait = wait
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]

    def accept(self, secret, seconds=None):
        """Returns the link, in frame mode, and the front's instance id."""
        seconds = self.wait if seconds is None else seconds
        self.sock.settimeout(seconds)
        try:
            conn, _ = self.sock.accept()
        except socket.timeout:
            raise Failure('no connection from the front within %s s' % seconds)
        link = Raw(conn, self.wait)
        link.read_until(r'<stream:stream\b[^>]*>', "the front's stream header")
        stream_id = os.urandom(12).hex()
        link.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' from='x' "
                  "id='%s'>" % (NS_ACCEPT, NS_STREAM, stream_id))
        digest = link.read_until(r'<handshake>([0-9a-f]+)</handshake>', "the front's handshake")
        expected = handshake(stream_id, secret)
        if digest.group(1) != expected:
            raise Failure('the front sent handshake %s, expected %s' % (digest.group(1), expected))
        link.send('<handshake/>')
        m = link.read_until(r"<smproto\b[^>]*/>", "the front's <smproto/>")
        attrs = dict(re.findall(r"(\w+)=['\"]([^'\"]*)['\"]", m.group(0)))
        if attrs.get('version') != str(SMPROTO_VERSION) or 'instance' not in attrs or \
                'acked' not in attrs:
            raise Failure('unexpected request from the front: %s' % m.group(0))
        link.send("<smproto xmlns='%s' version='%d' received='%s'/>" % (
            NS_SMPROTO, SMPROTO_VERSION, attrs['acked']))
        return link, attrs['instance']

    def close(self):
        self.sock.close()
