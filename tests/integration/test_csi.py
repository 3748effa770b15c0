"""tests/integration/test_csi.py — XEP-0352 client state indication at the front, end to end with
the SM, with raw clients over TLS: u0 is the phone that goes inactive, u1 and u2 its contacts
(directed presence reaches u0 without a roster).

1. the feature is offered once authenticated, and the nonzas get no reply;
2. while u0 is inactive, presence and chat states wait: nothing is written to it, a contact's
   presence updates are kept only the latest, and a message with a body brings everything held,
   in order, then itself; an iq does the same; <active/> lets the held go at once, and so does
   <csi><max_hold>;
3. a connection closed while a message is held hands it back: it is in offline storage and
   delivered, with a <delay/>, at the next login;
4. the front's shutdown line counts what was held, superseded and saved.

Ports: 29400-29499 (no other suite uses them). Negative checks ("nothing arrived") wait a bounded
second; nothing else is decided by sleeping.

Usage: test_csi.py BUILD_DIR. Prints ok/not ok lines and "csi: N passed, N failed".
"""
import re
import socket
import time

from jabtest.proc import wait_until
from jabtest.raw import Raw
from jabtest.suite import main
from jabtest.system import System
from jabtest.xmpp import NS_CLIENT, NS_DELAY, q

NS_CSI = 'urn:xmpp:csi:0'
NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'
NS_RECEIPTS = 'urn:xmpp:receipts'
MAX_HOLD = 3          # seconds (<csi><max_hold>): longer than any hold the other checks make
QUIET = 1.0           # seconds a negative check waits


def ports_in(first, last, n):
    """n ports of [first, last] that are free on loopback now."""
    got = []
    for port in range(first, last + 1):
        s = socket.socket()
        try:
            s.bind(('127.0.0.1', port))
            got.append(port)
        except OSError:
            pass
        finally:
            s.close()
        if len(got) == n:
            return got
    raise RuntimeError('no %d free ports in %d-%d' % (n, first, last))


def session(system, user, password):
    """A bound session of user/r over direct TLS (PLAIN); what it received stays in data."""
    s = Raw.connect(system.tls_port, tls=True, wait=10)
    s.login(user, password, 'r')
    return s


def ping(s, id_):
    """A ping to the server, and its answer: what s sent before has been through the SM."""
    s.send("<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>" % id_)
    return s.next(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == id_)


def stanzas(s):
    """The stanzas s received and no one took, oldest first: (name, from, a short label)."""
    s._parse()
    out = []
    for el in s.elements:
        name = el.tag.split('}', 1)[-1]
        label = el.get('id') or ''
        status = el.find(q(NS_CLIENT, 'status'))
        if status is not None:
            label = status.text or ''
        if el.find(q(NS_CHATSTATES, 'composing')) is not None:
            label = 'composing'
        out.append((name, (el.get('from') or '').split('/')[0], label))
    return out


def presence_to(sender, label):
    sender.send("<presence to='u0@localhost/r'><status>%s</status></presence>" % label)


def arrived(s, pred, seconds):
    return s.until(lambda r: r.find(pred) is not None, seconds)


def is_label(label):
    return lambda e: (e.get('id') == label or
                      (e.find(q(NS_CLIENT, 'status')) is not None and
                       e.find(q(NS_CLIENT, 'status')).text == label))


