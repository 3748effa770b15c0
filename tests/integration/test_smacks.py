"""tests/integration/test_smacks.py — XEP-0198 stream management end to end: the SM and two fronts
(A and B) on TLS, clients driven by hand (raw sockets) and by slixmpp's xep_0198 plugin.

1. resume on the other front: a client enables resumption on A, reads three messages and
   acknowledges one (the server asks for it within <smacks><request_wait>, fewer than
   <request_stanzas> being unacknowledged), its socket dies; a message sent while it is away is
   kept; it reconnects to B and resumes: exactly the three it had not acknowledged arrive, and the server's h says what
   it had of the client's;
2. a resumption while the old connection lives: the old one gets <conflict/>, the new one the
   session and what the old one had not acknowledged;
3. a hibernated session that is not resumed in time (the client asked for max='1'): its
   unacknowledged message is in offline storage (delivered at the next login, with <delay/>),
   and its id is refused afterwards (<item-not-found/>);
4. a clean close (</stream:stream>) ends the session at once: no resumption;
5. the failure paths: <enable/> before bind and twice (<unexpected-request/>), <r/> without
   stream management (a stream error), an unknown or another account's id (<item-not-found/>),
   <resume/> after bind (<unexpected-request/>), an <a/> that acknowledges more than was sent
   (<undefined-condition/> with <handled-count-too-high/>), <r/> answered with the count;
6. slixmpp's xep_0198 client: its connection is cut under it; it resumes by itself and gets the
   message sent meanwhile;
7. a hibernated session survives an SM restart (SIGKILL): a client's socket dies with a message
   unacknowledged, another comes while it is away, the SM is killed and started again, a third
   comes; the client resumes on the other front and gets the three, in order, once.

Usage: test_smacks.py BUILD_DIR. Prints ok/not ok lines and "smacks: N passed, N failed"."""

import asyncio
import socket
import ssl
import subprocess
import time

from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.xmpp import NS_CLIENT, q

NS_SM = 'urn:xmpp:sm:3'


def sm(tag):
    return q(NS_SM, tag)


def connect(port, user, wait=10):
    """An authenticated, unbound stream of user (u<i>, password pw<i>) over direct TLS."""
    s = Raw.connect(port, tls=True, wait=wait)
    cond, _ = s.authenticate(user, 'pw' + user[1:])
    if cond != 'success':
        raise Failure('%s: SASL %s' % (user, cond))
    return s


def bound(port, user, resource='r'):
    s = Raw.connect(port, tls=True, wait=10)
    s.login(user, 'pw' + user[1:], resource)
    return s


def enable(s, extra=''):
    s.send("<enable xmlns='%s' resume='true'%s/>" % (NS_SM, extra))
    el = s.expect(lambda e: e.tag in (sm('enabled'), sm('failed')), '<enabled/>')
    if el.tag != sm('enabled'):
        raise Failure('enable refused: %s' % el)
    return el


def message(sender, to, body):
    sender.send("<message to='%s@localhost/r' type='chat' id='%s'><body>%s</body></message>"
                % (to, body, body))


def bodies(s, n, seconds=10):
    """The bodies of the next n messages the stream receives."""
    got = []
    for _ in range(n):
        el = s.expect(lambda e: e.tag == q(NS_CLIENT, 'message'), 'a message', seconds)
        b = el.find(q(NS_CLIENT, 'body'))
        got.append(b.text if b is not None else None)
    return got


def cut(s):
    """The connection dies under the client: no </stream:stream>, an RST."""
    try:
        s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    except OSError:
        pass
    s.close()


def resume(port, user, previd, h):
    s = connect(port, user)
    s.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, previd, h))
    el = s.expect(lambda e: e.tag in (sm('resumed'), sm('failed')), 'the answer to <resume/>')
    return s, el


