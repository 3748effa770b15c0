"""tests/integration/test_security.py — the attacks of security issue 12, replayed against the real
programs. Starts the SM serving two hosts (localhost and example.org) with in-band registration
on both, one front for both, and a component service (conference.localhost) connected to by
hand; then each scenario is what an attacker sent, each check what must happen instead of the
takeover, the crash or the memory blow-up the review found: the cross-host takeover, the stanzas
that aborted the SM and the front, the component that asked for frames, the front's memory under
amplifying stanzas and unique names, a forged offline delay, and a session that must end once.
Both programs must be alive at the end, have logged no sanitizer report, and stop cleanly.

Usage: test_security.py BUILD_DIR. Prints ok / not ok lines and ends
"security: N passed, N failed"."""

import re

from jabtest import link
from jabtest.proc import rss_kib
from jabtest.raw import Raw
from jabtest.suite import main
from jabtest.system import System, free_ports, front_xml, secret, service, sm_xml
from jabtest.xmpp import Server, plain_auth


class Setup:
    """What the scenarios attack, set by suite(): the front (a Server), the SM's and the front's
    Programs, the component port and conference.localhost's secret."""
    server = sm = front = comp_port = comp_secret = system = None


setup = Setup()


def prefixed(ns, uri_len, children, child='<p:x/>'):
    """A payload whose children use a namespace bound once to a prefix: the shape that made one
    stanza serialize hundreds of times larger."""
    return "<query xmlns='%s' xmlns:p='urn:%s'>%s</query>" % (ns, 'u' * uri_len, child * children)


def login(user='victim', password='victim-secret', resource='r'):
    r = Raw.to(setup.server)
    jid = r.login(user, password, resource)
    r.discard()
    return r, jid


def answer(r, iq_id, what):
    return r.read_until(r"<iq[^>]*id='%s'[^>]*?(/>|>.*?</iq>)" % iq_id, what).group(0)


