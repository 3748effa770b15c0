"""tests/integration/xmpp_raw.py — what no client library sends: malformed and forbidden input
over raw sockets (Python's ssl, no XMPP library), each answered with its exact RFC 6120 stream
error, a well-formed one, and the connection closed; meanwhile a logged-in session keeps being
served. Then a stream fed one byte per TCP segment (and, after STARTTLS, one byte per TLS record)
that must work as if it had come in one piece.

Run by xmpp.sh with the server in the environment (see lib/xmpptest.py); the accounts erin and
frank exist with passwords from XMPP_PASSWORDS. Ends with "xmpp raw: N passed, N failed"."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))

from xmpptest import (DOMAIN, NS_SASL, Failure, Raw, main, tls_context,  # noqa: E402
                      stream_header)

PW = dict(pair.split('=', 1) for pair in os.environ.get('XMPP_PASSWORDS', '').split())
NS_PING = 'urn:xmpp:ping'
HEADER = stream_header()

# (name, expected condition, what to send, where): each on a fresh connection; 'tls' is the
# direct TLS port before authentication, 'plain' the STARTTLS port before STARTTLS, 'auth' a
# direct TLS stream after login and bind.
CASES = [
    ('a mismatched end tag', 'not-well-formed', HEADER + '<message><body>x</message>', 'tls'),
    ('text between stanzas', 'not-well-formed', HEADER + 'hello', 'tls'),
    ('a comment', 'restricted-xml', HEADER + '<!-- a comment -->', 'tls'),
    ('a processing instruction', 'restricted-xml', HEADER + '<?evil instruction?>', 'tls'),
    ('a DOCTYPE before the stream header', 'restricted-xml',
     "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>" +
     stream_header(prolog=False), 'tls'),
    ('an undeclared entity', 'restricted-xml', HEADER + '<message><body>&x;</body></message>',
     'tls'),
    ('an unbound prefix on a stanza', 'bad-namespace-prefix',
     HEADER + "<foo:message to='a@%s'/>" % DOMAIN, 'tls'),
    ('a stream header without xmlns:stream', 'bad-namespace-prefix',
     "<?xml version='1.0'?><stream:stream xmlns='jabber:client' to='%s' version='1.0'>" % DOMAIN,
     'tls'),
    ("to='nowhere'", 'host-unknown', stream_header(to='nowhere'), 'tls'),
    ("to='nowhere' on the STARTTLS port", 'host-unknown', stream_header(to='nowhere'), 'plain'),
    ("the content namespace jabber:server", 'invalid-namespace',
     stream_header(xmlns='jabber:server'), 'tls'),
    ('a stream element in the wrong namespace', 'invalid-namespace',
     stream_header(stream_ns='http://example.com/streams'), 'tls'),
    ("version='2.0'", 'unsupported-version', stream_header(version='2.0'), 'tls'),
    ('an encoding other than UTF-8', 'unsupported-encoding',
     "<?xml version='1.0' encoding='ISO-8859-1'?>" + stream_header(prolog=False), 'tls'),
    ('a stanza over 256 KiB before authentication', 'policy-violation',
     HEADER + '<message><body>' + 'a' * 263000 + '</body></message>', 'tls'),
    ('a message before authentication', 'not-authorized',
     HEADER + "<message to='frank@%s'><body>hi</body></message>" % DOMAIN, 'tls'),
    ('SASL on the STARTTLS port before STARTTLS', 'policy-violation',
     HEADER + "<auth xmlns='%s' mechanism='PLAIN'>AGZyYW5rAHg=</auth>" % NS_SASL, 'plain'),
    ('a stanza over 256 KiB after authentication', 'policy-violation',
     "<message to='frank@%s'><body>%s</body></message>" % (DOMAIN, 'a' * 263000), 'auth'),
    ('an unknown top-level element after authentication', 'unsupported-stanza-type',
     "<foo xmlns='jabber:client'/>", 'auth'),
]


class Witness:
    """frank, logged in on a raw stream, who must keep getting answers while the others fail."""

    def __init__(self):
        self.raw = Raw()
        self.jid = self.raw.login('frank', PW['frank'], 'witness')
        self.pings = 0

    def ping(self):
        self.pings += 1
        sid = 'w%d' % self.pings
        self.raw.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>"
                      % (sid, DOMAIN, NS_PING))
        self.raw.read_until(r"<iq[^>]*\bid=['\"]%s['\"][^>]*type=['\"]result|"
                            r"<iq[^>]*type=['\"]result['\"][^>]*\bid=['\"]%s['\"]" % (sid, sid),
                            'the answer to ping %s' % sid)


def one_case(r, witness, name, condition, data, where):
    raw = Raw(direct_tls=where != 'plain')
    try:
        if where == 'auth':
            raw.login('erin', PW['erin'])
        try:
            raw.send(data)
        except OSError:
            pass    # the server may close before reading it all: what it said is what counts
        got, closed = raw.stream_error()
        r.check('%s: <%s/>, then the connection is closed' % (name, condition),
                got == condition and closed,
                'got <%s/>, connection %s' % (got, 'closed' if closed else 'still open'))
    except Failure as e:
        r.not_ok('%s: <%s/>' % (name, condition), str(e))
    finally:
        raw.close()
    witness.ping()


def malformed(r):
    witness = Witness()
    # A connection that stalls in the middle of a stanza stays open throughout.
    stalled = Raw()
    stalled.send(HEADER + "<message to='frank@%s'><body>never fin" % DOMAIN)
    for case in CASES:
        one_case(r, witness, *case)
    witness.ping()
    r.check('a logged-in session was served between and after all of them (%d pings), with a '
            'stalled half stanza open elsewhere' % witness.pings, True)
    stalled.close()
    witness.raw.close()


def bytewise(r):
    """The plain port, TCP_NODELAY, one byte per segment up to STARTTLS; after it one byte per
    TLS record for the stanzas."""
    witness = Raw()
    witness_jid = witness.login('frank', PW['frank'], 'bytewise')
    raw = Raw(direct_tls=False, nodelay=True)
    raw.send_bytewise(HEADER)
    raw.read_until(r'</stream:features>', 'stream features')
    raw.send_bytewise("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    raw.read_until(r'<proceed[^>]*/>', '<proceed/>')
    raw.data = b''
    raw.sock = tls_context().wrap_socket(raw.sock, server_hostname=DOMAIN)
    r.check('stream header and STARTTLS sent one byte per TCP segment', True)
    sender = raw.login('erin', PW['erin'], 'bytes')
    body = 'one byte at a time: \u00e9\u00e8 \u2603'   # multi-byte UTF-8 split across records
    raw.send_bytewise("<message to='%s' type='chat' id='b1'><body>%s</body></message>"
                      % (witness_jid, body))
    m = witness.read_until(r"<message[^>]*>.*?</message>", 'the bytewise message')
    text = m.group(0)
    r.check('a message sent one byte per TLS record after auth is delivered whole, from the '
            'sender\'s full JID',
            ('<body>%s</body>' % body) in text and ("from='%s'" % sender in text or
                                                    'from="%s"' % sender in text),
            'got %r' % text)
    raw.send_bytewise("<iq type='get' id='b2' to='%s'><ping xmlns='%s'/></iq>" % (DOMAIN, NS_PING))
    raw.read_until(r"<iq[^>]*\bid=['\"]b2['\"]", 'the answer to the bytewise ping')
    r.check('an iq sent one byte per record is answered', True)
    raw.send_bytewise('</stream:stream>')
    r.check('a closing tag sent one byte per record closes the stream',
            raw.read_to_close() and raw.data.decode().rstrip().endswith('</stream:stream>'),
            'got %r' % raw.data[-200:])
    raw.close()
    witness.close()


def shutdown_witness(r):
    """Logged in, says 'ready' and waits for the server to go away: a server stopping on
    SIGTERM or Ctrl-C must say <system-shutdown/> to every client before closing."""
    raw = Raw()
    raw.login('erin', PW['erin'], 'shutdown')
    print('ready', flush=True)
    got, closed = raw.stream_error()
    r.check('a logged-in client gets <system-shutdown/> when the server is stopped, and the '
            'connection is closed', got == 'system-shutdown' and closed,
            'got <%s/>, connection %s' % (got, 'closed' if closed else 'still open'))
    raw.close()


async def run(r):
    if sys.argv[1:] == ['shutdown-witness']:
        await r.scenario('shutdown', lambda: asyncio.to_thread(shutdown_witness, r), timeout=60)
        return
    for name, fn in (('malformed input', malformed), ('one byte per segment', bytewise)):
        await r.scenario(name, lambda fn=fn: asyncio.to_thread(fn, r), timeout=60)


if __name__ == '__main__':
    main(run, 'xmpp shutdown' if sys.argv[1:] == ['shutdown-witness'] else 'xmpp raw')