def resume_elsewhere(r, a_port, b_port):
    alice = bound(a_port, 'u0')
    bob = bound(a_port, 'u1')
    previd = enable(alice).get('id')
    r.check('<enabled/> has an id and resume', previd and len(previd) >= 16)
    for body in ('m1', 'm2', 'm3'):
        message(bob, 'u0', body)
    r.check('the three messages arrive', bodies(alice, 3) == ['m1', 'm2', 'm3'])
    # alice asks what the server has of hers, then acknowledges one of its three.
    message(alice, 'u1', 'hello')
    alice.send("<r xmlns='%s'/>" % NS_SM)
    a = alice.expect(lambda e: e.tag == sm('a'), "the server's <a/>")
    r.check("the server's h counts the client's stanza", a.get('h') == '1', a.get('h'))
    alice.send("<a xmlns='%s' h='1'/>" % NS_SM)
    # The server asks for acknowledgements (<r/>): three stanzas are fewer than <smacks>
    # <request_stanzas> (5), so it asks once the oldest has waited <request_wait> (4 s), at the
    # IO thread's next tick (every 2 s).
    t0 = time.time()
    el = alice.next(lambda e: e.tag == sm('r'), 8)
    r.check('the server asks for acknowledgements within request_wait and a tick',
            el is not None, 'none within %.1f s' % (time.time() - t0))
    time.sleep(0.2)    # the <a/> reaches the SM before the socket dies (custody is per ack)
    cut(alice)
    message(bob, 'u0', 'm4')
    s, el = resume(b_port, 'u0', previd, 1)
    r.check('<resumed/> on the other front', el.tag == sm('resumed') and
            el.get('previd') == previd, str(el.attrib))
    r.check("<resumed/>'s h is what the server had of the client", el.get('h') == '1',
            el.get('h'))
    got = bodies(s, 3)
    r.check('exactly what was not acknowledged, and what came meanwhile',
            got == ['m2', 'm3', 'm4'], got)
    # The session goes on: a message now arrives on the new connection.
    message(bob, 'u0', 'm5')
    r.check('the resumed session receives', bodies(s, 1) == ['m5'])
    s.end()
    bob.end()


def takeover(r, a_port, b_port):
    old = bound(a_port, 'u2')
    bob = bound(a_port, 'u3')
    previd = enable(old).get('id')
    message(bob, 'u2', 'x1')
    bodies(old, 1)
    s, el = resume(b_port, 'u2', previd, 0)
    r.check('a resumption while the old connection lives succeeds', el.tag == sm('resumed'))
    cond, _ = old.stream_error()
    r.check('the old connection is closed with <conflict/>', cond == 'conflict', cond)
    r.check('what the old one had not acknowledged is replayed', bodies(s, 1) == ['x1'])
    s.end()
    bob.end()


def timeout(r, a_port):
    alice = bound(a_port, 'u4')
    bob = bound(a_port, 'u5')
    el = enable(alice, " max='1'")
    r.check("the client's shorter max is taken", el.get('max') == '1', el.get('max'))
    previd = el.get('id')
    cut(alice)
    time.sleep(0.3)
    message(bob, 'u4', 'late')
    s, el = None, None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        s, el = resume(a_port, 'u4', previd, 0)
        if el.tag == sm('failed'):
            break
        s.end()
    r.check('after max seconds the id is refused with <item-not-found/>',
            el is not None and el.tag == sm('failed') and
            el.find(q('urn:ietf:params:xml:ns:xmpp-stanzas', 'item-not-found')) is not None)
    s.close()
    again = bound(a_port, 'u4', 'again')
    again.send('<presence/>')
    m = again.expect(lambda e: e.tag == q(NS_CLIENT, 'message'), 'the offline message')
    r.check('the unacknowledged message was stored offline, with <delay/>',
            m.find(q(NS_CLIENT, 'body')).text == 'late' and
            m.find(q('urn:xmpp:delay', 'delay')) is not None)
    again.end()
    bob.end()


def clean_close(r, a_port):
    alice = bound(a_port, 'u6')
    previd = enable(alice).get('id')
    alice.end()
    time.sleep(0.3)
    s, el = resume(a_port, 'u6', previd, 0)
    r.check('a clean close ends the session (no resumption)', el.tag == sm('failed'))
    s.close()


