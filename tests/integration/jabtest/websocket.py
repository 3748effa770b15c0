"""jabtest/websocket.py — a WebSocket client (RFC 6455) on the standard library, for the raw
tests of the front's web listener and for Chromium's DevTools socket (jabtest.browser): the
opening handshake, masked frames out, frames in (text, binary, ping, pong, close; a fragmented
message joined), and an XMPP-over-WebSocket session (RFC 7395) on top."""

import base64
import hashlib
import os
import socket
import ssl
import struct
import xml.etree.ElementTree as ET

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing'

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


class Closed(Exception):
    pass


def frame(opcode, payload, fin=True, mask=True):
    """One frame as a client sends it (masked)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack('>H', n)
    else:
        head += bytes([m | 127]) + struct.pack('>Q', n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WebSocket:
    """One connection: handshake() then send()/recv()."""

    def __init__(self, port, host='127.0.0.1', tls=False, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname='localhost')
        self.port, self.tls = port, tls
        self.pending = b''
        self.status = None
        self.headers = {}

    def handshake(self, path='/xmpp-websocket', protocol='xmpp', version='13', origin=None,
                  extra=b''):
        """Sends the upgrade request; returns the answer's status (101 when it upgraded)."""
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = ['GET %s HTTP/1.1' % path, 'Host: localhost:%d' % self.port,
                 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: ' + self.key,
                 'Sec-WebSocket-Version: ' + version]
        if protocol:
            lines.append('Sec-WebSocket-Protocol: ' + protocol)
        if origin:
            lines.append('Origin: ' + origin)
        self.sock.sendall(('\r\n'.join(lines) + '\r\n').encode() + extra + b'\r\n')
        head = self._read_until(b'\r\n\r\n')
        status_line, *rest = head.decode('latin-1').split('\r\n')
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in
                        (l.split(':', 1) for l in rest if ':' in l)}
        return self.status

    def accept_ok(self):
        want = base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest()).decode()
        return self.headers.get('sec-websocket-accept') == want

    def _read_until(self, marker):
        while marker not in self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise Closed('closed before %r' % marker)
            self.pending += data
        i = self.pending.index(marker) + len(marker)
        out, self.pending = self.pending[:i], self.pending[i:]
        return out

    def _read(self, n):
        while len(self.pending) < n:
            data = self.sock.recv(65536)
            if not data:
                raise Closed('connection closed')
            self.pending += data
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, text, opcode=TEXT):
        self.sock.sendall(frame(opcode, text.encode() if isinstance(text, str) else text))

    def recv_frame(self):
        """(fin, opcode, payload, masked) of the next frame."""
        b0, b1 = self._read(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack('>H', self._read(2))[0]
        elif n == 127:
            n = struct.unpack('>Q', self._read(8))[0]
        key = self._read(4) if b1 & 0x80 else None
        payload = self._read(n)
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0f, payload, key is not None

    def recv(self):
        """The next message's (opcode, payload), its fragments joined (a browser's DevTools
        socket splits a large answer); pings are answered on the way."""
        first, parts = None, []
        while True:
            fin, op, payload, _ = self.recv_frame()
            if op == PING:
                self.send(payload, PONG)
                continue
            if op >= CLOSE:
                return op, payload
            first = op if first is None else first
            parts.append(payload)
            if fin:
                return first, b''.join(parts)

    def recv_text(self):
        op, payload = self.recv()
        if op == CLOSE:
            raise Closed('close frame %r' % payload)
        return payload.decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class XmppWebSocket(WebSocket):
    """An RFC 7395 client: open(), elements as ElementTree trees, login()."""

    def open(self, to='localhost'):
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, to))
        opened = ET.fromstring(self.recv_text())
        features = ET.fromstring(self.recv_text())
        return opened, features

    def element(self):
        return ET.fromstring(self.recv_text())

    def login(self, user, password, to='localhost', resource='ws'):
        """PLAIN (the connection is TLS or counted as secure), the restart, bind. Returns the
        bound JID."""
        self.open(to)
        token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode()).decode()
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
                  % token)
        answer = self.element()
        if not answer.tag.endswith('success'):
            raise Closed('SASL: %s' % ET.tostring(answer))
        self.open(to)
        self.send("<iq xmlns='jabber:client' type='set' id='b1'><bind "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>"
                  % resource)
        iq = self.element()
        return iq.find('.//{urn:ietf:params:xml:ns:xmpp-bind}jid').text