def hold_body(r, system):
    u0 = session(system, 'u0', 'pw0')
    r.check("the features after authentication offer <csi xmlns='urn:xmpp:csi:0'/>",
            b"<csi xmlns='urn:xmpp:csi:0'/>" in u0.data, repr(u0.data[-300:]))
    u1 = session(system, 'u1', 'pw1')
    u2 = session(system, 'u2', 'pw2')
    for s in (u0, u1, u2):
        s.elements.clear()
    u0.send("<inactive xmlns='%s'/>" % NS_CSI)
    pong = ping(u0, 'p0')      # after the nonza: it is in effect, and it got no reply
    r.check('<inactive/> gets no reply; a ping after it is answered',
            pong is not None and stanzas(u0) == [], repr(stanzas(u0)))

    # Held: u1's presence twice over, u2's, a chat state. Only u1's latest survives.
    presence_to(u1, 'away-1')
    presence_to(u2, 'u2-here')
    presence_to(u1, 'away-2')
    u1.send("<message to='u0@localhost/r' type='chat' id='cs1'><composing xmlns='%s'/></message>"
            % NS_CHATSTATES)
    presence_to(u1, 'latest')
    ping(u1, 'p1')
    ping(u2, 'p2')
    quiet = not arrived(u0, lambda e: e.tag != q(NS_CLIENT, 'iq'), QUIET)
    r.check('inactive: presence updates and a chat state are not written', quiet,
            repr(stanzas(u0)))
    u1.send("<message to='u0@localhost/r' type='chat' id='b1'><body>wake up</body></message>")
    got = arrived(u0, is_label('b1'), 10)
    seq = stanzas(u0)
    want = [('presence', 'u2@localhost', 'u2-here'), ('message', 'u1@localhost', 'composing'),
            ('presence', 'u1@localhost', 'latest'), ('message', 'u1@localhost', 'b1')]
    r.check('a message with a body comes at once, after what was held, in order, with only the '
            "latest of u1's presences", got and seq == want, repr(seq))
    u0.elements.clear()

    # An iq is urgent too; it goes after what is held.
    presence_to(u2, 'u2-again')
    ping(u2, 'p3')
    u1.send("<iq type='get' to='u0@localhost/r' id='v1'><query xmlns='jabber:iq:version'/></iq>")
    got = arrived(u0, is_label('v1'), 10)
    seq = stanzas(u0)
    r.check('an iq comes at once, after what was held',
            got and seq == [('presence', 'u2@localhost', 'u2-again'), ('iq', 'u1@localhost', 'v1')],
            repr(seq))
    u0.send("<iq type='error' to='u1@localhost/r' id='v1'><error type='cancel'>"
            "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    u0.elements.clear()

    # <active/> lets the held go at once.
    presence_to(u1, 'before-active')
    ping(u1, 'p4')
    quiet = not arrived(u0, is_label('before-active'), QUIET)
    u0.send("<active xmlns='%s'/>" % NS_CSI)
    got = arrived(u0, is_label('before-active'), 10)
    r.check('<active/> brings what was held at once', quiet and got, repr(stanzas(u0)))
    u0.elements.clear()
    presence_to(u1, 'while-active')
    r.check('active again: a presence update is written at once',
            arrived(u0, is_label('while-active'), 10), repr(stanzas(u0)))
    u0.elements.clear()

    # The bound on time.
    u0.send("<inactive xmlns='%s'/>" % NS_CSI)
    ping(u0, 'p5')
    u0.elements.clear()
    t0 = time.monotonic()
    presence_to(u1, 'timed')
    got = arrived(u0, is_label('timed'), MAX_HOLD + 8)
    took = time.monotonic() - t0
    r.check('<csi><max_hold> %d s: a held presence goes %d s after it came (%.1f s)'
            % (MAX_HOLD, MAX_HOLD, took), got and MAX_HOLD - 0.5 <= took <= MAX_HOLD + 5)
    u0.elements.clear()

    # Custody: a held message goes back when the connection ends, to offline storage.
    u1.send("<message to='u0@localhost/r' type='chat' id='rc1'><received xmlns='%s' id='b1'/>"
            "</message>" % NS_RECEIPTS)
    ping(u1, 'p6')
    quiet = not arrived(u0, is_label('rc1'), QUIET)
    r.check('inactive: a receipt (no body) is held', quiet, repr(stanzas(u0)))
    u0.close()               # the phone's connection dies, without a goodbye
    gone = wait_until(lambda: not any(row[0] == 'u0@localhost/r' for row in system.sessions()[1]),
                      10)
    r.check("the SM ends the closed connection's session", gone)
    again = session(system, 'u0', 'pw0')
    again.send('<presence/>')
    stored = arrived(again, is_label('rc1'), 10)
    el = again.find(is_label('rc1'))
    r.check('a message held when the connection closed is delivered from offline storage at the '
            'next login, with a <delay/>',
            stored and el is not None and el.find(q(NS_DELAY, 'delay')) is not None,
            repr(stanzas(again)))
    for s in (again, u1, u2):
        s.end()


def counters_checked(r, system):
    log = system.program_log('jadc2s')
    m = re.search(r'csi: held (\d+) stanzas, superseded (\d+) \((\d+) bytes never written\), '
                  r'flushes (\d+) \((\d+) bytes held then written\), writes saved (\d+)', log)
    if not r.check("the front's shutdown line counts CSI", m, log[-600:]):
        return
    held, superseded, _, flushes, flushed, saved = (int(x) for x in m.groups())
    r.check('...held %d, superseded %d, flushes %d (%d bytes), writes saved %d'
            % (held, superseded, flushes, flushed, saved),
            held >= 9 and superseded >= 2 and flushes >= 4 and flushed > 0 and saved >= 6)


def suite(report, build):
    with System(build, 'csi', report) as system:
        try:
            if system.start_pair(report, 3, '<max_bps>0</max_bps>',
                                 ports=ports_in(29400, 29499, 3),
                                 front_extra='<csi><max_hold>%d</max_hold></csi>' % MAX_HOLD):
                hold_body(report, system)
        finally:
            system.stop_pair(report)
        if 'jadc2s' in system.front_procs:
            counters_checked(report, system)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('csi', suite)