def failures(r, a_port):
    s = connect(a_port, 'u7')
    s.send("<enable xmlns='%s'/>" % NS_SM)
    el = s.expect(lambda e: e.tag == sm('failed'), '<failed/>')
    r.check('<enable/> before bind: <unexpected-request/>',
            el.find(q('urn:ietf:params:xml:ns:xmpp-stanzas', 'unexpected-request')) is not None)
    s.send("<resume xmlns='%s' previd='AAAAAAAAAAAAAAAAAAAAAAAA' h='0'/>" % NS_SM)
    el = s.expect(lambda e: e.tag == sm('failed'), '<failed/>')
    r.check('an unknown id: <item-not-found/>',
            el.find(q('urn:ietf:params:xml:ns:xmpp-stanzas', 'item-not-found')) is not None)
    s.close()

    owner = bound(a_port, 'u8')
    previd = enable(owner).get('id')
    thief, el = resume(a_port, 'u9', previd, 0)
    r.check("another account's id: <item-not-found/>", el.tag == sm('failed'))
    thief.close()
    owner.send("<enable xmlns='%s'/>" % NS_SM)
    el = owner.expect(lambda e: e.tag == sm('failed'), '<failed/>')
    r.check('<enable/> twice: <failed/>', el is not None)
    owner.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, previd))
    el = owner.expect(lambda e: e.tag == sm('failed'), '<failed/>')
    r.check('<resume/> after bind: <unexpected-request/>',
            el.find(q('urn:ietf:params:xml:ns:xmpp-stanzas', 'unexpected-request')) is not None)
    owner.send("<a xmlns='%s' h='99'/>" % NS_SM)
    cond, _ = owner.stream_error()
    r.check('an <a/> past what was sent: <undefined-condition/> with <handled-count-too-high/>',
            cond == 'undefined-condition' and b'handled-count-too-high' in owner.data, cond)

    plain = bound(a_port, 'u7', 'p')
    plain.send("<r xmlns='%s'/>" % NS_SM)
    cond, _ = plain.stream_error()
    r.check('<r/> without stream management: a stream error', cond == 'unsupported-stanza-type',
            cond)


def link_cut(r, system, a_tls, b_tls):
    """Both fronts' links to the SM are cut (ss -K) while a stream-management client talks: it
    keeps its connection and session; what was sent meanwhile arrives once, and acknowledging
    goes on."""
    alice = bound(a_tls, 'u6')
    bob = bound(b_tls, 'u7', 'r')
    enable(alice)
    message(bob, 'u6', 'before')
    r.check('link cut: a message before the cut arrives', bodies(alice, 1) == ['before'])
    alice.send("<a xmlns='%s' h='1'/>" % NS_SM)
    cut = subprocess.run(['ss', '-K', 'dst', '127.0.0.1', 'dport', '=', ':%d' % system.sm_port],
                         capture_output=True, text=True)
    r.check('link cut: ss -K closes the links', cut.returncode == 0, cut.stderr)
    for body in ('c1', 'c2', 'c3'):
        message(bob, 'u6', body)
    got = bodies(alice, 3, seconds=20)
    r.check('link cut: what was sent meanwhile arrives, in order', got == ['c1', 'c2', 'c3'], got)
    time.sleep(1)
    extra = [e for e in alice.elements if e.tag == q(NS_CLIENT, 'message')]
    r.check('link cut: nothing arrives twice', not extra, [e.attrib for e in extra])
    alice.send("<a xmlns='%s' h='4'/><r xmlns='%s'/>" % (NS_SM, NS_SM))
    a = alice.expect(lambda e: e.tag == sm('a'), "the server's <a/> after the cut")
    r.check("link cut: the connection and its stream management go on", a is not None)
    r.check('link cut: the client was not disconnected', not alice.closed)
    alice.end()
    bob.end()


def sm_restart_hibernated(r, system, a_tls, b_tls):
    alice = bound(a_tls, 'u12')
    bob = bound(b_tls, 'u13')
    previd = enable(alice).get('id')
    message(bob, 'u12', 'h1')
    r.check('restart: the first message arrives', bodies(alice, 1) == ['h1'])
    cut(alice)
    time.sleep(0.5)
    message(bob, 'u12', 'h2')
    time.sleep(0.5)
    system.sm.kill()
    r.check('restart: the SM starts again', system.start_sm(ready_port=system.sm_port,
                                                            seconds=10))
    system.sm.wait_log('hibernated session u12@localhost/r revived', 10)
    message(bob, 'u12', 'h3')
    s, el = resume(b_tls, 'u12', previd, 0)
    r.check('restart: <resumed/> after the SM restart', el.tag == sm('resumed'), str(el.attrib))
    got = bodies(s, 3, seconds=15)
    r.check('restart: what was kept before and after the restart, in order, once',
            got == ['h1', 'h2', 'h3'], got)
    time.sleep(0.5)
    extra = [e for e in s.elements if e.tag == q(NS_CLIENT, 'message')]
    r.check('restart: nothing arrives twice', not extra, [e.attrib for e in extra])
    r.check('restart: bob was not disconnected', not bob.closed)
    s.end()
    bob.end()