def still_serving(r, what):
    """The session is answered end to end (front and SM alive): a ping to the server."""
    r.send("<iq type='get' id='alive' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    answer(r, 'alive', 'an answer to a ping after %s' % what)


def test_takeover(rep):
    """Finding 1: authenticated on localhost, a restart to example.org must not bind the account
    there."""
    r = Raw.to(setup.server)
    r.open('localhost')
    r.read_until(r'</stream:features>', 'stream features')
    r.send(plain_auth('victim', 'victim-secret'))
    r.read_until(r'<success', 'SASL success')
    r.restart()
    r.open('example.org')
    cond, closed = r.stream_error()
    rep.check('a restart to another served host after SASL: <not-authorized/> and the stream '
              'closes (finding 1)', cond == 'not-authorized' and closed,
              'got %s, closed %s' % (cond, closed))
    r.close()
    # The same domain still works.
    r2, jid = login()
    rep.check('the account still logs in on its own host (%s)' % jid,
              jid.startswith('victim@localhost/'))
    r2.close()


def test_sm_abort(rep):
    """Finding 2: an 11 KB iq that serialized past a frame aborted the SM, again after every
    restart."""
    r, _ = login(resource='big')
    r.send("<iq type='get' id='big' to='localhost'>%s</iq>" % prefixed('urn:nowhere', 1000, 1030))
    got = answer(r, 'big', 'an answer to the 11 KB iq')
    rep.check('an 11 KB iq with 1,030 prefixed children gets an error and the SM stays up '
              '(finding 2)', "type='error'" in got and setup.sm.alive(), got[:200])
    rep.check('...whose error does not carry the 11 KB back', len(got) < 2000, '%d bytes' % len(got))
    still_serving(r, 'the 11 KB iq')
    rep.ok('...and the session goes on')
    r.close()


def test_front_register_abort(rep):
    """Finding 3: 20 KB of registration iq before authentication, over direct TLS, aborted the
    front."""
    r = Raw.to(setup.server)
    r.open('localhost')
    r.read_until(r'</stream:features>', 'stream features')
    r.send("<iq type='get' id='reg'>%s</iq>" % prefixed('jabber:iq:register', 20000, 100))
    got = answer(r, 'reg', 'the registration form')
    rep.check('a 20 KB pre-auth registration iq with a 20,000-byte prefixed URI is answered and '
              'the front stays up (finding 3)', setup.front.alive() and "id='reg'" in got, got[:200])
    r.close()


def component():
    """A component stream for conference.localhost, its handshake accepted."""
    return link.component(setup.comp_port, 'conference.localhost', setup.comp_secret,
                          setup.server.wait)


def test_component_as_front(rep):
    """Finding 4: a component that asked for frames could read any user's SCRAM keys and bind as
    anyone."""
    c = component()
    c.send("<smproto xmlns='%s' version='%d' instance='ab' acked='0'/>" % (
        link.NS_SMPROTO, link.SMPROTO_VERSION))
    closed = c.read_to_close(5.0)
    data = c.data
    c.close()
    rep.check('a component that asks for frames gets <not-authorized/> and is closed before it '
              'can send one (finding 4)', b'<not-authorized' in data and closed, repr(data[-300:]))


def test_component_amplifying(rep):
    """A component's large stanza, amplified by the serializer, aborted the SM too."""
    r, jid = login(resource='room')
    r.send('<presence/>')
    c = component()
    body = "<x xmlns='urn:x' xmlns:p='urn:%s'>%s</x>" % ('u' * 2000, '<p:y/>' * 10000)
    c.send("<message from='room@conference.localhost/n' to='%s' id='camp'>%s</message>"
           % (jid, body))
    got = r.read_until(r"<message[^>]*id='camp'.*?</message>", "the component's message").group(0)
    rep.check("a component's 62 KB message with 10,000 prefixed children reaches the user at "
              "about its own size, and the SM stays up", len(got) < 3 * 62000 and setup.sm.alive(),
              '%d bytes' % len(got))
    c.close()
    r.close()


def test_front_memory(rep):
    """Finding 5: a 60 KB message grew the front's RSS from 7.7 MB to 302 MB (155 MB kept); six
    connections of one user kept 920 MB."""
    receiver, bob = login('bob', 'bob-secret', 'mem')
    receiver.send('<presence/>')
    senders = [login(resource='mem%d' % i)[0] for i in range(6)]
    before = rss_kib(setup.front.pid)
    peak = before
    for i, s in enumerate(senders):
        s.send("<message to='%s' id='amp%d'>%s</message>" % (
            bob, i, prefixed('urn:amplify', 5000, 9000)))
        peak = max(peak, rss_kib(setup.front.pid))
    for i in range(len(senders)):
        receiver.read_until(r"<message[^>]*id='amp%d'" % i, 'the 60 KB message %d' % i)
        peak = max(peak, rss_kib(setup.front.pid))
    grown = (peak - before) / 1024
    setup.system.check_memory(rep, 'six 60 KB messages with 9,000 prefixed children of a 5,000-byte '
                              'URI are delivered and the front grows by %.1f MB at most '
                              '(finding 5: 920 MB before)' % grown, grown < 40,
                              'from %d kB to %d kB' % (before, peak))
    for s in senders:
        still_serving(s, 'the 60 KB message')
        s.close()
    receiver.close()


def test_unique_names(rep):
    """Finding 7: expat keeps every distinct name for the parser's life: 1.8 MB of unique names
    grew the front by 15.9 MB on one connection."""
    r, _ = login(resource='names')
    before = rss_kib(setup.front.pid)
    n = 0
    for i in range(600):
        names = ''.join('<n%07d/>' % (n + k) for k in range(250))
        n += 250
        r.send("<iq type='get' id='u%d' to='localhost'><q xmlns='urn:names'>%s</q></iq>" % (i, names))
        if i % 50 == 49:
            answer(r, 'u%d' % i, 'the answer to the unique-names iq %d' % i)
            r.discard()
    grown = (rss_kib(setup.front.pid) - before) / 1024
    setup.system.check_memory(rep, '1.8 MB of unique element names on one connection grow the '
                              'front by %.1f MB (finding 7: 15.9 MB before)' % grown, grown < 6,
                              '%.1f MB' % grown)
    still_serving(r, 'the unique names')
    r.close()


def test_forged_delay(rep):
    """Finding 9: a client's <delay from='localhost'/> passed for the server's offline stamp."""
    r, _ = login(resource='delay')
    r.send("<message to='bob@localhost' id='forged' type='chat'><body>hi</body>"
           "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2001-01-01T00:00:00Z'/></message>")
    still_serving(r, 'the forged delay')
    r.close()
    bob, _ = login('bob', 'bob-secret', 'offline')
    bob.send('<presence/>')
    got = bob.read_until(r"<message[^>]*id='forged'.*?</message>", 'the offline message').group(0)
    stamps = re.findall(r"<delay[^>]*from='localhost'[^>]*stamp='([^']*)'", got)
    rep.check("an offline message's forged <delay from='localhost'/> is replaced by the server's "
              "own (finding 9)", stamps and not any(s.startswith('2001') for s in stamps), got)
    bob.close()


def test_session_ends_once(rep):
    """A killed client that had joined a room on a component that is down: its session ended
    twice in the SM's log. Ending twice would tell its contacts twice: bob, who got its directed
    presence, must see exactly one unavailable."""
    bob, bob_jid = login('bob', 'bob-secret', 'witness')
    r, jid = login(resource='room-once')
    r.send("<presence to='%s'/>" % bob_jid)
    bob.read_until(r"<presence[^>]*from='%s'" % re.escape(jid), 'the directed presence')
    r.send("<presence to='room@conference.localhost/nick'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    r.read_until(r"<presence[^>]*type='error'", 'the room presence bounced')
    r.sock.close()
    bob.read_until(r"<presence[^>]*from='%s'[^>]*type='unavailable'" % re.escape(jid),
                   'the unavailable presence of the killed session')
    still_serving(bob, 'the killed session')   # whatever a second end would send arrives first
    text = bob.data.decode('utf-8', 'replace')
    ends = len(re.findall(r"<presence[^>]*from='%s'[^>]*type='unavailable'" % re.escape(jid), text))
    rep.check('a killed client in a room on a component that is down ends once: its contact '
              'gets one unavailable presence (%d)' % ends, ends == 1)
    bob.close()


SCENARIOS = (test_takeover, test_sm_abort, test_front_register_abort, test_component_as_front,
             test_component_amplifying, test_front_memory, test_unique_names, test_forged_delay,
             test_session_ends_once)


def suite(report, build):
    with System(build, 'security', report) as system:
        if not system.ready(report, certificate=True):
            return
        c2s_port, tls_port, sm_port, comp_port = free_ports(4)
        front_secret, comp_secret = secret(), secret()
        system.use_sm(sm_xml(system.path('jabshard.db'), [
            service('jadc2s', sm_port, front_secret, 'front'),
            service('conference.localhost', comp_port, comp_secret, 'component')],
            hosts="<host name='localhost'><register/></host>\n"
                  "  <host name='example.org'><register/></host>"))
        # The memory scenarios send megabytes from one connection: no read rate limit.
        system.use_front('jadc2s', front_xml('jadc2s', front_secret, sm_port, '127.0.0.1',
                                             c2s_port, tls_port, system.path('server.pem'),
                                             ids=('localhost', 'example.org'),
                                             limits='<max_bps>0</max_bps>'), c2s_port)
        sm = system.start_sm(seconds=10)
        if not sm:
            report.not_ok('the SM starts', system.sm.text())
            return
        front = system.start_front(seconds=10)
        if not front:
            report.not_ok('the front links to the SM', system.front().text())
            return
        ok, out, _ = system.import_accounts([('victim@localhost', 'victim-secret'),
                                             ('bob@localhost', 'bob-secret')])
        if not ok:
            report.not_ok('jabshardctl creates the accounts', out)
            return
        setup.server = Server('127.0.0.1', c2s_port, tls_port, system.path('server.pem'))
        setup.sm, setup.front, setup.system = sm, front, system
        setup.comp_port, setup.comp_secret = comp_port, comp_secret

        part = report.part('security scenarios')
        for fn in SCENARIOS:
            part.run(fn.__name__, fn, part)
        report.merge(part)

        if sm.alive() and front.alive():
            report.ok('the SM and the front are still running after every attack')
        else:
            report.not_ok('the SM and the front are still running after every attack',
                          sm.text() + '\n'.join(front.text().splitlines()[-20:]))
        report.check('no session or login of victim@example.org ever reached the SM',
                     'victim@example.org' not in sm.text(), sm.text())
        system.check_sanitizers(report)
        front_status = front.stop()
        sm_status = sm.stop()
        report.check('the front and the SM stop cleanly on SIGTERM (status 0)',
                     front_status == 0 and sm_status == 0,
                     'front %s, SM %s' % (front_status, sm_status))


if __name__ == '__main__':
    main('security', suite)