def slixmpp_resumes(r, b_port, b_tls):
    require_slixmpp('smacks')
    from jabtest.client import Client
    from jabtest.xmpp import Server
    server = Server('127.0.0.1', b_port, b_tls, None, wait=15)

    async def run():
        c = Client('u10@localhost/s', 'pw10', server, plugins=('xep_0198',))
        c.end_session_on_disconnect = False     # a lost connection is not the session's end
        c.ssl_context.check_hostname = False    # the fronts' certificates are made in memory
        c.ssl_context.verify_mode = ssl.CERT_NONE
        resumed = c.loop.create_future()
        c.add_event_handler('session_resumed',
                            lambda _: resumed.done() or resumed.set_result(True))
        await c.login()
        for _ in range(100):
            if c.plugin['xep_0198'].sm_id:
                break
            await asyncio.sleep(0.1)
        r.check('slixmpp enabled stream management with resumption',
                c.plugin['xep_0198'].enabled_out and c.plugin['xep_0198'].sm_id)
        # The connection dies under it; it connects again and resumes.
        c.transport.abort()
        await asyncio.sleep(0.3)
        sender = bound(b_tls, 'u11')
        sender.send("<message to='u10@localhost/s' type='chat'><body>while-cut</body></message>")
        c.connect(('127.0.0.1', b_port), use_ssl=False, force_starttls=True)
        try:
            await asyncio.wait_for(asyncio.shield(resumed), 15)
        except asyncio.TimeoutError:
            pass
        r.check('slixmpp resumed its session', resumed.done() and not resumed.cancelled())
        el = await c.expect(lambda e: e.tag == q(NS_CLIENT, 'message'),
                            'the message sent while its connection was cut', timeout=15)
        r.check('slixmpp got the message sent meanwhile',
                el.find(q(NS_CLIENT, 'body')).text == 'while-cut')
        sender.end()
        await c.logout()

    asyncio.run(run())


def start(r, system, nusers):
    """The SM and fronts A and B (quiet, SQLite, certificates made in memory), accounts
    u0..u{nusers-1} with passwords pw<i>. Returns the direct TLS ports and B's STARTTLS port, or
    None."""
    sm_port, a_port, a_tls, b_port, b_tls = free_ports(5)
    system.sm_port = sm_port
    system.use_sm(sm_xml(system.path('db.sqlite'),
                         [service('front-a', sm_port, 's', 'front'),
                          service('front-b', sm_port, 's', 'front')], level='info'))
    for front_id, port, tls in (('front-a', a_port, a_tls), ('front-b', b_port, b_tls)):
        system.use_front(front_id, front_xml(front_id, 's', sm_port, '127.0.0.1', port, tls,
                                             system.path('none.pem')), port)
    ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(nusers))
    if not (r.check('import %d accounts' % nusers, ok, out) and
            r.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
            r.check('front A starts', system.start_front('front-a', probe_port=a_tls,
                                                         seconds=10)) and
            r.check('front B starts', system.start_front('front-b', probe_port=b_tls,
                                                         seconds=10))):
        return None
    return a_tls, b_tls, b_port


def suite(report, build):
    with System(build, 'smacks', report) as system:
        ports = start(report, system, 14)
        if not ports:
            return
        a_tls, b_tls, b_port = ports
        for name, fn, args in (('resume on the other front', resume_elsewhere, (a_tls, b_tls)),
                               ('takeover', takeover, (a_tls, b_tls)),
                               ('timeout', timeout, (a_tls,)),
                               ('clean close', clean_close, (a_tls,)),
                               ('failures', failures, (a_tls,)),
                               ('link cut', link_cut, (system, a_tls, b_tls)),
                               ('SM restart', sm_restart_hibernated, (system, a_tls, b_tls)),
                               ('slixmpp', slixmpp_resumes, (b_port, b_tls))):
            try:
                fn(report, *args)
            except Failure as e:
                report.not_ok('%s ran to its end' % name, str(e))
        for front_id in ('front-a', 'front-b'):
            report.check('%s exits 0 on SIGTERM' % front_id, system.front(front_id).stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('smacks', suite)
